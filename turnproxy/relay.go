package turnproxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/turn/v5"
)

// errNotAllowed is what a relay write to anything but the call's media ports
// returns: Orville's relay is never an open relay.
var errNotAllowed = errors.New("turnproxy: peer is not this call's media port")

// relayGen creates the relayed transport address of each allocation
// (RFC 8656 §7.2): a UDP socket inside the host that may talk only to the
// media ports of the call named in the credentials.
type relayGen struct{ s *Server }

func (g relayGen) Validate() error { return nil }

// AllocatePacketConn opens the relay socket of a UDP allocation. userID is
// the username the auth handler accepted.
func (g relayGen) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	s := g.s
	if conf.UserID == "" {
		// pion probing for a free even port (EVEN-PORT, RFC 8656 §14.6):
		// a bare socket it closes at once.
		in, ok := s.cfg.internal(true)
		if !ok {
			return nil, nil, errors.New("turnproxy: no IPv4 media address")
		}
		pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(in, 0)))
		if err != nil {
			return nil, nil, err
		}
		return pc, pc.LocalAddr(), nil
	}
	u, err := ParseUsername(conf.UserID)
	if err != nil {
		return nil, nil, err
	}
	port, ok := s.cfg.Call(u.CallID)
	if !ok {
		return nil, nil, fmt.Errorf("turnproxy: call %s is not running", u.CallID)
	}
	v4 := conf.Network != "udp6"
	in, ok := s.cfg.internal(v4)
	if !ok {
		return nil, nil, fmt.Errorf("turnproxy: no %s media address to relay to", conf.Network)
	}
	network := "udp4"
	if !v4 {
		network = "udp6"
	}
	// Relay sockets are internal to the host, so any port will do (0, unless
	// the client asked for an even port or a reserved one, RFC 8656 §7.2).
	pc, err := net.ListenUDP(network, &net.UDPAddr{IP: in.AsSlice(), Port: conf.RequestedPort})
	if err != nil {
		return nil, nil, fmt.Errorf("turnproxy: relay socket: %w", err)
	}
	rc := newRelayConn(pc, s, conf.UserID, u, [2]int{port, port + 1}, v4)
	if err := s.register(rc); err != nil {
		_ = pc.Close()
		return nil, nil, err
	}
	// A removal between the auth check and register found nothing to
	// close: look again now that this allocation is registered.
	if !s.cfg.Granted(u.CallID, u.Participant, u.Grant) {
		_ = rc.Close()
		return nil, nil, errors.New("turnproxy: credentials revoked")
	}
	// Like coturn's external-ip: tell the client the advertised address of
	// the family, not the in-host one.
	relayed := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, p := range s.cfg.PublicIPs {
		if p.Unmap().Is4() == v4 {
			relayed = netip.AddrPortFrom(p.Unmap(), relayed.Port())
			break
		}
	}
	return rc, net.UDPAddrFromAddrPort(relayed), nil
}

// AllocateListener and AllocateConn would serve TCP allocations (RFC 6062);
// media is UDP only, so they are refused.
func (g relayGen) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errors.New("turnproxy: TCP allocations are not supported")
}

func (g relayGen) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errors.New("turnproxy: TCP allocations are not supported")
}

// relayConn is one allocation's relay socket. WriteTo is the last line of
// defense against an open relay: whatever permissions exist, it sends only to
// the call's two media ports on this server's own addresses, rewritten to
// where the media sockets listen; ReadFrom maps the answers back to the
// address the client used, so pion's permission and channel lookups match.
// Neither allocates nor locks per packet.
type relayConn struct {
	*net.UDPConn
	s        *Server
	username string // the credential, for the per-user quota
	user     User
	ports    [2]int

	// For each allowed peer address, the peer as the client names it and the
	// in-host destination, per port; built once.
	peers []relayPeer
	// lastPeer[i] is the peer address the client last used for ports[i]:
	// the source reported for packets from that media port.
	lastPeer [2]atomic.Pointer[net.UDPAddr]

	closeOnce sync.Once
}

type relayPeer struct {
	peer netip.Addr
	as   [2]*net.UDPAddr // peer:ports[i], reported by ReadFrom
	dst  [2]netip.AddrPort
}

func newRelayConn(pc *net.UDPConn, s *Server, username string, u User, ports [2]int, v4 bool) *relayConn {
	rc := &relayConn{UDPConn: pc, s: s, username: username, user: u, ports: ports}
	for _, t := range s.targets {
		if t.peer.Is4() != v4 {
			continue
		}
		rp := relayPeer{peer: t.peer}
		for i, p := range ports {
			rp.as[i] = net.UDPAddrFromAddrPort(netip.AddrPortFrom(t.peer, uint16(p)))
			rp.dst[i] = netip.AddrPortFrom(t.dst, uint16(p))
		}
		rc.peers = append(rc.peers, rp)
	}
	return rc
}

// portIndex returns which of the call's ports p is, or -1. The media range
// is checked too, in case Call ever returned something odd.
func (rc *relayConn) portIndex(p int) int {
	if p < rc.s.cfg.PortMin || p > rc.s.cfg.PortMax {
		return -1
	}
	for i, q := range rc.ports {
		if p == q {
			return i
		}
	}
	return -1
}

// WriteTo relays a packet from the client to a peer (RFC 8656 §11.3, §12.6).
func (rc *relayConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		rc.s.refused.Add(1)
		return 0, errNotAllowed
	}
	i := rc.portIndex(ua.Port)
	if i >= 0 {
		for k := range rc.peers {
			p := &rc.peers[k]
			if ipEqual(ua.IP, p.peer) {
				if rc.lastPeer[i].Load() != p.as[i] {
					rc.lastPeer[i].Store(p.as[i])
				}
				rc.s.relayed.Add(1)
				return rc.WriteToUDPAddrPort(b, p.dst[i])
			}
		}
	}
	rc.s.refused.Add(1)
	rc.s.logRefused(rc.user, addr)
	return 0, errNotAllowed
}

// ReadFrom returns the next packet from one of the call's media ports,
// reported as coming from the address the client relays to. Anything else
// reaching the relay socket is dropped here.
func (rc *relayConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := rc.ReadFromUDPAddrPort(b)
		if err != nil {
			return n, nil, err
		}
		i := rc.portIndex(int(from.Port()))
		if i < 0 || !rc.fromMedia(i, from) {
			continue
		}
		if as := rc.lastPeer[i].Load(); as != nil {
			return n, as, nil
		}
	}
}

// fromMedia reports whether from is where ports[i]'s media socket listens.
func (rc *relayConn) fromMedia(i int, from netip.AddrPort) bool {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	for k := range rc.peers {
		if rc.peers[k].dst[i] == from {
			return true
		}
	}
	return false
}

// Close closes the socket (pion then deletes the allocation) and
// unregisters it. Idempotent.
func (rc *relayConn) Close() error {
	err := rc.UDPConn.Close()
	rc.closeOnce.Do(func() { rc.s.unregister(rc) })
	return err
}

// ipEqual compares a net.IP with a netip.Addr without allocating.
func ipEqual(ip net.IP, a netip.Addr) bool {
	if a.Is4() {
		v4 := ip.To4()
		return v4 != nil && [4]byte(v4) == a.As4()
	}
	return len(ip) == net.IPv6len && ip.To4() == nil && [16]byte(ip) == a.As16()
}

package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	pionnet "github.com/pion/transport/v5"
	"golang.org/x/net/proxy"
)

// PathSOCKS is TransportStats.Path for media relayed by the server's SOCKS5
// relay (UDP ASSOCIATE).
const PathSOCKS = "socks"

// SOCKSProxy is a SOCKS5 relay (RFC 1928, RFC 1929 username/password) the
// client reaches the call through: the join answer's "socks", whose
// credentials are the participant's TURN credentials. Signaling and TURN go
// through CONNECT, media through UDP ASSOCIATE; nothing goes to the server
// directly.
type SOCKSProxy struct {
	Address  string `json:"address"` // host:port
	Username string `json:"username"`
	Password string `json:"password"`
}

// socksTimeout bounds a SOCKS handshake.
const socksTimeout = 10 * time.Second

// maxSOCKSAssociations bounds the UDP associations of one client: one per
// ICE host candidate, of two transports.
const maxSOCKSAssociations = 4

// socksNet opens SOCKS streams and UDP associations with credentials that
// an iceServers message may renew (for later associations).
type socksNet struct {
	addr string

	mu         sync.Mutex
	user, pass string
	assocs     int
}

func newSOCKSNet(p *SOCKSProxy) *socksNet {
	return &socksNet{addr: p.Address, user: p.Username, pass: p.Password}
}

func (s *socksNet) creds() (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user, s.pass
}

// renew takes the credentials of fresh ICE servers (they are also the
// SOCKS relay's).
func (s *socksNet) renew(user, pass string) {
	s.mu.Lock()
	s.user, s.pass = user, pass
	s.mu.Unlock()
}

// DialContext opens a stream through CONNECT (golang.org/x/net/proxy, which
// sends host names for the relay to match, never resolving them here).
func (s *socksNet) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	user, pass := s.creds()
	d, err := proxy.SOCKS5("tcp", s.addr, &proxy.Auth{User: user, Password: pass}, &net.Dialer{Timeout: socksTimeout})
	if err != nil {
		return nil, err
	}
	c, err := d.(proxy.ContextDialer).DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("client: through the SOCKS relay %s: %w", s.addr, err)
	}
	return c, nil
}

// associate opens a UDP association (RFC 1928 §7) and returns it as the UDP
// socket of one ICE host candidate at laddr.
func (s *socksNet) associate(laddr *net.UDPAddr) (*socksUDP, error) {
	s.mu.Lock()
	if s.assocs >= maxSOCKSAssociations {
		s.mu.Unlock()
		return nil, errors.New("client: enough SOCKS UDP associations")
	}
	s.assocs++
	user, pass := s.user, s.pass
	s.mu.Unlock()
	ctl, err := net.DialTimeout("tcp", s.addr, socksTimeout)
	if err != nil {
		return nil, err
	}
	relay, err := socksHandshake(ctl, user, pass)
	if err != nil {
		_ = ctl.Close()
		return nil, fmt.Errorf("client: SOCKS UDP ASSOCIATE at %s: %w", s.addr, err)
	}
	if relay.Addr().IsUnspecified() { // RFC 1928 leaves it to the client: the relay's own host
		relay = netip.AddrPortFrom(addrPortOf(ctl.RemoteAddr()).Addr(), relay.Port())
	}
	pc, err := net.ListenUDP("udp", nil)
	if err != nil {
		_ = ctl.Close()
		return nil, err
	}
	u := &socksUDP{ctl: ctl, pc: pc, relay: relay, laddr: &net.UDPAddr{IP: laddr.IP,
		Port: pc.LocalAddr().(*net.UDPAddr).Port, Zone: laddr.Zone}}
	go func() { // the association lives as long as its control connection
		_, _ = io.Copy(io.Discard, ctl)
		_ = pc.Close()
	}()
	return u, nil
}

// socksHandshake authenticates (RFC 1929) and asks for UDP ASSOCIATE; it
// returns the relay address (BND).
func socksHandshake(c net.Conn, user, pass string) (netip.AddrPort, error) {
	_ = c.SetDeadline(time.Now().Add(socksTimeout))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if len(user) > 255 || len(pass) > 255 {
		return netip.AddrPort{}, errors.New("credentials too long for SOCKS")
	}
	msg := []byte{5, 1, 2, 1, byte(len(user))}
	msg = append(append(msg, user...), byte(len(pass)))
	msg = append(msg, pass...)
	// UDP ASSOCIATE from an address the client does not know yet (NAT).
	msg = append(msg, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0)
	if _, err := c.Write(msg); err != nil {
		return netip.AddrPort{}, err
	}
	var b [4]byte
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return netip.AddrPort{}, err
	}
	if b[1] != 2 {
		return netip.AddrPort{}, errors.New("the relay does not accept username/password")
	}
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return netip.AddrPort{}, err
	}
	if b[1] != 0 {
		return netip.AddrPort{}, errors.New("credentials refused")
	}
	if _, err := io.ReadFull(c, b[:4]); err != nil {
		return netip.AddrPort{}, err
	}
	if b[1] != 0 {
		return netip.AddrPort{}, fmt.Errorf("refused with reply %#x", b[1])
	}
	var ip netip.Addr
	switch b[3] {
	case 1:
		var a [4]byte
		if _, err := io.ReadFull(c, a[:]); err != nil {
			return netip.AddrPort{}, err
		}
		ip = netip.AddrFrom4(a)
	case 4:
		var a [16]byte
		if _, err := io.ReadFull(c, a[:]); err != nil {
			return netip.AddrPort{}, err
		}
		ip = netip.AddrFrom16(a).Unmap()
	default:
		return netip.AddrPort{}, fmt.Errorf("relay address of type %d", b[3])
	}
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[:2])), nil
}

// socksUDP is one UDP association as the UDP socket pion's ICE agent wants
// (transport.UDPConn): WriteTo frames a datagram for the relay (RFC 1928
// §7: RSV RSV FRAG ATYP DST.ADDR DST.PORT DATA), ReadFrom unframes the
// relay's and reports the address it names as the source.
type socksUDP struct {
	ctl   net.Conn
	pc    *net.UDPConn
	relay netip.AddrPort
	laddr *net.UDPAddr

	wmu  sync.Mutex
	wbuf []byte
	rmu  sync.Mutex
	rbuf []byte

	closeOnce sync.Once
}

var errNotConnected = errors.New("client: a SOCKS association has no default destination")

func (u *socksUDP) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("client: SOCKS datagram to %v", addr)
	}
	return u.WriteToUDP(b, ua)
}

func (u *socksUDP) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	ap := addr.AddrPort()
	ip := ap.Addr().Unmap()
	u.wmu.Lock()
	defer u.wmu.Unlock()
	out := append(u.wbuf[:0], 0, 0, 0)
	if ip.Is4() {
		a := ip.As4()
		out = append(append(out, 1), a[:]...)
	} else {
		a := ip.As16()
		out = append(append(out, 4), a[:]...)
	}
	out = binary.BigEndian.AppendUint16(out, ap.Port())
	out = append(out, b...)
	u.wbuf = out
	if _, err := u.pc.WriteToUDPAddrPort(out, u.relay); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (u *socksUDP) WriteMsgUDP(b, _ []byte, addr *net.UDPAddr) (int, int, error) {
	n, err := u.WriteToUDP(b, addr)
	return n, 0, err
}

func (u *socksUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := u.ReadFromUDP(b)
	if a == nil {
		return n, nil, err
	}
	return n, a, err
}

// ReadFromUDP returns the next datagram from the relay; anything else
// reaching the local socket, and fragments, are dropped.
func (u *socksUDP) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	u.rmu.Lock()
	defer u.rmu.Unlock()
	if u.rbuf == nil {
		u.rbuf = make([]byte, 65536)
	}
	for {
		n, from, err := u.pc.ReadFromUDPAddrPort(u.rbuf)
		if err != nil {
			return 0, nil, err
		}
		if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != u.relay {
			continue
		}
		p := u.rbuf[:n]
		if len(p) < 4 || p[0] != 0 || p[1] != 0 || p[2] != 0 {
			continue
		}
		var ip netip.Addr
		switch {
		case p[3] == 1 && len(p) >= 10:
			ip, p = netip.AddrFrom4([4]byte(p[4:8])), p[8:]
		case p[3] == 4 && len(p) >= 22:
			ip, p = netip.AddrFrom16([16]byte(p[4:20])).Unmap(), p[20:]
		default:
			continue
		}
		port := binary.BigEndian.Uint16(p[:2])
		return copy(b, p[2:]), net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)), nil
	}
}

func (u *socksUDP) ReadMsgUDP(b, _ []byte) (int, int, int, *net.UDPAddr, error) {
	n, a, err := u.ReadFromUDP(b)
	return n, 0, 0, a, err
}

func (u *socksUDP) Read(b []byte) (int, error) {
	n, _, err := u.ReadFromUDP(b)
	return n, err
}

func (u *socksUDP) Write([]byte) (int, error) { return 0, errNotConnected }

// LocalAddr is the host candidate's address: the interface pion asked for,
// with the port of the socket that talks to the relay.
func (u *socksUDP) LocalAddr() net.Addr                { return u.laddr }
func (u *socksUDP) RemoteAddr() net.Addr               { return nil }
func (u *socksUDP) SetDeadline(t time.Time) error      { return u.pc.SetDeadline(t) }
func (u *socksUDP) SetReadDeadline(t time.Time) error  { return u.pc.SetReadDeadline(t) }
func (u *socksUDP) SetWriteDeadline(t time.Time) error { return u.pc.SetWriteDeadline(t) }
func (u *socksUDP) SetReadBuffer(n int) error          { return u.pc.SetReadBuffer(n) }
func (u *socksUDP) SetWriteBuffer(n int) error         { return u.pc.SetWriteBuffer(n) }

// Close ends the association (its control connection).
func (u *socksUDP) Close() error {
	u.closeOnce.Do(func() {
		_ = u.ctl.Close()
		_ = u.pc.Close()
	})
	return nil
}

var _ pionnet.UDPConn = (*socksUDP)(nil)

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

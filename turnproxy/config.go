package turnproxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"go.uber.org/zap"
)

// Config configures the relay. Zero limits mean the defaults.
type Config struct {
	// Listener yields TURN connections, over TCP or already inside TLS
	// (tcpsniff's TURN listener). Required; the Server closes it.
	Listener net.Listener
	// Secret is --turn-secret, the key of the TURN REST credentials
	// (at least MinSecretLen bytes).
	Secret []byte
	// Realm is the long-term credential realm (RFC 8489 §9.2; default "orville").
	Realm string
	// Call returns the publish port P of a running call (the call also owns
	// P+1); ok is false when there is no such call.
	Call func(callID string) (publishPort int, ok bool)
	// Granted reports whether a credential's grant is still valid: the call
	// recorded it and no removal of the participant revoked it since.
	Granted func(callID, participant, grant string) bool
	// PortMin and PortMax bound the media range: nothing outside is ever a
	// peer, whatever Call says.
	PortMin, PortMax int
	// PublicIPs are the media addresses clients are told (--public-ip,
	// --public-ipv6); they may be NAT addresses that are not on this host.
	PublicIPs []netip.Addr
	// BindIP is where the media sockets listen (--listen-ip); unspecified
	// (0.0.0.0) means every local address.
	BindIP netip.Addr
	// LocalIPs are this host's addresses, used when BindIP is unspecified
	// (default: the interfaces' addresses at New).
	LocalIPs []netip.Addr

	// MaxAllocations bounds allocations in total (default 1000) and
	// MaxAllocationsPerUser per credential (default 8: two transports, each
	// with TURN over TLS and TCP, and room for a reconnect).
	MaxAllocations, MaxAllocationsPerUser int
	// IdleTimeout closes a TURN connection that received nothing for this
	// long (default 30 s; ICE consent checks, RFC 7675, arrive every few
	// seconds on a live one).
	IdleTimeout time.Duration
	// Logger is required.
	Logger *zap.Logger
}

func (c *Config) validate() error {
	if c.Listener == nil || c.Call == nil || c.Granted == nil || c.Logger == nil {
		return errors.New("turnproxy: Listener, Call, Granted and Logger are required")
	}
	if len(c.Secret) < MinSecretLen {
		return fmt.Errorf("turnproxy: the TURN secret must be at least %d bytes", MinSecretLen)
	}
	if c.PortMin <= 0 || c.PortMax > 65535 || c.PortMin > c.PortMax {
		return fmt.Errorf("turnproxy: media port range %d–%d is invalid", c.PortMin, c.PortMax)
	}
	if !c.BindIP.IsValid() {
		return errors.New("turnproxy: BindIP is required (0.0.0.0 for all addresses)")
	}
	if c.Realm == "" {
		c.Realm = "orville"
	}
	if c.MaxAllocations <= 0 {
		c.MaxAllocations = 1000
	}
	if c.MaxAllocationsPerUser <= 0 {
		c.MaxAllocationsPerUser = 8
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.BindIP.IsUnspecified() && c.LocalIPs == nil {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return fmt.Errorf("turnproxy: local addresses: %w", err)
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				c.LocalIPs = append(c.LocalIPs, p.Addr())
			}
		}
	}
	return nil
}

// peerTarget maps an address a client may relay to (a media address it was
// told) to where the packets go inside the host.
type peerTarget struct {
	peer netip.Addr // what the client names in XOR-PEER-ADDRESS
	dst  netip.Addr // where the media socket really listens
}

// targets lists every allowed peer address: this server's own media
// addresses. All of them are reached at the in-host address of the media
// sockets (the bind address, or loopback when they listen everywhere), so an
// advertised address that is not on this host (a NAT or load balancer
// address) works too, and relayed packets never leave the host.
func (c *Config) targets() []peerTarget {
	peers := c.PublicIPs
	if c.BindIP.IsUnspecified() {
		peers = append(append([]netip.Addr(nil), peers...), c.LocalIPs...)
	} else {
		peers = append(append([]netip.Addr(nil), peers...), c.BindIP)
	}
	var out []peerTarget
	seen := map[netip.Addr]bool{}
	for _, p := range peers {
		p = p.Unmap()
		if seen[p] {
			continue
		}
		seen[p] = true
		if dst, ok := c.internal(p.Is4()); ok {
			out = append(out, peerTarget{peer: p, dst: dst})
		}
	}
	return out
}

// internal is the in-host address of the media sockets for one family: the
// bind address, or loopback when they listen on every address.
func (c *Config) internal(v4 bool) (netip.Addr, bool) {
	b := c.BindIP.Unmap()
	switch {
	case b.IsUnspecified() && v4:
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	case b.IsUnspecified():
		return netip.IPv6Loopback(), true
	case b.Is4() == v4:
		return b, true
	}
	return netip.Addr{}, false
}

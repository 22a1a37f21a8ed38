package client

import (
	"errors"
	"net"

	pionnet "github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// udpMode is what the ICE agents may do with UDP.
type udpMode int

const (
	udpAllowed udpMode = iota
	// udpRefused: no UDP sockets at all (ForceTCP): no UDP host candidates,
	// so no UDP candidate pair is ever tried. Relayed candidates still work:
	// their relay socket is on the TURN server, reached over TCP or TLS.
	udpRefused
	// udpDropped: sockets open but every datagram sent is lost, like a
	// firewall that drops outgoing UDP (SimulateUDPBlocked).
	udpDropped
)

var (
	errUDPRefused = errors.New("client: UDP is not used (ForceTCP)")
	errSOCKSOnly  = errors.New("client: UDP goes through the SOCKS relay's IPv4 associations only")
)

// iceNet is the network of the client's ICE agents: the host's, with UDP
// allowed, refused or silently dropped.
type iceNet struct {
	pionnet.Net
	udp   udpMode
	socks *socksNet // set: UDP only through the SOCKS relay's associations
}

// newICENet wraps base (nil: the host's network).
func newICENet(base pionnet.Net, mode udpMode) (*iceNet, error) {
	if base == nil {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, err
		}
		base = n
	}
	return &iceNet{Net: base, udp: mode}, nil
}

func (n *iceNet) ListenUDP(network string, laddr *net.UDPAddr) (pionnet.UDPConn, error) {
	if n.socks != nil {
		if (network != "udp" && network != "udp4") || laddr == nil || laddr.IP.To4() == nil {
			return nil, errSOCKSOnly
		}
		return n.socks.associate(laddr)
	}
	if n.udp == udpRefused {
		return nil, errUDPRefused
	}
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil || n.udp == udpAllowed {
		return c, err
	}
	return droppingUDPConn{c}, nil
}

func (n *iceNet) DialUDP(network string, laddr, raddr *net.UDPAddr) (pionnet.UDPConn, error) {
	if n.udp == udpRefused || n.socks != nil {
		return nil, errUDPRefused
	}
	c, err := n.Net.DialUDP(network, laddr, raddr)
	if err != nil || n.udp == udpAllowed {
		return c, err
	}
	return droppingUDPConn{c}, nil
}

func (n *iceNet) ListenPacket(network, address string) (net.PacketConn, error) {
	if n.udp == udpRefused || n.socks != nil {
		return nil, errUDPRefused
	}
	c, err := n.Net.ListenPacket(network, address)
	if err != nil || n.udp == udpAllowed {
		return c, err
	}
	return droppingPacketConn{c}, nil
}

// droppingUDPConn loses every datagram it is asked to send.
type droppingUDPConn struct{ pionnet.UDPConn }

func (droppingUDPConn) Write(b []byte) (int, error)                      { return len(b), nil }
func (droppingUDPConn) WriteTo(b []byte, _ net.Addr) (int, error)        { return len(b), nil }
func (droppingUDPConn) WriteToUDP(b []byte, _ *net.UDPAddr) (int, error) { return len(b), nil }
func (droppingUDPConn) WriteMsgUDP(b, oob []byte, _ *net.UDPAddr) (int, int, error) {
	return len(b), len(oob), nil
}

type droppingPacketConn struct{ net.PacketConn }

func (droppingPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }

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
)

var (
	errUDPRefused = errors.New("client: UDP is not used (ForceTCP)")
	errSOCKSOnly  = errors.New("client: UDP goes through the SOCKS relay's IPv4 associations only")
)

// iceNet is the network of the client's ICE agents: the host's (or
// Config.ICENet), with UDP allowed or refused.
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
	return n.Net.ListenUDP(network, laddr)
}

func (n *iceNet) DialUDP(network string, laddr, raddr *net.UDPAddr) (pionnet.UDPConn, error) {
	if n.udp == udpRefused || n.socks != nil {
		return nil, errUDPRefused
	}
	return n.Net.DialUDP(network, laddr, raddr)
}

func (n *iceNet) ListenPacket(network, address string) (net.PacketConn, error) {
	if n.udp == udpRefused || n.socks != nil {
		return nil, errUDPRefused
	}
	return n.Net.ListenPacket(network, address)
}

package main

import (
	"net"
	"testing"

	pionnet "github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// udpBlockedNet is the host's network with every UDP datagram the client
// sends lost: a firewall at the client that drops outgoing UDP, given to the
// client as its ICE network (client.Config.ICENet).
type udpBlockedNet struct{ pionnet.Net }

func newUDPBlockedNet(t *testing.T) *udpBlockedNet {
	n, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	return &udpBlockedNet{n}
}

func (n *udpBlockedNet) ListenUDP(network string, laddr *net.UDPAddr) (pionnet.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return droppingUDPConn{c}, nil
}

func (n *udpBlockedNet) DialUDP(network string, laddr, raddr *net.UDPAddr) (pionnet.UDPConn, error) {
	c, err := n.Net.DialUDP(network, laddr, raddr)
	if err != nil {
		return nil, err
	}
	return droppingUDPConn{c}, nil
}

func (n *udpBlockedNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return droppingPacketConn{c}, nil
}

type droppingUDPConn struct{ pionnet.UDPConn }

func (droppingUDPConn) Write(b []byte) (int, error)                      { return len(b), nil }
func (droppingUDPConn) WriteTo(b []byte, _ net.Addr) (int, error)        { return len(b), nil }
func (droppingUDPConn) WriteToUDP(b []byte, _ *net.UDPAddr) (int, error) { return len(b), nil }
func (droppingUDPConn) WriteMsgUDP(b, oob []byte, _ *net.UDPAddr) (int, int, error) {
	return len(b), len(oob), nil
}

type droppingPacketConn struct{ net.PacketConn }

func (droppingPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }

// Package sockstest is a SOCKS5 UDP ASSOCIATE client for tests (RFC 1928
// §7, RFC 1929 authentication): golang.org/x/net/proxy speaks CONNECT only.
package sockstest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// Association is one UDP ASSOCIATE: datagrams go through Relay while Ctl
// stays open.
type Association struct {
	Ctl   net.Conn
	Conn  *net.UDPConn
	Relay netip.AddrPort
}

// Associate authenticates at the relay addr and asks for UDP ASSOCIATE.
func Associate(addr, user, pass string) (*Association, error) {
	ctl, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = ctl.SetDeadline(time.Now().Add(5 * time.Second))
	msg := []byte{5, 1, 2, 1, byte(len(user))}
	msg = append(append(msg, user...), byte(len(pass)))
	msg = append(append(msg, pass...), 5, 3, 0, 1, 0, 0, 0, 0, 0, 0)
	if _, err := ctl.Write(msg); err != nil {
		ctl.Close()
		return nil, err
	}
	resp := make([]byte, 4+4+4+2)
	if _, err := io.ReadFull(ctl, resp[:4]); err != nil || resp[1] != 2 || resp[3] != 0 {
		ctl.Close()
		return nil, fmt.Errorf("sockstest: authentication refused (%x, %v)", resp[:4], err)
	}
	if _, err := io.ReadFull(ctl, resp[4:]); err != nil || resp[5] != 0 || resp[7] != 1 {
		ctl.Close()
		return nil, fmt.Errorf("sockstest: UDP ASSOCIATE refused (%x, %v)", resp[4:], err)
	}
	_ = ctl.SetDeadline(time.Time{})
	relay := netip.AddrPortFrom(netip.AddrFrom4([4]byte(resp[8:12])), binary.BigEndian.Uint16(resp[12:14]))
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		ctl.Close()
		return nil, err
	}
	return &Association{Ctl: ctl, Conn: pc, Relay: relay}, nil
}

// Send sends data to dst (an IPv4 address) through the relay.
func (a *Association) Send(dst netip.AddrPort, data []byte) error {
	ip := dst.Addr().As4()
	b := append([]byte{0, 0, 0, 1}, ip[:]...)
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	_, err := a.Conn.WriteToUDPAddrPort(append(b, data...), a.Relay)
	return err
}

// Receive returns the next datagram from the relay and the source it names.
func (a *Association) Receive(within time.Duration) (netip.AddrPort, []byte, error) {
	buf := make([]byte, 65536)
	_ = a.Conn.SetReadDeadline(time.Now().Add(within))
	n, _, err := a.Conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	if n < 10 || buf[3] != 1 {
		return netip.AddrPort{}, nil, errors.New("sockstest: not an IPv4 SOCKS datagram")
	}
	from := netip.AddrPortFrom(netip.AddrFrom4([4]byte(buf[4:8])), binary.BigEndian.Uint16(buf[8:10]))
	return from, buf[10:n], nil
}

// Close ends the association.
func (a *Association) Close() {
	a.Ctl.Close()
	a.Conn.Close()
}

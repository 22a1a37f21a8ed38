package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/orville/orville/socks"
	"github.com/orville/orville/turnproxy"
)

// The SOCKS5 relay on --socks-listen (the 8001 role): the participant's
// TURN credentials open it, and it reaches this server's client port
// (CONNECT) and the participant's own call's two media ports (UDP
// ASSOCIATE), under the names clients are told, and nothing else.

// listenSOCKS opens --socks-listen early, so that a taken port fails the
// start and the advertised address has the real port (tests use :0).
func (f *tcpFront) listenSOCKS() error {
	if f.cfg.SOCKSListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", f.cfg.SOCKSListen)
	if err != nil {
		return fmt.Errorf("listen %s (--socks-listen; empty turns the SOCKS relay off): %w", f.cfg.SOCKSListen, err)
	}
	f.socksLn = ln
	return nil
}

// socksAddr is the relay's address for the join answer, "" when it is off.
func (f *tcpFront) socksAddr() string {
	if f.socksLn == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(f.cfg.SOCKSAddr())
	if err != nil {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(f.socksLn.Addr().(*net.TCPAddr).Port))
}

// startSOCKS serves the relay; TURN must run (its media addresses are the
// relay's too).
func (f *tcpFront) startSOCKS() error {
	if f.socksLn == nil {
		return nil
	}
	s, err := socks.New(socks.Config{Listener: f.socksLn, Authenticate: f.socksGrant, Logger: f.log})
	if err != nil {
		return err
	}
	f.socks.Store(s)
	return nil
}

var errSOCKSCredentials = errors.New("not valid credentials of a running call")

// socksGrant checks SOCKS credentials (RFC 1929): TURN credentials of this
// server, unexpired, of a running call, not revoked by a removal.
func (f *tcpFront) socksGrant(user, pass string) (*socks.Grant, error) {
	u, err := turnproxy.ParseUsername(user)
	if err != nil || !turnproxy.CheckPassword(f.secret, user, pass) || time.Now().After(u.Expires) {
		return nil, errSOCKSCredentials
	}
	rooms, turn := f.rooms.Load(), f.turn.Load()
	if rooms == nil || turn == nil {
		return nil, errSOCKSCredentials
	}
	r, err := rooms.Get(u.CallID)
	if err != nil || !r.Granted(u.Participant, u.Grant) {
		return nil, errSOCKSCredentials
	}
	g := &socks.Grant{Call: u.CallID, Participant: u.Participant,
		Valid: func() bool { return f.granted(u.CallID, u.Participant, u.Grant) }}
	// CONNECT: the client port, under the signaling URL's name and port
	// and under every address of this server, to the listener itself.
	to := inHost(addrPortOf(f.sniff.Addr()))
	if su, err := url.Parse(f.cfg.SignalingURL()); err == nil {
		p, _ := strconv.Atoi(su.Port())
		g.Connect = append(g.Connect, socks.Route{Host: su.Hostname(), Port: uint16(p), To: to})
	}
	for _, m := range turn.MediaAddrs() {
		g.Connect = append(g.Connect, socks.Route{Host: m.Peer.String(), Port: to.Port(), To: to})
		// UDP ASSOCIATE: the call's two media ports only.
		for _, p := range []int{r.Port, r.Port + 1} {
			g.UDP = append(g.UDP, socks.Route{Host: m.Peer.String(), Port: uint16(p), To: netip.AddrPortFrom(m.Dst, uint16(p))})
		}
	}
	return g, nil
}

// inHost is where to reach a listener from inside the host: its address,
// or loopback when it listens on every address.
func inHost(ap netip.AddrPort) netip.AddrPort {
	switch {
	case ap.Addr().IsUnspecified() && ap.Addr().Is4():
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ap.Port())
	case ap.Addr().IsUnspecified():
		return netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())
	}
	return ap
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

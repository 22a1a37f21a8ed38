package socks

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"go.uber.org/zap"
)

// udpHeadroom is room before a datagram for the largest SOCKS UDP header
// (RSV FRAG ATYP, a 255-byte name, the port), so replies are framed in place.
const (
	udpHeadroom = 3 + 1 + 1 + 255 + 2
	maxDatagram = 65535
)

// association is one UDP ASSOCIATE (RFC 1928 §7): a UDP socket that relays
// between the client and the grant's UDP routes only, for as long as the
// control connection lives.
type association struct {
	s      *Server
	pc     *net.UDPConn
	routes []Route
	// The client: its address (the control connection's) and port, the
	// port locked by the request or the first datagram.
	clientIP netip.Addr
	client   netip.AddrPort
	// named[i] is the header the client last used for routes[i]: replies
	// from routes[i].To carry it, so they seem to come from where the
	// client sent. Only the relay goroutine touches these.
	named [][]byte
}

// associate answers UDP ASSOCIATE and relays until the control connection
// closes or the association is idle for UDPIdleTimeout.
func (s *Server) associate(c net.Conn, g *Grant, dst Addr) {
	local := addrPort(c.LocalAddr())
	// The relay socket is on the address the client reached us on.
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: local.Addr().AsSlice()})
	if err != nil {
		s.log.Warn("UDP ASSOCIATE socket", zap.Error(err))
		_, _ = c.Write(reply(repGeneralFailure, netip.AddrPort{}))
		return
	}
	defer pc.Close()
	if _, err := c.Write(reply(repSucceeded, addrPort(pc.LocalAddr()))); err != nil {
		return
	}
	s.st.associations.Add(1)
	_ = c.SetDeadline(time.Time{})
	a := &association{s: s, pc: pc, routes: g.UDP, clientIP: remoteIP(c), named: make([][]byte, len(g.UDP))}
	if dst.Port != 0 {
		a.client = netip.AddrPortFrom(a.clientIP, dst.Port)
	}
	// RFC 1928 §7: the association ends with the control connection.
	go func() {
		_, _ = io.Copy(io.Discard, c)
		_ = pc.Close()
	}()
	a.run()
	_ = c.Close()
}

func (a *association) run() {
	buf := make([]byte, udpHeadroom+maxDatagram)
	idle := a.s.cfg.UDPIdleTimeout
	var extended time.Time
	for {
		if now := time.Now(); now.Sub(extended) > idle/4 {
			extended = now
			_ = a.pc.SetReadDeadline(now.Add(idle))
		}
		n, from, err := a.pc.ReadFromUDPAddrPort(buf[udpHeadroom:])
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return // idle
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP port unreachable from an earlier send
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if a.fromClient(from) {
			a.toRoute(buf[udpHeadroom : udpHeadroom+n])
			continue
		}
		a.toClient(from, buf, n)
	}
}

// fromClient reports whether from is the client, locking its port on the
// first datagram from its address.
func (a *association) fromClient(from netip.AddrPort) bool {
	if a.client.IsValid() {
		return from == a.client
	}
	if from.Addr() != a.clientIP {
		return false
	}
	for i := range a.routes {
		if a.routes[i].To == from {
			return false // a media port on the client's own host (tests, loopback)
		}
	}
	a.client = from
	return true
}

// toRoute sends a client datagram on if it names one of the routes.
func (a *association) toRoute(b []byte) {
	dst, data, err := parseUDPHeader(b)
	if err != nil {
		a.s.st.dgramsDropped.Add(1)
		return
	}
	i := find(a.routes, dst)
	if i < 0 {
		a.s.st.dgramsDropped.Add(1)
		return
	}
	r := &a.routes[i]
	if hdr := b[:len(b)-len(data)]; string(hdr) != string(a.named[i]) {
		a.named[i] = append(a.named[i][:0], hdr...)
	}
	if _, err := a.pc.WriteToUDPAddrPort(data, r.To); err != nil {
		a.s.st.dgramsDropped.Add(1)
		return
	}
	a.s.st.dgramsRelayed.Add(1)
}

// toClient frames a datagram from one of the routes for the client; n bytes
// are in buf after the headroom. Anything else is dropped.
func (a *association) toClient(from netip.AddrPort, buf []byte, n int) {
	for i := range a.routes {
		if a.routes[i].To != from || a.named[i] == nil || !a.client.IsValid() {
			continue
		}
		hdr := a.named[i]
		start := udpHeadroom - len(hdr)
		copy(buf[start:], hdr)
		if _, err := a.pc.WriteToUDPAddrPort(buf[start:udpHeadroom+n], a.client); err != nil {
			a.s.st.dgramsDropped.Add(1)
			return
		}
		a.s.st.dgramsRelayed.Add(1)
		return
	}
	a.s.st.dgramsDropped.Add(1)
}

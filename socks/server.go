// Package socks is Orville's SOCKS5 relay (RFC 1928, with RFC 1929
// username/password authentication) on TCP 8001, for clients configured to
// reach their calling server through a SOCKS proxy.
//
// It is never an open proxy. The credentials are the participant's TURN
// credentials from the join answer, and they reach nothing but what the
// Grant lists: CONNECT only to this server's own client port, UDP ASSOCIATE
// datagrams only to the participant's call's two media ports. Anything else
// is refused with reply 0x02 (connection not allowed by ruleset) or, for
// datagrams, dropped and counted. Host names are matched, never resolved.
// Connections are bounded per source address, per participant and in
// total, and every phase has a deadline. Removing the participant or ending
// the call closes its sessions (EndParticipant, EndCall).
//
// The package stands alone: the server's routes and credential checks come
// in through Config.Authenticate.
package socks

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Server is the relay. Create it with New.
type Server struct {
	cfg Config
	log *zap.Logger

	mu       sync.Mutex
	perIP    map[netip.Addr]int
	sessions map[*session]struct{}
	byGrant  map[[2]string]int
	open     int
	closed   bool

	st        stats
	lastLog   atomic.Int64
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type stats struct {
	accepted, refused, refusedPerIP, authFailed, notAllowed, badRequest atomic.Uint64
	connects, associations, dgramsRelayed, dgramsDropped                atomic.Uint64
}

// Stats counts what the relay did.
type Stats struct {
	// Accepted connections; Refused at once (MaxConns); RefusedPerIP (the
	// address holds MaxConnsPerIP); AuthFailed credentials; NotAllowed
	// requests (0x02: destination, command or per-participant limit);
	// BadRequest: not SOCKS5, unknown commands or address types.
	Accepted, Refused, RefusedPerIP, AuthFailed, NotAllowed, BadRequest uint64
	// Connects and Associations that succeeded.
	Connects, Associations uint64
	// Datagrams relayed either way, and dropped (to or from anything but
	// the grant's UDP routes, from another source, malformed, fragments).
	DatagramsRelayed, DatagramsDropped uint64
	// Open connections now.
	Open int
}

// session is one client connection; for EndParticipant.
type session struct {
	conn  net.Conn
	grant *Grant
}

// New starts serving on cfg.Listener.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.Named("socks"), perIP: map[netip.Addr]int{},
		sessions: map[*session]struct{}{}, byGrant: map[[2]string]int{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.cfg.Listener.Addr() }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	open := s.open
	s.mu.Unlock()
	return Stats{Accepted: s.st.accepted.Load(), Refused: s.st.refused.Load(), RefusedPerIP: s.st.refusedPerIP.Load(),
		AuthFailed: s.st.authFailed.Load(), NotAllowed: s.st.notAllowed.Load(), BadRequest: s.st.badRequest.Load(),
		Connects: s.st.connects.Load(), Associations: s.st.associations.Load(),
		DatagramsRelayed: s.st.dgramsRelayed.Load(), DatagramsDropped: s.st.dgramsDropped.Load(), Open: open}
}

// EndCall closes every session of a call that ended.
func (s *Server) EndCall(call string) { s.end(call, "") }

// EndParticipant closes the sessions of a removed participant.
func (s *Server) EndParticipant(call, participant string) { s.end(call, participant) }

func (s *Server) end(call, participant string) {
	s.mu.Lock()
	var list []net.Conn
	for ss := range s.sessions {
		if ss.grant.Call == call && (participant == "" || ss.grant.Participant == participant) {
			list = append(list, ss.conn)
		}
	}
	s.mu.Unlock()
	for _, c := range list {
		_ = c.Close() // the session's goroutines notice and clean up
	}
}

// Close stops accepting, closes every connection and waits for them.
// Idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		_ = s.cfg.Listener.Close()
		s.mu.Lock()
		s.closed = true
		for ss := range s.sessions {
			_ = ss.conn.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return nil
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := s.cfg.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", zap.Error(err), zap.Duration("retryIn", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.st.accepted.Add(1)
		ip := remoteIP(c)
		if !s.admit(c, ip) {
			_ = c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.release(ip)
			defer c.Close()
			s.serve(c)
		}()
	}
}

// admit counts a new connection against the limits, or refuses it.
func (s *Server) admit(c net.Conn, ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return false
	case s.open >= s.cfg.MaxConns:
		s.st.refused.Add(1)
		return false
	case s.perIP[ip] >= s.cfg.MaxConnsPerIP:
		s.st.refusedPerIP.Add(1)
		return false
	}
	s.open++
	s.perIP[ip]++
	return true
}

func (s *Server) release(ip netip.Addr) {
	s.mu.Lock()
	s.open--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	s.mu.Unlock()
}

// serve runs one connection: method selection, authentication, request.
func (s *Server) serve(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	userPass, err := readGreeting(c)
	if err != nil {
		s.st.badRequest.Add(1)
		return
	}
	if !userPass {
		// RFC 1928 §3: X'FF' NO ACCEPTABLE METHODS, then close.
		s.st.authFailed.Add(1)
		_, _ = c.Write([]byte{version5, methodNone})
		return
	}
	if _, err := c.Write([]byte{version5, methodUserPass}); err != nil {
		return
	}
	user, pass, err := readUserPass(c)
	if err != nil {
		s.st.badRequest.Add(1)
		return
	}
	grant, err := s.cfg.Authenticate(user, pass)
	if err != nil || grant == nil {
		// RFC 1929 §2: a non-zero STATUS, and the server closes.
		s.st.authFailed.Add(1)
		s.debugOnce("credentials refused", c, zap.Error(err))
		_, _ = c.Write([]byte{authVersion, 0x01})
		return
	}
	if _, err := c.Write([]byte{authVersion, 0x00}); err != nil {
		return
	}
	cmd, dst, err := readRequest(c)
	switch {
	case errors.Is(err, errAtyp):
		s.st.badRequest.Add(1)
		_, _ = c.Write(reply(repAddressUnsupported, netip.AddrPort{}))
		return
	case err != nil:
		s.st.badRequest.Add(1)
		return
	}
	ss := &session{conn: c, grant: grant}
	if !s.register(ss) {
		s.refuse(c, "per-participant limit", dst)
		return
	}
	defer s.unregister(ss)
	if grant.Valid != nil && !grant.Valid() {
		s.refuse(c, "credentials revoked", dst)
		return
	}
	switch cmd {
	case cmdConnect:
		s.connect(c, grant, dst)
	case cmdUDPAssociate:
		s.associate(c, grant, dst)
	case cmdBind:
		s.refuse(c, "BIND is not allowed", dst)
	default:
		s.st.badRequest.Add(1)
		_, _ = c.Write(reply(repCommandUnsupported, netip.AddrPort{}))
	}
}

func (s *Server) register(ss *session) bool {
	key := [2]string{ss.grant.Call, ss.grant.Participant}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.byGrant[key] >= s.cfg.MaxPerGrant {
		return false
	}
	s.byGrant[key]++
	s.sessions[ss] = struct{}{}
	return true
}

func (s *Server) unregister(ss *session) {
	key := [2]string{ss.grant.Call, ss.grant.Participant}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, ss)
	if s.byGrant[key]--; s.byGrant[key] <= 0 {
		delete(s.byGrant, key)
	}
}

// refuse answers 0x02 connection not allowed by ruleset (RFC 1928 §6).
func (s *Server) refuse(c net.Conn, why string, dst Addr) {
	s.st.notAllowed.Add(1)
	s.debugOnce("request refused", c, zap.String("why", why), zap.Stringer("destination", dst))
	_, _ = c.Write(reply(repNotAllowed, netip.AddrPort{}))
}

// connect relays a stream to the route dst names (RFC 1928 §4 CONNECT).
func (s *Server) connect(c net.Conn, g *Grant, dst Addr) {
	i := find(g.Connect, dst)
	if i < 0 {
		s.refuse(c, "not this server's client port", dst)
		return
	}
	r := &g.Connect[i]
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", r.To.String())
	cancel()
	if err != nil {
		rep := byte(repHostUnreachable)
		if errors.Is(err, errConnRefused) {
			rep = repConnectionRefused
		}
		_, _ = c.Write(reply(rep, netip.AddrPort{}))
		return
	}
	defer up.Close()
	if _, err := c.Write(reply(repSucceeded, addrPort(up.LocalAddr()))); err != nil {
		return
	}
	s.st.connects.Add(1)
	_ = c.SetDeadline(time.Time{})
	// The target (the client port) has its own idle timeouts; the relay
	// ends when either side ends.
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, c)
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(c, up)
	_ = c.Close() // unblocks the other copy, also after EndParticipant
	<-done
}

var errConnRefused = syscall.ECONNREFUSED

// debugOnce logs at most once a second: refusals are what probes cause.
func (s *Server) debugOnce(msg string, c net.Conn, fields ...zap.Field) {
	now := time.Now().UnixNano()
	last := s.lastLog.Load()
	if now-last < int64(time.Second) || !s.lastLog.CompareAndSwap(last, now) {
		return
	}
	s.log.Info(msg, append(fields, zap.Stringer("remote", c.RemoteAddr()))...)
}

func remoteIP(c net.Conn) netip.Addr { return addrPort(c.RemoteAddr()).Addr() }

func addrPort(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.TCPAddr:
		ap := v.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.UDPAddr:
		ap := v.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

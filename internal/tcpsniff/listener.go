// Package tcpsniff serves every TCP client of Orville on one port (443 in
// production) by looking at the first bytes of each connection:
//
//	0x16 (a TLS ClientHello) → TLS with the deployment certificate, then
//	    STUN inside → TURN over TLS, anything else → HTTP (WebSocket
//	    signaling, the web client, /healthz);
//	STUN header              → TURN over TCP;
//	2-byte length + STUN     → ICE-TCP (RFC 4571 framing, RFC 6544);
//	anything else            → closed.
//
// One firewall hole then serves signaling, ICE-TCP and TURN. The listener
// hands each kind out through its own net.Listener (HTTP, TURN, ICETCP), so
// the consumers — http.Server, pion/turn, pion/ice's TCP mux — run unchanged.
//
// Junk must not lock clients out: every phase before a connection is handed
// out has a deadline, connections still being sniffed are bounded per source
// address and in total (the oldest is dropped to make room, so a new client
// always gets its turn), and all open connections are bounded per source
// address and in total, so one host cannot hold the port for everyone.
package tcpsniff

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Config configures a Listener. Zero limits mean the defaults.
type Config struct {
	// Listener is the TCP listener to serve (--tcp-listen). Required; the
	// Listener owns and closes it.
	Listener net.Listener
	// TLSConfig holds the deployment certificate. Required.
	TLSConfig *tls.Config
	// Logger is required.
	Logger *zap.Logger

	// FirstBytesTimeout bounds the wait for the first bytes of a connection
	// (default 5 s).
	FirstBytesTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake plus the first bytes inside
	// it (default 10 s).
	HandshakeTimeout time.Duration
	// MaxPending bounds connections still being sniffed (default 1024);
	// MaxPendingPerIP bounds them per source address (default 256: a large
	// meeting behind one NAT may start its TLS handshakes at once). Past
	// either bound the oldest one of that scope is closed.
	MaxPending, MaxPendingPerIP int
	// MaxConns bounds every open connection, sniffed or handed out (default
	// 8192). Past it a new connection takes the place of the oldest pending
	// one, or is closed if none is pending.
	MaxConns int
	// MaxConnsPerIP bounds the open connections of one source address,
	// sniffed or handed out (default 512: a large meeting behind one NAT
	// needs a WebSocket and up to two ICE-TCP or TURN connections per
	// participant). Past it new connections from that address are closed
	// at once; its pending ones time out as usual.
	MaxConnsPerIP int
	// Backlog is how many sniffed connections of one kind may wait for their
	// consumer's Accept (default 128).
	Backlog int
}

func (c *Config) validate() error {
	if c.Listener == nil || c.TLSConfig == nil || c.Logger == nil {
		return errors.New("tcpsniff: Listener, TLSConfig and Logger are required")
	}
	if len(c.TLSConfig.Certificates) == 0 && c.TLSConfig.GetCertificate == nil {
		return errors.New("tcpsniff: TLSConfig has no certificate")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxPending, 1024)
	def(&c.MaxPendingPerIP, 256)
	def(&c.MaxConns, 8192)
	def(&c.MaxConnsPerIP, min(512, c.MaxConns))
	def(&c.Backlog, 128)
	if c.FirstBytesTimeout <= 0 {
		c.FirstBytesTimeout = 5 * time.Second
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.MaxPendingPerIP > c.MaxPending || c.MaxPending > c.MaxConns {
		return fmt.Errorf("tcpsniff: limits must grow: per IP %d ≤ pending %d ≤ conns %d",
			c.MaxPendingPerIP, c.MaxPending, c.MaxConns)
	}
	if c.MaxPendingPerIP > c.MaxConnsPerIP || c.MaxConnsPerIP > c.MaxConns {
		return fmt.Errorf("tcpsniff: limits must grow: pending per IP %d ≤ conns per IP %d ≤ conns %d",
			c.MaxPendingPerIP, c.MaxConnsPerIP, c.MaxConns)
	}
	return nil
}

// Stats counts what the listener did since it started.
type Stats struct {
	Accepted uint64
	// Handed counts connections handed out, by Kind.
	Handed [numKinds]uint64
	// Junk: first bytes of no known protocol; TLSFailed: handshake failed
	// or timed out; Timeouts: no first bytes in time; Evicted: closed to make
	// room for newer ones; Refused: closed at once (MaxConns, all handed out);
	// RefusedPerIP: closed at once, the source address had MaxConnsPerIP
	// open and none pending; Dropped: the consumer's backlog was full.
	Junk, TLSFailed, Timeouts, Evicted, Refused, RefusedPerIP, Dropped uint64
	// Open is the number of open connections now, Pending of those still sniffed.
	Open, Pending int
}

// Listener is the sniffing listener. Create it with New.
type Listener struct {
	cfg  Config
	log  *zap.Logger
	subs [numKinds]*subListener

	mu      sync.Mutex
	pending *list.List         // of *pendingConn, oldest first
	perIP   map[netip.Addr]int // pending connections by source
	openIP  map[netip.Addr]int // open connections by source
	open    int
	closed  bool

	accepted, junk, tlsFailed, timeouts, evicted, refused, refusedPerIP, dropped atomic.Uint64
	handed                                                                       [numKinds]atomic.Uint64

	wg        sync.WaitGroup
	closeOnce sync.Once
}

type pendingConn struct {
	raw     net.Conn
	ip      netip.Addr
	elem    *list.Element
	evicted atomic.Bool
}

// New starts accepting on cfg.Listener.
func New(cfg Config) (*Listener, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l := &Listener{cfg: cfg, log: cfg.Logger.Named("tcpsniff"), pending: list.New(),
		perIP: map[netip.Addr]int{}, openIP: map[netip.Addr]int{}}
	for k := range l.subs {
		l.subs[k] = newSubListener(cfg.Listener.Addr(), cfg.Backlog)
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// HTTP returns the listener of HTTP connections (already inside TLS).
func (l *Listener) HTTP() net.Listener { return l.subs[KindHTTP] }

// TURN returns the listener of TURN connections, over TLS or plain TCP.
func (l *Listener) TURN() net.Listener { return l.subs[KindTURN] }

// ICETCP returns the listener of ICE-TCP connections, for ice.NewTCPMuxDefault.
func (l *Listener) ICETCP() net.Listener { return l.subs[KindICETCP] }

// Addr is the shared listener's address.
func (l *Listener) Addr() net.Addr { return l.cfg.Listener.Addr() }

// Stats returns the counters.
func (l *Listener) Stats() Stats {
	s := Stats{Accepted: l.accepted.Load(), Junk: l.junk.Load(), TLSFailed: l.tlsFailed.Load(),
		Timeouts: l.timeouts.Load(), Evicted: l.evicted.Load(), Refused: l.refused.Load(),
		RefusedPerIP: l.refusedPerIP.Load(), Dropped: l.dropped.Load()}
	for k := range s.Handed {
		s.Handed[k] = l.handed[k].Load()
	}
	l.mu.Lock()
	s.Open, s.Pending = l.open, l.pending.Len()
	l.mu.Unlock()
	return s
}

// Close stops accepting, closes the kind listeners and every connection
// still being sniffed, and waits for the sniffing goroutines. Connections
// already handed out belong to their consumers. Idempotent.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		_ = l.cfg.Listener.Close()
		l.mu.Lock()
		l.closed = true
		for e := l.pending.Front(); e != nil; e = e.Next() {
			_ = e.Value.(*pendingConn).raw.Close()
		}
		l.mu.Unlock()
		for _, s := range l.subs {
			_ = s.Close()
		}
		l.wg.Wait()
	})
	return nil
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		raw, err := l.cfg.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, as
			// net/http does, instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accept failed", zap.Error(err), zap.Duration("retryIn", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		l.accepted.Add(1)
		p := l.admit(raw)
		if p == nil {
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.sniff(p)
		}()
	}
}

// admit registers a new connection, making room by closing the oldest
// pending one (of the same source address first) when a limit is reached.
// It returns nil when the connection was refused.
func (l *Listener) admit(raw net.Conn) *pendingConn {
	ip := remoteIP(raw)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = raw.Close()
		return nil
	}
	if l.openIP[ip] >= l.cfg.MaxConnsPerIP {
		// The address holds its whole share: the newcomer, not another
		// address's client, pays for it — and a flood costs an accept and
		// a close, not a TLS handshake.
		l.refusedPerIP.Add(1)
		_ = raw.Close()
		return nil
	}
	if l.perIP[ip] >= l.cfg.MaxPendingPerIP {
		l.evictLocked(func(p *pendingConn) bool { return p.ip == ip })
	}
	if l.pending.Len() >= l.cfg.MaxPending || l.open >= l.cfg.MaxConns {
		if !l.evictLocked(func(*pendingConn) bool { return true }) && l.open >= l.cfg.MaxConns {
			l.refused.Add(1)
			_ = raw.Close()
			return nil
		}
	}
	p := &pendingConn{raw: raw, ip: ip}
	p.elem = l.pending.PushBack(p)
	l.perIP[ip]++
	l.open++
	l.openIP[ip]++
	return p
}

// evictLocked closes the oldest pending connection that match selects. The
// sniffing goroutine notices (its read fails) and cleans up.
func (l *Listener) evictLocked(match func(*pendingConn) bool) bool {
	for e := l.pending.Front(); e != nil; e = e.Next() {
		p := e.Value.(*pendingConn)
		if match(p) && !p.evicted.Load() {
			p.evicted.Store(true)
			l.evicted.Add(1)
			l.dequeueLocked(p)
			_ = p.raw.Close()
			l.freeLocked(p.ip) // its slot is free now; the goroutine will not count it again
			return true
		}
	}
	return false
}

// dequeueLocked removes p from the pending set (once).
func (l *Listener) dequeueLocked(p *pendingConn) {
	if p.elem == nil {
		return
	}
	l.pending.Remove(p.elem)
	p.elem = nil
	if l.perIP[p.ip]--; l.perIP[p.ip] <= 0 {
		delete(l.perIP, p.ip)
	}
}

// freeLocked frees the open-connection slot of a connection from ip.
func (l *Listener) freeLocked(ip netip.Addr) {
	l.open--
	if l.openIP[ip]--; l.openIP[ip] <= 0 {
		delete(l.openIP, ip)
	}
}

// release frees an open-connection slot when a handed-out connection closes.
func (l *Listener) release(ip netip.Addr) {
	l.mu.Lock()
	l.freeLocked(ip)
	l.mu.Unlock()
}

// sniff classifies one connection and hands it out, or closes it.
func (l *Listener) sniff(p *pendingConn) {
	kind, c, err := l.classify(p)
	l.mu.Lock()
	evicted := p.evicted.Load()
	if !evicted {
		l.dequeueLocked(p)
		if err != nil {
			l.freeLocked(p.ip)
		}
	}
	l.mu.Unlock()
	if err != nil || evicted {
		_ = p.raw.Close()
		if err != nil && !evicted {
			l.countFailure(p, err)
		}
		return
	}
	wrapped := c.(*conn)
	wrapped.onClose = func() { l.release(p.ip) }
	if !l.subs[kind].offer(wrapped) {
		l.dropped.Add(1)
		_ = wrapped.Close()
		return
	}
	l.handed[kind].Add(1)
}

// errJunk marks a connection of no known protocol.
var errJunk = errors.New("not TLS, TURN or ICE-TCP")

// classify reads the first bytes (and, for TLS, does the handshake) under
// deadlines and returns the connection to hand out, replaying what was read.
func (l *Listener) classify(p *pendingConn) (Kind, net.Conn, error) {
	raw := p.raw
	var buf [plainSniffLen]byte
	_ = raw.SetReadDeadline(time.Now().Add(l.cfg.FirstBytesTimeout))
	n, err := io.ReadAtLeast(raw, buf[:], 1)
	if err != nil {
		return 0, nil, err
	}
	if buf[0] == tlsHandshakeRecord {
		return l.classifyTLS(raw, buf[:n])
	}
	if n < plainSniffLen {
		m, err := io.ReadAtLeast(raw, buf[n:], plainSniffLen-n)
		if err != nil {
			return 0, nil, err
		}
		n += m
	}
	_ = raw.SetReadDeadline(time.Time{})
	kind, ok := classifyPlain(buf[:n])
	if !ok {
		return 0, nil, errJunk
	}
	return kind, &conn{Conn: raw, peeked: append([]byte(nil), buf[:n]...)}, nil
}

func (l *Listener) classifyTLS(raw net.Conn, first []byte) (Kind, net.Conn, error) {
	deadline := time.Now().Add(l.cfg.HandshakeTimeout)
	_ = raw.SetDeadline(deadline)
	tc := tls.Server(&conn{Conn: raw, peeked: append([]byte(nil), first...)}, l.cfg.TLSConfig)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return 0, nil, &tlsError{err}
	}
	var buf [tlsSniffLen]byte
	n, err := io.ReadAtLeast(tc, buf[:], tlsSniffLen)
	if err != nil {
		return 0, nil, err
	}
	_ = raw.SetDeadline(time.Time{})
	return classifyTLS(buf[:n]), &conn{Conn: tc, peeked: append([]byte(nil), buf[:n]...)}, nil
}

type tlsError struct{ err error }

func (e *tlsError) Error() string { return "tls: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

func (l *Listener) countFailure(p *pendingConn, err error) {
	var te *tlsError
	var ne net.Error
	switch {
	case errors.Is(err, errJunk):
		l.junk.Add(1)
	case errors.As(err, &te):
		l.tlsFailed.Add(1)
	case errors.As(err, &ne) && ne.Timeout():
		l.timeouts.Add(1)
	}
	// Debug only: junk is what the internet sends to port 443 all day.
	l.log.Debug("connection closed while sniffing", zap.Stringer("remote", p.raw.RemoteAddr()), zap.Error(err))
}

func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

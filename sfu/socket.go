package sfu

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orville/orville/internal/pionlog"
	"github.com/pion/ice/v4"
	pion "github.com/pion/transport/v5"
	"go.uber.org/zap"
)

// callSocket is one of a call's two UDP sockets and the goroutine that reads
// it. Every datagram is classified by its first byte (RFC 7983 §7):
//
//   - RTP/RTCP (128–191) from the remote address of an established
//     transport is handled right here, on this goroutine: decrypted,
//     cached and forwarded to every subscriber before the next read (run to
//     completion, no hand-off);
//   - everything else — STUN, DTLS, junk — goes to pion's ICE UDP mux,
//     which demultiplexes by ICE username fragment and remote address to
//     the agents and their DTLS connections.
type callSocket struct {
	name   string // "publish" or "subscribe", for logs
	conn   pion.UDPConn
	mux    *ice.UDPMuxDefault
	toMux  *muxConn
	routes atomic.Pointer[routeTable]
	obs    Observer
	log    *zap.Logger

	routesMu sync.Mutex            // serializes route changes; guards ufrags
	ufrags   map[string]*transport // by local ICE ufrag (nomination.go)
	done     chan struct{}
}

// routeTable maps a client's address to its transport on this socket. It is
// replaced whole on every change, so the read loop looks it up without a lock.
type routeTable map[netip.AddrPort]*transport

func listenSocket(cfg *Config, name string, port int) (*callSocket, error) {
	conn, err := cfg.Net.ListenUDP("udp", &net.UDPAddr{IP: cfg.ListenIP, Port: port})
	if err != nil {
		return nil, err
	}
	// Room for bursts of key frames from many publishers before the reader runs.
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	s := &callSocket{name: name, conn: conn, obs: cfg.Observer, done: make(chan struct{}), ufrags: map[string]*transport{},
		log: cfg.Logger.With(zap.String("socket", name))}
	empty := routeTable{}
	s.routes.Store(&empty)
	s.toMux = newMuxConn(conn, cfg.Observer)
	s.mux = ice.NewUDPMuxDefault(ice.UDPMuxParams{
		UDPConn: s.toMux,
		Logger:  pionlog.Factory{Log: cfg.Logger.Named("pion"), Demote: true}.NewLogger("udpmux"),
		Net:     cfg.Net,
	})
	return s, nil
}

// run is the socket's read loop; p is this goroutine's egress.
func (s *callSocket) run(p *pump) {
	defer close(s.done)
	msgs := newDatagrams(readBatchSize)
	r := newBatchReader(s.conn)
	for {
		n, err := r.readBatch(msgs)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.toMux.isClosed() {
				return
			}
			s.log.Debug("read", zap.Error(err))
			time.Sleep(time.Millisecond) // e.g. ECONNREFUSED surfaced by ICMP: go on
			continue
		}
		p.tick()
		for i := 0; i < n; i++ {
			s.handle(msgs[i].buf[:msgs[i].n], msgs[i].addr, p)
			if p.n > 0 {
				p.send()
			}
		}
		p.flush()
	}
}

func (s *callSocket) handle(b []byte, from netip.AddrPort, p *pump) {
	if len(b) == 0 {
		return
	}
	if b[0] >= 128 && b[0] < 192 { // RTP or RTCP (RFC 7983 §7)
		if t := (*s.routes.Load())[from]; t != nil && t.onPath(pathUDP) {
			t.receive(b, t.inUDP, p)
			return
		}
		s.obs.PacketDropped("unrouted")
		return
	}
	if b[0] < 2 { // STUN (RFC 7983 §7): a client may nominate a new address
		if t := (*s.routes.Load())[from]; t == nil {
			s.nominated(b, from)
		}
	}
	s.toMux.deliver(b, from)
}

// setRoute points from at t (replacing whatever was there) and removes t's
// previous address, if any.
func (s *callSocket) setRoute(t *transport, from, previous netip.AddrPort) {
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	old := *s.routes.Load()
	next := make(routeTable, len(old)+1)
	for k, v := range old {
		if k != previous || v != t {
			next[k] = v
		}
	}
	if from.IsValid() {
		next[from] = t
	}
	s.routes.Store(&next)
}

// dropRoutes removes every address of t.
func (s *callSocket) dropRoutes(t *transport) {
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	old := *s.routes.Load()
	next := make(routeTable, len(old))
	for k, v := range old {
		if v != t {
			next[k] = v
		}
	}
	s.routes.Store(&next)
}

// close stops the read loop and pion's mux. Idempotent. The mux is closed
// first: its worker then sees it closed when its read fails and returns
// quietly, instead of logging the failed read (after a test has ended, too).
func (s *callSocket) close() {
	_ = s.mux.Close()
	s.toMux.close()
	_ = s.conn.Close()
}

// wait returns once the read loop has stopped.
func (s *callSocket) wait() { <-s.done }

// muxConn is what pion's UDP mux reads from and writes to: reads come from
// the call socket's loop (the datagrams it does not handle itself), writes
// go straight to the socket. It implements ice.AddrPortReaderWriter, which
// keeps pion's mux on its allocation-free path.
type muxConn struct {
	pion.UDPConn // LocalAddr, deadlines, buffers
	queue        chan *muxDatagram
	free         chan *muxDatagram
	closed       chan struct{}
	once         sync.Once
	obs          Observer
}

type muxDatagram struct {
	buf  [maxDatagram]byte
	n    int
	addr netip.AddrPort
}

// muxQueue bounds what waits for pion (STUN and DTLS): a junk flood costs at
// most this many buffers and is dropped beyond it.
const muxQueue = 256

func newMuxConn(conn pion.UDPConn, obs Observer) *muxConn {
	m := &muxConn{UDPConn: conn, queue: make(chan *muxDatagram, muxQueue),
		free: make(chan *muxDatagram, muxQueue), closed: make(chan struct{}), obs: obs}
	for range muxQueue {
		m.free <- &muxDatagram{}
	}
	return m
}

func (m *muxConn) deliver(b []byte, from netip.AddrPort) {
	select {
	case d := <-m.free:
		d.n = copy(d.buf[:], b)
		d.addr = from
		m.queue <- d // never blocks: at most muxQueue buffers exist
	default:
		m.obs.PacketDropped("control_queue_full")
	}
}

func (m *muxConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-m.queue:
		n := copy(b, d.buf[:d.n])
		addr := d.addr
		m.free <- d
		return n, addr, nil
	case <-m.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (m *muxConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := m.ReadFromAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(a), nil
}

func (m *muxConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if u, ok := m.UDPConn.(*net.UDPConn); ok {
		return u.WriteToUDPAddrPort(b, addr)
	}
	return m.UDPConn.WriteTo(b, net.UDPAddrFromAddrPort(addr))
}

func (m *muxConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	return m.UDPConn.WriteTo(b, addr)
}

// Close is pion's mux closing its side; the socket itself is closed by the call.
func (m *muxConn) Close() error {
	m.close()
	return nil
}

func (m *muxConn) close() { m.once.Do(func() { close(m.closed) }) }

func (m *muxConn) isClosed() bool {
	select {
	case <-m.closed:
		return true
	default:
		return false
	}
}

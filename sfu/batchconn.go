package sfu

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// Batched egress. Every subscriber of a call writes through the same UDP
// socket (the ICE mux on P+1), each from its own writer goroutine: one
// sendmsg(2) per packet per subscriber. batchConn sits between pion's UDP
// mux and that socket: a write copies the packet into a pooled slot and
// queues it, and one flusher goroutine per socket sends everything queued
// with a single sendmmsg(2) (golang.org/x/net/ipv4 WriteBatch). A batch
// forms only while the previous one is in the kernel, so an idle socket
// sends each packet at once: no timer, no added latency at low load.
//
// The queue is bounded (maxBatchSlots); when it is full a writer waits, as it
// would on a full socket send buffer. Slots are allocated on first need and
// reused, so an idle call holds no buffers and a busy one allocates nothing
// per packet.

const (
	// batchSlotSize holds any SRTP or DTLS datagram pion writes (a path MTU
	// of 1200–1500 bytes plus SRTP overhead); a slot grows for anything
	// larger, so order is kept whatever the size.
	batchSlotSize = 2048
	// maxBatchSlots bounds one socket's queue: 512 × 2 KiB = 1 MiB at most.
	maxBatchSlots = 512
	// maxBatch is how many datagrams one sendmmsg carries at most (Linux
	// UIO_MAXIOV is 1024; 64 already makes the per-call cost negligible).
	maxBatch = 64
)

// errBatchConnClosed is returned by writes after Close.
var errBatchConnClosed = net.ErrClosed

type batchSlot struct {
	buf  []byte
	ip   [16]byte
	addr net.UDPAddr // IP points into ip: no allocation per packet
}

// batchWriter is ipv4.PacketConn's WriteBatch (ipv6.PacketConn has the same
// method and message type): what the flusher needs.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

type batchConn struct {
	*net.UDPConn // reads, addresses, deadlines and options go straight through

	bw      batchWriter
	queue   chan *batchSlot // capacity maxBatchSlots: a held slot always fits
	free    chan *batchSlot
	slots   atomic.Int32 // allocated so far
	closed  chan struct{}
	done    chan struct{}
	once    sync.Once
	onError func(error) // a failed datagram (counted by the caller); may be nil

	batches, packets atomic.Uint64 // for tests and benchmarks
}

// newBatchConn wraps conn and starts its flusher.
func newBatchConn(conn *net.UDPConn, onError func(error)) *batchConn {
	c := &batchConn{
		UDPConn: conn,
		bw:      ipv4.NewPacketConn(conn),
		queue:   make(chan *batchSlot, maxBatchSlots),
		free:    make(chan *batchSlot, maxBatchSlots),
		closed:  make(chan struct{}),
		done:    make(chan struct{}),
		onError: onError,
	}
	go c.flush()
	return c
}

// ReadFromAddrPort and WriteToAddrPort make pion's mux use the
// allocation-free netip path (ice.AddrPortReaderWriter).
func (c *batchConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.UDPConn.ReadFromUDPAddrPort(b)
}

// WriteTo queues b for addr (a *net.UDPAddr).
func (c *batchConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("sfu: batchConn writes to UDP addresses only")
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

// WriteToAddrPort copies b into a slot and queues it. It returns once
// queued: a send error shows up in onError, as with any UDP datagram whose
// loss the sender never learns about.
func (c *batchConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	s, err := c.slot()
	if err != nil {
		return 0, err
	}
	if len(b) > cap(s.buf) {
		s.buf = make([]byte, len(b))
	}
	s.buf = append(s.buf[:0], b...)
	ip := addr.Addr().Unmap()
	if ip.Is4() {
		a := ip.As4()
		copy(s.ip[:], a[:])
		s.addr.IP = s.ip[:4]
	} else {
		s.ip = ip.As16()
		s.addr.IP = s.ip[:]
	}
	s.addr.Port = int(addr.Port())
	s.addr.Zone = ip.Zone()
	c.queue <- s
	return len(b), nil
}

// slot takes a free slot, allocates one while under the bound, or waits.
func (c *batchConn) slot() (*batchSlot, error) {
	select {
	case <-c.closed:
		return nil, errBatchConnClosed
	default:
	}
	select {
	case s := <-c.free:
		return s, nil
	default:
	}
	if c.slots.Add(1) <= maxBatchSlots {
		return &batchSlot{buf: make([]byte, 0, batchSlotSize)}, nil
	}
	c.slots.Add(-1)
	select {
	case s := <-c.free:
		return s, nil
	case <-c.closed:
		return nil, errBatchConnClosed
	}
}

// flush is the socket's only batched writer.
func (c *batchConn) flush() {
	defer close(c.done)
	slots := make([]*batchSlot, 0, maxBatch)
	msgs := make([]ipv4.Message, maxBatch)
	for i := range msgs {
		msgs[i].Buffers = make([][]byte, 1)
	}
	for {
		select {
		case s := <-c.queue:
			slots = append(slots[:0], s)
		case <-c.closed:
			return
		}
	fill: // take what else is queued right now, without waiting
		for len(slots) < maxBatch {
			select {
			case s := <-c.queue:
				slots = append(slots, s)
			default:
				break fill
			}
		}
		for i, s := range slots {
			msgs[i].Buffers[0] = s.buf
			msgs[i].Addr = &s.addr
		}
		c.send(msgs[:len(slots)])
		for i, s := range slots {
			msgs[i].Addr = nil
			c.free <- s // never blocks: at most maxBatchSlots exist
		}
	}
}

// send writes ms with as few sendmmsg calls as possible. sendmmsg stops at
// the first datagram that fails (e.g. an unreachable address); that one is
// reported and skipped, the rest still go out.
func (c *batchConn) send(ms []ipv4.Message) {
	c.batches.Add(1)
	c.packets.Add(uint64(len(ms)))
	for len(ms) > 0 {
		n, err := c.bw.WriteBatch(ms, 0)
		if err != nil {
			if c.onError != nil {
				c.onError(err)
			}
			n = max(n, 1)
			select {
			case <-c.closed:
				return
			default:
			}
		}
		ms = ms[n:]
	}
}

// Close stops the flusher and closes the socket. Idempotent.
func (c *batchConn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.closed)
		err = c.UDPConn.Close()
		<-c.done
	})
	return err
}

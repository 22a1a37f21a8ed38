package sfu

import (
	"net"
	"sync"
)

// tcpQueue is the one hand-off on the packet path, and only for transports
// that can block: an ICE-TCP connection (RFC 6544; RFC 4571 framing is
// pion's). Packets are copied into pooled buffers and written by one
// goroutine; a full queue drops the newest packet (counted), so a slow TCP
// client loses media but never stalls the goroutine that forwards to
// everybody else. It exists only once a transport's path is TCP, and its
// buffers are allocated as the queue first fills.
type tcpQueue struct {
	conn   func() net.Conn // the ICE connection, once there is one
	queue  chan *tcpBuf
	free   chan *tcpBuf
	made   int // buffers allocated (enqueue's goroutine only)
	size   int
	onDrop func(reason string)
	closed chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

type tcpBuf struct {
	b []byte
	n int
}

func newTCPQueue(conn func() net.Conn, size int, onDrop func(string)) *tcpQueue {
	q := &tcpQueue{conn: conn, queue: make(chan *tcpBuf, size), free: make(chan *tcpBuf, size),
		size: size, onDrop: onDrop, closed: make(chan struct{})}
	q.wg.Add(1)
	go q.run()
	return q
}

// enqueue copies b; nil-safe (no queue: the path is not TCP).
func (q *tcpQueue) enqueue(b []byte) {
	if q == nil {
		return
	}
	var buf *tcpBuf
	select {
	case buf = <-q.free:
	default:
		if q.made >= q.size {
			q.onDrop("queue_full")
			return
		}
		q.made++
		buf = &tcpBuf{b: make([]byte, maxDatagram)}
	}
	buf.n = copy(buf.b, b)
	q.queue <- buf // at most size buffers exist: never blocks
}

func (q *tcpQueue) run() {
	defer q.wg.Done()
	for {
		select {
		case buf := <-q.queue:
			var err error
			if c := q.conn(); c != nil {
				_, err = c.Write(buf.b[:buf.n])
			}
			q.free <- buf
			if err != nil {
				q.onDrop("write")
			}
		case <-q.closed:
			return
		}
	}
}

func (q *tcpQueue) close() {
	q.once.Do(func() { close(q.closed) })
	q.wg.Wait()
}

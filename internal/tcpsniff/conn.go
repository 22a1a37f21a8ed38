package tcpsniff

import (
	"net"
	"sync"
)

// conn replays the bytes read while sniffing before reading on, and tells
// the listener once when it closes (connection accounting).
type conn struct {
	net.Conn
	peeked []byte // not yet replayed; a slice of the sniff buffer

	closeOnce sync.Once
	onClose   func()
}

func (c *conn) Read(p []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(p, c.peeked)
		c.peeked = c.peeked[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Close closes the connection; the first call also releases its slot.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		if c.onClose != nil {
			c.onClose()
		}
	})
	return err
}

// subListener hands out the connections of one Kind. Its Addr is the shared
// listener's, which is what pion's TCP mux advertises as the passive
// candidate's port.
type subListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}

	mu       sync.Mutex // orders offer against Close, so no conn is queued after the drain
	isClosed bool
}

func newSubListener(addr net.Addr, backlog int) *subListener {
	return &subListener{addr: addr, ch: make(chan net.Conn, backlog), closed: make(chan struct{})}
}

// offer queues c for Accept without blocking; false means the consumer is
// gone or so far behind that its backlog is full, and the caller closes c.
func (l *subListener) offer(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed {
		return false
	}
	select {
	case l.ch <- c:
		return true
	default:
		return false
	}
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and closes the connections still queued. Idempotent.
func (l *subListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed {
		return nil
	}
	l.isClosed = true
	close(l.closed)
	for {
		select {
		case c := <-l.ch:
			_ = c.Close()
		default:
			return nil
		}
	}
}

func (l *subListener) Addr() net.Addr { return l.addr }

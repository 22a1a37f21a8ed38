package turnproxy

import (
	"net"
	"time"
)

// connListener wraps every TURN connection: idle ones are closed (pion/turn
// sets no deadlines, and a half-open connection would otherwise hold its
// goroutine forever), and each goes through filterConn.
type connListener struct {
	net.Listener
	s *Server
}

func (l connListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		fc := newFilterConn(&idleConn{Conn: c, idle: l.s.cfg.IdleTimeout}, l.s)
		if l.s.track(fc) {
			return fc, nil
		}
		_ = c.Close()
	}
}

type idleConn struct {
	net.Conn
	idle time.Duration
	// extended is when the read deadline was last pushed out; only the
	// reading goroutine touches it.
	extended time.Time
}

// Read pushes the deadline out at most a few times per idle period, not on
// every packet.
func (c *idleConn) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(c.extended) > c.idle/4 {
		c.extended = now
		_ = c.Conn.SetReadDeadline(now.Add(c.idle))
	}
	return c.Conn.Read(p)
}

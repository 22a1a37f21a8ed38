package turnproxy

import (
	"net"
	"time"
)

// idleListener wraps every TURN connection so that one that receives
// nothing for the idle timeout is closed: pion/turn sets no deadlines, and a
// half-open connection would otherwise hold its goroutine forever.
type idleListener struct {
	net.Listener
	idle time.Duration
}

func (l idleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &idleConn{Conn: c, idle: l.idle}, nil
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

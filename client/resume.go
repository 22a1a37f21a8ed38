package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Session resume (docs/signaling.md, "Resuming a session"): when the
// signaling socket drops, the server keeps the participant — transports,
// tracks, subscriptions — for the grace period it announced in `joined`.
// The client dials again and sends `resume` with the credential from
// `joined` and the seq of the last call message it handled; the server
// answers `resumed` and replays what was missed. Media keeps flowing
// meanwhile when the network path itself is fine; when it changed, the ICE
// restarts after the resume (icerestart.go) find the new path.

// Reconnect timing: the first retry is quick (a socket closed by a proxy
// or a server restart of the front end), later ones back off.
const (
	resumeFirstRetry = 100 * time.Millisecond
	resumeMaxRetry   = 2 * time.Second
	resumeDialLimit  = 5 * time.Second
)

// ErrSessionLost wraps the cause when the session could not be resumed
// (the grace period passed, or the server no longer knows the session).
var ErrSessionLost = errors.New("client: session lost")

// socket is the current signaling socket, nil while reconnecting.
func (c *Client) socket() *websocket.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// Resumes counts the sessions resumed on a new socket.
func (c *Client) Resumes() int { return int(c.resumes.Load()) }

// reconnect runs in the reader after its socket failed with cause. It
// resumes the session on a new socket and returns it, or stops the client
// and returns nil.
func (c *Client) reconnect(cause error) *websocket.Conn {
	c.mu.Lock()
	old := c.conn
	c.conn = nil
	closed := c.closed
	c.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	select {
	case <-c.closing:
		return nil
	default:
	}
	if closed || c.resume == "" || c.Err() != nil {
		c.fail(c.connectionLost(cause))
		return nil
	}
	c.log.Info("signaling socket lost; resuming", zap.Error(cause))
	deadline := time.Now().Add(c.resumeGrace)
	wait := resumeFirstRetry
	for attempt := 1; ; attempt++ {
		conn, err := c.dialResume()
		if err == nil {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				_ = conn.Close()
				return nil
			}
			c.conn = conn
			c.mu.Unlock()
			c.resumes.Add(1)
			c.log.Info("session resumed", zap.Int("attempt", attempt), zap.Uint64("lastSeq", c.lastSeq.Load()))
			c.goTracked(c.afterResume)
			return conn
		}
		var se *ServerError
		if errors.As(err, &se) || time.Now().Add(wait).After(deadline) {
			c.fail(fmt.Errorf("%w: %w (socket lost: %v)", ErrSessionLost, err, cause))
			return nil
		}
		c.log.Debug("resume attempt failed", zap.Int("attempt", attempt), zap.Error(err))
		select {
		case <-time.After(wait):
		case <-c.closing:
			return nil
		}
		wait = min(2*wait, resumeMaxRetry)
	}
}

// dialResume opens a socket and resumes the session on it: it returns once
// `resumed` arrived; the replay that follows is read by the reader.
func (c *Client) dialResume() (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(c.ctx, resumeDialLimit)
	defer cancel()
	d := c.dialer()
	conn, resp, err := d.DialContext(ctx, c.cfg.SignalingURL, nil)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	conn.SetReadLimit(maxServerMessage)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	deadline, _ := ctx.Deadline()
	_ = conn.SetWriteDeadline(deadline)
	_ = conn.SetReadDeadline(deadline)
	last := c.lastSeq.Load()
	if err := conn.WriteJSON(message{Type: "resume", V: protocolVersion, Resume: c.resume, LastSeq: &last}); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("send resume: %w", err)
	}
	for {
		var m message
		if err := conn.ReadJSON(&m); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("waiting for resumed: %w", err)
		}
		switch m.Type {
		case "resumed":
			_ = conn.SetWriteDeadline(time.Time{})
			return conn, nil
		case "error":
			_ = conn.Close()
			return nil, &ServerError{Code: m.Code, Message: m.Message}
		}
	}
}

// afterResume sends what the server may have missed while the socket was
// down, and restarts ICE on the transports that lost their path: the
// network may have changed under both the socket and the media.
func (c *Client) afterResume() {
	for _, lt := range c.local {
		muted := lt.muted.Load()
		_ = c.send(message{Type: "mute", TrackID: lt.track.ID(), Muted: &muted})
	}
	for _, t := range []*transport{c.pub, c.sub} {
		if c.pubPending.Load() && t == c.pub {
			// The answer to our last offer went down with the old socket.
			c.restartICE(t, "publish offer unanswered when the socket dropped")
			continue
		}
		if !t.isConnected() {
			c.restartICE(t, "not connected after the resume")
		}
	}
}

package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Signaling timing. The server closes a socket silent for 30 s and pings
// every 15 s (docs/signaling.md); the client also sends its own `ping` every
// keepaliveInterval so that a dead server is noticed within readTimeout even
// when the server sends no WebSocket pings.
const (
	protocolVersion   = 1
	keepaliveInterval = 15 * time.Second
	readTimeout       = 3 * keepaliveInterval
	writeTimeout      = 10 * time.Second
	// maxServerMessage bounds what we read: a subscribe offer for a full
	// call (50 participants, 2 tracks each) is well under 1 MiB.
	maxServerMessage = 4 << 20
	outQueueLen      = 256
)

// message is every signaling message, client→server and server→client; the
// `type` field says which fields matter.
type message struct {
	Type          string                   `json:"type"`
	V             int                      `json:"v,omitempty"`
	Token         string                   `json:"token,omitempty"`
	Transport     string                   `json:"transport,omitempty"`
	SDP           string                   `json:"sdp,omitempty"`
	Candidate     *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	TrackID       string                   `json:"trackId,omitempty"`
	Muted         *bool                    `json:"muted,omitempty"`
	ID            json.Number              `json:"id,omitempty"`
	CallID        string                   `json:"callId,omitempty"`
	ParticipantID string                   `json:"participantId,omitempty"`
	Participants  []Participant            `json:"participants,omitempty"`
	ICEServers    []webrtc.ICEServer       `json:"iceServers,omitempty"`
	Participant   *Participant             `json:"participant,omitempty"`
	Track         *TrackInfo               `json:"track,omitempty"`
	Code          string                   `json:"code,omitempty"`
	Message       string                   `json:"message,omitempty"`
	Reason        string                   `json:"reason,omitempty"`
	Speakers      []Speaker                `json:"speakers,omitempty"`
	Dominant      string                   `json:"dominant,omitempty"`
	// Session resume (resume.go): the credential and grace from `joined`,
	// the number every call message carries, the last one received.
	Resume      string  `json:"resume,omitempty"`
	ResumeGrace int     `json:"resumeGrace,omitempty"`
	Seq         uint64  `json:"seq,omitempty"`
	LastSeq     *uint64 `json:"lastSeq,omitempty"`
	// Video (simulcast.go): the client's `subscription`, the server's
	// `layers` (Rids) and `videoPaused` (Paused, Reason).
	Video  *[]VideoSubscription `json:"video,omitempty"`
	Rids   []string             `json:"rids,omitempty"`
	Paused bool                 `json:"paused,omitempty"`
}

// Participant is another member of the call and its published tracks.
type Participant struct {
	ID     string      `json:"id"`
	Name   string      `json:"name,omitempty"` // display name, if the API gave one
	Tracks []TrackInfo `json:"tracks"`
}

// TrackInfo is one published track as signaled.
type TrackInfo struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Muted bool   `json:"muted"`
}

// ServerError is an `error` message from the server.
type ServerError struct {
	Code    string // e.g. invalid_token, call_full
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("orville server error %s: %s", e.Code, e.Message)
}

// EndedError is Err() after an `ended` message.
type EndedError struct {
	Reason string // e.g. ended_by_api, removed, replaced
}

func (e *EndedError) Error() string { return "orville: call ended: " + e.Reason }

var (
	// ErrClosed is Err() after Close.
	ErrClosed = errors.New("client: closed")
	// ErrConnectionLost wraps the cause when the signaling socket drops.
	ErrConnectionLost = errors.New("client: signaling connection lost")
)

// dialAndJoin opens the WebSocket, sends `join` and waits for `joined`. It
// runs before the reader and writer goroutines exist, so it may use the
// connection directly.
func (c *Client) dialAndJoin(ctx context.Context) (*websocket.Conn, *message, error) {
	d := c.dialer()
	conn, resp, err := d.DialContext(ctx, c.cfg.SignalingURL, nil)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, nil, fmt.Errorf("client: dial %s: %w", c.cfg.SignalingURL, err)
	}
	conn.SetReadLimit(maxServerMessage)
	// Unblock the reads below if ctx is cancelled before its deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	deadline, _ := ctx.Deadline()
	_ = conn.SetWriteDeadline(deadline)
	_ = conn.SetReadDeadline(deadline)

	joined, err := func() (*message, error) {
		if err := conn.WriteJSON(message{Type: "join", V: protocolVersion, Token: c.cfg.Token}); err != nil {
			return nil, fmt.Errorf("send join: %w", err)
		}
		for {
			var m message
			if err := conn.ReadJSON(&m); err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("waiting for joined: %w", ctx.Err())
				}
				return nil, fmt.Errorf("waiting for joined: %w", err)
			}
			switch m.Type {
			case "joined":
				return &m, nil
			case "error":
				return nil, &ServerError{Code: m.Code, Message: m.Message}
			case "ended":
				return nil, &EndedError{Reason: m.Reason}
			default:
				c.log.Debug("ignoring message before joined", zap.String("type", m.Type))
			}
		}
	}()
	if err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("client: join: %w", err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, joined, nil
}

// dialer dials the signaling socket (join and resume).
func (c *Client) dialer() *websocket.Dialer {
	dial := c.cfg.NetDialContext
	if c.socks != nil {
		dial = c.socks.DialContext // CONNECT through the SOCKS relay
	}
	return &websocket.Dialer{TLSClientConfig: c.cfg.TLSConfig, HandshakeTimeout: c.cfg.JoinTimeout,
		NetDialContext: dial}
}

// send queues a message for the writer goroutine (gorilla/websocket allows
// one concurrent writer).
func (c *Client) send(m message) error {
	select {
	case <-c.closing:
		return ErrClosed
	default:
	}
	select {
	case c.out <- m:
		return nil
	case <-c.closing:
		return ErrClosed
	}
}

// writeLoop is the only writer of data frames. A write error closes the
// socket, which the reader notices (and resumes, resume.go); what is
// queued while no socket is up is dropped: after a resume the client sends
// its state again rather than stale answers. On quit it flushes the queue
// (so a final `leave` goes out) and sends a close frame (RFC 6455 §5.5.1).
func (c *Client) writeLoop() {
	defer close(c.writerDone)
	for {
		select {
		case m := <-c.out:
			conn := c.socket()
			if conn == nil {
				continue
			}
			if err := write(conn, m); err != nil {
				c.log.Debug("signaling write failed", zap.Error(err))
				_ = conn.Close()
			}
		case <-c.writeQuit:
			c.flush()
			return
		}
	}
}

// flush writes what is still queued, then the close frame.
func (c *Client) flush() {
	conn := c.socket()
	if conn == nil {
		return
	}
	for {
		select {
		case m := <-c.out:
			if write(conn, m) != nil {
				return
			}
		default:
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return
		}
	}
}

func write(conn *websocket.Conn, m message) error {
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return conn.WriteJSON(m)
}

// readLoop is the only reader. It handles messages in arrival order, which
// is what keeps subscribe answers in the order of the offers. When the
// socket drops it resumes the session on a new one (resume.go), or stops
// the client.
func (c *Client) readLoop() {
	defer close(c.readerDone)
	conn := c.socket()
	for {
		err := c.readFrom(conn)
		if conn = c.reconnect(err); conn == nil {
			return
		}
	}
}

// readFrom handles conn's messages until it fails.
func (c *Client) readFrom(conn *websocket.Conn) error {
	// The server's WebSocket pings (RFC 6455 §5.5.2) also prove it alive.
	// Like gorilla's default handler, answer with a pong (WriteControl may
	// run concurrently with the writer goroutine).
	conn.SetPingHandler(func(data string) error {
		_ = conn.SetReadDeadline(time.Now().Add(readTimeout))
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeTimeout))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil
		}
		return err
	})
	for {
		_ = conn.SetReadDeadline(time.Now().Add(readTimeout))
		_, data, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		var m message
		if err := json.Unmarshal(data, &m); err != nil {
			c.log.Warn("bad message from server", zap.Error(err))
			continue
		}
		if m.Seq > 0 {
			c.lastSeq.Store(m.Seq)
		}
		c.handle(&m)
	}
}

// connectionLost builds Err() for a dropped socket, naming the last server
// error since servers send `error` right before closing (e.g. rate_limited).
func (c *Client) connectionLost(err error) error {
	c.mu.Lock()
	last := c.lastServerErr
	c.mu.Unlock()
	if last != nil {
		return fmt.Errorf("%w after %w: %v", ErrConnectionLost, last, err)
	}
	return fmt.Errorf("%w: %w", ErrConnectionLost, err)
}

// keepaliveLoop sends `ping` so the read deadline only fires on a dead peer.
func (c *Client) keepaliveLoop() {
	t := time.NewTicker(keepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.mu.Lock()
			c.pingSeq++
			id := c.pingSeq
			c.mu.Unlock()
			_ = c.send(message{Type: "ping", ID: json.Number(fmt.Sprint(id))})
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *Client) handle(m *message) {
	switch m.Type {
	case "offer":
		if m.Transport != TransportSubscribe {
			c.log.Warn("offer for unexpected transport", zap.String("transport", m.Transport))
			return
		}
		if err := c.answerSubscribe(m.SDP); err != nil {
			c.fail(err)
		}
	case "answer":
		if m.Transport != TransportPublish {
			c.log.Warn("answer for unexpected transport", zap.String("transport", m.Transport))
			return
		}
		c.onPublishAnswer(m.SDP)
	case "candidate":
		if m.Candidate == nil {
			return
		}
		switch m.Transport {
		case TransportPublish:
			c.pub.onRemoteCandidate(*m.Candidate)
		case TransportSubscribe:
			c.sub.onRemoteCandidate(*m.Candidate)
		}
	case "participantJoined", "participantLeft", "trackPublished", "trackUnpublished", "mute":
		c.updateParticipants(m)
		c.notifyRoster(m) // E2EE key switches (e2ee.go)
	case "speakers":
		c.onSpeakers(m)
	case "error":
		c.onServerError(&ServerError{Code: m.Code, Message: m.Message})
	case "ended":
		c.log.Info("call ended by server", zap.String("reason", m.Reason))
		c.fail(&EndedError{Reason: m.Reason})
	case "pong":
		c.onPong(string(m.ID))
	case "iceServers":
		c.onICEServers(m.ICEServers)
	case "layers":
		c.onLayers(m.TrackID, m.Rids)
	case "videoPaused":
		c.onVideoPaused(m)
	default:
		c.log.Debug("ignoring message", zap.String("type", m.Type))
	}
}

// answerSubscribe answers a server offer on the subscribe transport.
func (c *Client) answerSubscribe(sdp string) error {
	t := c.sub
	if err := t.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return err
	}
	answer, err := t.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("client: subscribe: create answer: %w", err)
	}
	if err := t.pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("client: subscribe: set local answer: %w", err)
	}
	if err := c.send(message{Type: "answer", Transport: TransportSubscribe, SDP: answer.SDP}); err != nil {
		return err
	}
	t.markLocalSent()
	return nil
}

// onPublishAnswer applies the server's answer to our publish offer and tells
// Join (or an ICE restart) how it went.
func (c *Client) onPublishAnswer(sdp string) {
	if !c.pubPending.CompareAndSwap(true, false) {
		c.log.Warn("unexpected publish answer")
		return
	}
	c.publishResult(c.pub.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}))
}

// publishResult hands the outcome of a publish offer to whoever waits.
func (c *Client) publishResult(err error) {
	if err != nil {
		c.log.Warn("publish answer", zap.Error(err))
	}
	select {
	case c.pubResult <- err:
	default: // nobody waits (an ICE restart's offer) and one is queued
	}
}

// onServerError records an `error`; while the publish offer is outstanding
// it is taken as the refusal of that offer.
func (c *Client) onServerError(e *ServerError) {
	c.log.Warn("server error", zap.String("code", e.Code), zap.String("message", e.Message))
	c.mu.Lock()
	c.serverErrors++
	c.lastServerErr = e
	c.mu.Unlock()
	if c.pubPending.CompareAndSwap(true, false) {
		c.publishResult(fmt.Errorf("client: publish offer refused: %w", e))
	}
}

// updateParticipants applies a participant or track event to the roster.
func (c *Client) updateParticipants(m *message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	get := func(id string) *Participant {
		p := c.participants[id]
		if p == nil {
			p = &Participant{ID: id}
			c.participants[id] = p
		}
		return p
	}
	switch m.Type {
	case "participantJoined":
		if m.Participant != nil && m.Participant.ID != c.participantID {
			p := *m.Participant
			c.participants[p.ID] = &p
		}
	case "participantLeft":
		delete(c.participants, m.ParticipantID)
	case "trackPublished":
		if m.Track != nil && m.ParticipantID != c.participantID {
			p := get(m.ParticipantID)
			p.Tracks = append(removeTrack(p.Tracks, m.Track.ID), *m.Track)
		}
	case "trackUnpublished":
		if p := c.participants[m.ParticipantID]; p != nil {
			p.Tracks = removeTrack(p.Tracks, m.TrackID)
		}
	case "mute":
		if p := c.participants[m.ParticipantID]; p != nil && m.Muted != nil {
			for i := range p.Tracks {
				if p.Tracks[i].ID == m.TrackID {
					p.Tracks[i].Muted = *m.Muted
				}
			}
		}
	}
}

func removeTrack(ts []TrackInfo, id string) []TrackInfo {
	out := ts[:0]
	for _, t := range ts {
		if t.ID != id {
			out = append(out, t)
		}
	}
	return out
}

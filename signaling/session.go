package signaling

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/sfu"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Limits of the client channel (docs/signaling.md).
const (
	maxMessageBytes = 256 << 10
	// Before `join` the socket is unauthenticated: it may send only small
	// messages (a join with its token is well under 8 KiB), only a few of
	// them, and a ping's id is bounded, so one costs little to hold for
	// the 10 s it may wait.
	maxPreJoinBytes    = 8 << 10
	maxPreJoinMessages = 16
	maxPingIDBytes     = 64
	drainTimeout       = time.Second
	closeGrace         = time.Second
	drainBytes         = 1 << 20
	joinTimeout        = 10 * time.Second
	pingInterval       = 15 * time.Second
	pongTimeout        = 30 * time.Second
	writeTimeout       = 10 * time.Second
	outboxSize         = 256 // messages queued to one client before it is dropped as too slow
	maxInvalid         = 10
	messagesPerSec     = 50
	messageBurst       = 100
	handshakeTimeout   = 10 * time.Second
)

// session is one client's WebSocket: one reader (this goroutine), one writer.
type session struct {
	s    *Server
	conn *websocket.Conn
	log  *zap.Logger

	outbox  chan any
	mu      sync.Mutex
	closing bool
	refresh *time.Timer // iceServers messages (icerefresh.go)

	room    *roommgr.Room
	part    *sfu.Participant
	slot    *slot // the participant's place in the call (resume.go)
	claims  *Claims
	invalid int
	preJoin int // messages before join
	limiter *rate.Limiter

	done     chan struct{} // closed when the session must stop
	readDone chan struct{} // closed when the reader stopped reading
	doneOnce sync.Once
	closeMsg []byte // close frame the writer sends last
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{
		HandshakeTimeout: handshakeTimeout,
		ReadBufferSize:   4096, WriteBufferSize: 4096,
		// Clients are browsers on any origin (the web client may be hosted by
		// the messaging platform); the join token, not the origin, authorizes.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader already answered with an HTTP error
	}
	ss := &session{s: s, conn: conn, outbox: make(chan any, outboxSize),
		log:     s.log.With(zap.String("remote", r.RemoteAddr)),
		limiter: rate.NewLimiter(messagesPerSec, messageBurst), done: make(chan struct{}),
		readDone: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go ss.writeLoop()
	ss.readLoop()
}

func (ss *session) readLoop() {
	defer ss.finish()
	ss.conn.SetReadLimit(maxPreJoinBytes) // raised to maxMessageBytes by join
	_ = ss.conn.SetReadDeadline(time.Now().Add(joinTimeout))
	ss.conn.SetPongHandler(func(string) error {
		return ss.conn.SetReadDeadline(time.Now().Add(pongTimeout))
	})
	for {
		_, data, err := ss.conn.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				limit := "256 KiB"
				if ss.part == nil {
					limit = "8 KiB before join"
				}
				ss.fail(websocket.CloseMessageTooBig, codeBadMessage, "message exceeds "+limit)
				ss.drain()
			} else if ss.part == nil && !ss.isDone() {
				ss.log.Debug("socket closed before join", zap.Error(err))
			}
			return
		}
		if !ss.limiter.Allow() {
			ss.refuse(codeRateLimited, "more than 50 messages per second")
			continue
		}
		if ss.part == nil {
			if ss.preJoin++; ss.preJoin > maxPreJoinMessages {
				ss.fail(websocket.ClosePolicyViolation, codeNotJoined, "too many messages before join")
				return
			}
		}
		var m inMessage
		if err := json.Unmarshal(data, &m); err != nil || m.Type == "" {
			ss.refuse(codeBadMessage, "expected a JSON object with a \"type\"")
			continue
		}
		if stop := ss.handle(&m); stop {
			return
		}
	}
}

// drain reads and discards what the client still sends after an oversized
// message (gorilla stops at its header), for at most drainTimeout and
// drainBytes: closing a socket with unread data resets it, and the client
// would lose the close frame that says why.
func (ss *session) drain() {
	nc := ss.conn.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = io.CopyN(io.Discard, nc, drainBytes)
}

// refuse answers one bad message; too many close the socket (1008).
func (ss *session) refuse(code, msg string) {
	ss.send(errorMsg{Type: "error", Code: code, Message: msg})
	ss.invalid++
	if ss.invalid >= maxInvalid {
		ss.fail(websocket.ClosePolicyViolation, code, "too many invalid messages")
	}
}

// fail sends an error, then closes the socket with code.
func (ss *session) fail(code int, errCode, msg string) {
	ss.send(errorMsg{Type: "error", Code: errCode, Message: msg})
	ss.closeWith(code, msg)
}

// send queues a message for the writer. A client too slow to take 256 queued
// messages is disconnected rather than allowed to grow server memory.
func (ss *session) send(m any) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.sendLocked(m)
}

func (ss *session) sendLocked(m any) {
	if ss.closing {
		return
	}
	select {
	case ss.outbox <- m:
	default:
		ss.log.Warn("client too slow to read signaling messages; disconnecting")
		ss.closing = true
		ss.closeMsg = websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "signaling backlog")
		ss.stop()
	}
}

// closeWith queues a close frame after what is already queued.
func (ss *session) closeWith(code int, reason string) {
	ss.mu.Lock()
	if !ss.closing {
		ss.closing = true
		ss.closeMsg = websocket.FormatCloseMessage(code, reason)
		select {
		case ss.outbox <- nil: // marker: flush, then close
		default:
			ss.stop()
		}
	}
	ss.mu.Unlock()
}

func (ss *session) stop() { ss.doneOnce.Do(func() { close(ss.done) }) }

func (ss *session) isDone() bool {
	select {
	case <-ss.done:
		return true
	default:
		return false
	}
}

func (ss *session) writeLoop() {
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	defer func() {
		// The reader sees the client's answering close frame (or drains an
		// oversized message) first: closing a socket with unread data resets
		// it, and the client would lose our close frame. A client that does
		// not answer is cut off after closeGrace; closing unblocks the reader.
		select {
		case <-ss.readDone:
		case <-time.After(closeGrace):
		}
		_ = ss.conn.Close()
	}()
	for {
		select {
		case m := <-ss.outbox:
			_ = ss.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if m == nil { // close marker
				ss.mu.Lock()
				msg := ss.closeMsg
				ss.mu.Unlock()
				_ = ss.conn.WriteMessage(websocket.CloseMessage, msg)
				ss.stop()
				return
			}
			var err error
			if raw, ok := m.(json.RawMessage); ok { // already encoded (resume.go)
				err = ss.conn.WriteMessage(websocket.TextMessage, raw)
			} else {
				err = ss.conn.WriteJSON(m)
			}
			if err != nil {
				ss.stop()
				return
			}
		case <-ping.C:
			if err := ss.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				ss.stop()
				return
			}
		case <-ss.done:
			ss.mu.Lock()
			msg := ss.closeMsg
			ss.mu.Unlock()
			if msg != nil {
				_ = ss.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			}
			return
		}
	}
}

// finish runs when the reader ends: the participant's slot waits for a
// resume (unless it left), the writer stops.
func (ss *session) finish() {
	close(ss.readDone)
	ss.stopICERefresh()
	if ss.slot != nil {
		ss.slot.detach(ss)
	}
	ss.closeWith(websocket.CloseNormalClosure, "")
	// Give the writer a moment to flush the close frame; then force it.
	select {
	case <-ss.done:
	case <-time.After(time.Second):
		ss.stop()
	}
	_ = ss.conn.Close()
	ss.s.mu.Lock()
	delete(ss.s.sessions, ss)
	ss.s.mu.Unlock()
	ss.s.wg.Done()
}

// shutdown is the server closing: tell the client, then close.
func (ss *session) shutdown() {
	ss.send(endedMsg{Type: "ended", Reason: "server_shutdown"})
	ss.closeWith(websocket.CloseGoingAway, "server shutdown")
}

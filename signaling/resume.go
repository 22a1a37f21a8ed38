package signaling

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/sfu"
	"go.uber.org/zap"
)

// Session resume (docs/signaling.md, "Resuming a session"). A participant's
// place in a call — its sfu.Participant with its transports, tracks and
// subscriptions — is a slot that outlives the WebSocket it joined on: when the
// socket drops without `leave`, the slot waits ResumeGrace for the client to
// come back on a new socket with the credential from `joined`. Every message
// the call sends (events and subscribe offers) carries a sequence number and
// is kept in a bounded replay buffer, so a resuming client names the last one
// it got and receives exactly what it missed.
const (
	// replayMessages and replayBytes bound one slot's replay buffer. A
	// client that missed more than this cannot resume and joins again.
	replayMessages = 256
	replayBytes    = 1 << 20
	// takeoverWait bounds how long a resume waits for the socket it
	// replaces to stop handling messages.
	takeoverWait = 3 * time.Second
)

// sequenced is one call message as sent: its number and its JSON.
type sequenced struct {
	seq  uint64
	data []byte
}

// pendingOffer is a subscribe offer awaiting its answer: the message without
// its sequence number, and the number it was last sent with.
type pendingOffer struct {
	msg []byte
	seq uint64
}

// slot is one participant's place in a call across sockets. It is the
// sfu.Handler of the participant: events go into the replay buffer and, when
// a socket is attached and `joined` or `resumed` went out, to that socket.
type slot struct {
	s          *Server
	key        [sha256.Size]byte // hash of the resume credential
	credential string
	room       *roommgr.Room
	claims     *Claims
	log        *zap.Logger

	attachMu sync.Mutex // serialises resumes of this slot

	mu     sync.Mutex
	part   *sfu.Participant
	ss     *session // attached socket; nil while detached
	ready  bool     // ss was sent `joined`/`resumed`: events may flow
	seq    uint64   // last sequence number used
	replay []sequenced
	bytes  int
	// offer is the latest subscribe offer not yet answered: a client whose
	// answer was lost with its socket gets it again on resume.
	offer  *pendingOffer
	grace  *time.Timer
	closed bool
}

func newSlot(s *Server, ss *session, room *roommgr.Room, claims *Claims) (*slot, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	cred := base64.RawURLEncoding.EncodeToString(b)
	return &slot{s: s, key: sha256.Sum256([]byte(cred)), credential: cred, room: room, claims: claims,
		ss: ss, log: ss.log}, nil
}

// deliver numbers m, keeps it for replay and sends it to the attached socket.
func (sl *slot) deliver(m any, isOffer bool) {
	data, err := json.Marshal(m)
	if err != nil {
		sl.log.Error("encode call message", zap.Error(err))
		return
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.closed {
		return
	}
	e := sl.appendLocked(data)
	if isOffer {
		sl.offer = &pendingOffer{msg: data, seq: e.seq}
	}
	if sl.ss != nil && sl.ready {
		sl.ss.send(json.RawMessage(e.data))
	}
}

// appendLocked gives data the next sequence number (a trailing "seq" field)
// and keeps it, dropping the oldest entries beyond the bounds.
func (sl *slot) appendLocked(data []byte) sequenced {
	sl.seq++
	out := make([]byte, 0, len(data)+24)
	out = append(out, data[:len(data)-1]...) // data is a JSON object: drop "}"
	out = append(out, `,"seq":`...)
	out = strconv.AppendUint(out, sl.seq, 10)
	out = append(out, '}')
	e := sequenced{seq: sl.seq, data: out}
	sl.replay = append(sl.replay, e)
	sl.bytes += len(out)
	for len(sl.replay) > replayMessages || (sl.bytes > replayBytes && len(sl.replay) > 1) {
		sl.bytes -= len(sl.replay[0].data)
		sl.replay = sl.replay[1:]
	}
	return e
}

// joined sends `joined` to the socket that joined, then whatever the call
// sent meanwhile.
func (sl *slot) joined(m joinedMsg) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.ss == nil || sl.closed {
		return
	}
	sl.ss.send(m)
	sl.ready = true
	for _, e := range sl.replay {
		sl.ss.send(json.RawMessage(e.data))
	}
}

// outstandingOffer is the subscribe offer an answer arriving now answers.
func (sl *slot) outstandingOffer() *pendingOffer {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.offer
}

// answered records that o was answered. A later offer (made once the
// answer was applied) stays outstanding.
func (sl *slot) answered(o *pendingOffer) {
	sl.mu.Lock()
	if sl.offer == o {
		sl.offer = nil
	}
	sl.mu.Unlock()
}

// detach runs when ss ends without `leave`: the slot waits for a resume.
func (sl *slot) detach(ss *session) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.ss != ss || sl.closed {
		return
	}
	sl.ss, sl.ready = nil, false
	grace := sl.s.cfg.ResumeGrace
	sl.log.Info("client disconnected; keeping its place for a resume", zap.Duration("grace", grace))
	sl.grace = time.AfterFunc(grace, func() { sl.expire() })
}

// expire ends the participant whose client did not come back in time.
func (sl *slot) expire() {
	sl.mu.Lock()
	if sl.ss != nil || sl.closed {
		sl.mu.Unlock()
		return
	}
	sl.mu.Unlock()
	sl.log.Info("resume grace over; removing the participant")
	sl.leave()
}

// leave ends the participant (the client left, or its grace ran out).
func (sl *slot) leave() {
	sl.s.unregister(sl)
	sl.mu.Lock()
	part := sl.part
	sl.mu.Unlock()
	if part != nil {
		part.Close()
	}
}

// close marks the slot dead; it returns the attached socket, if any.
func (sl *slot) close() *session {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.closed = true
	if sl.grace != nil {
		sl.grace.Stop()
	}
	ss := sl.ss
	sl.ss, sl.replay, sl.offer = nil, nil, nil
	return ss
}

// resume attaches ss to the slot. lastSeq is the last call message the
// client received. The socket the slot was attached to, if any, is closed
// first, so its messages are all handled before the replay starts. It
// reports false when the client missed more than the replay buffer holds.
func (sl *slot) resume(ss *session, lastSeq uint64) bool {
	sl.attachMu.Lock()
	defer sl.attachMu.Unlock()
	sl.mu.Lock()
	old := sl.ss
	sl.ss, sl.ready = nil, false
	sl.mu.Unlock()
	if old != nil {
		old.takenOver()
		select {
		case <-old.readDone:
		case <-time.After(takeoverWait):
			sl.log.Warn("replaced socket still busy; resuming anyway")
		}
	}

	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.closed || !sl.coversLocked(lastSeq) {
		return false
	}
	if sl.grace != nil {
		sl.grace.Stop()
	}
	sl.ss, sl.ready = ss, true
	ss.send(resumedMsg{Type: "resumed", V: protocolVersion, CallID: sl.room.ID, ParticipantID: sl.claims.Subject,
		LastSeq: sl.seq, ICEServers: sl.s.cfg.ICEServers(sl.room.ID, sl.claims.Subject)})
	for _, e := range sl.replay {
		if e.seq > lastSeq {
			ss.send(json.RawMessage(e.data))
		}
	}
	if sl.offer != nil && sl.offer.seq <= lastSeq {
		// The client got this offer; its answer may have been lost.
		e := sl.appendLocked(sl.offer.msg)
		sl.offer.seq = e.seq
		ss.send(json.RawMessage(e.data))
	}
	sl.log.Info("client resumed", zap.Uint64("replayed", sl.seq-lastSeq))
	return true
}

// coversLocked reports whether every message after lastSeq is still kept.
func (sl *slot) coversLocked(lastSeq uint64) bool {
	if lastSeq > sl.seq {
		return false
	}
	if lastSeq == sl.seq {
		return true
	}
	return len(sl.replay) > 0 && sl.replay[0].seq <= lastSeq+1
}

// The sfu.Handler of the participant: every event is a call message.

func (sl *slot) SubscribeOffer(sdp string) {
	sl.deliver(sdpMsg{Type: "offer", Transport: "subscribe", SDP: sdp}, true)
}
func (sl *slot) ParticipantJoined(p sfu.ParticipantInfo) {
	sl.deliver(participantMsg{Type: "participantJoined", Participant: p}, false)
}
func (sl *slot) ParticipantLeft(id string) {
	sl.deliver(participantLeftMsg{Type: "participantLeft", ParticipantID: id}, false)
}
func (sl *slot) TrackPublished(pid string, t sfu.TrackInfo) {
	sl.deliver(trackMsg{Type: "trackPublished", ParticipantID: pid, Track: t}, false)
}
func (sl *slot) TrackUnpublished(pid, tid string) {
	sl.deliver(trackGoneMsg{Type: "trackUnpublished", ParticipantID: pid, TrackID: tid}, false)
}
func (sl *slot) TrackMuted(pid, tid string, muted bool) {
	sl.deliver(muteMsg{Type: "mute", ParticipantID: pid, TrackID: tid, Muted: muted}, false)
}
func (sl *slot) Speakers(list []sfu.SpeakerInfo, dominant string) {
	if list == nil {
		list = []sfu.SpeakerInfo{}
	}
	sl.deliver(speakersMsg{Type: "speakers", Speakers: list, Dominant: dominant}, false)
}

// Closed: the SFU ended this participant (left, call ended, removed,
// replaced, transport failed). The attached socket, if any, is told why.
func (sl *slot) Closed(reason string) {
	sl.s.unregister(sl)
	ss := sl.close()
	if ss == nil || reason == "left" {
		return
	}
	ss.send(endedMsg{Type: "ended", Reason: reason})
	ss.closeWith(websocket.CloseNormalClosure, reason)
}

// register makes a slot resumable; unregister forgets it (idempotent).
func (s *Server) register(sl *slot) {
	s.mu.Lock()
	s.slots[sl.key] = sl
	s.mu.Unlock()
}

func (s *Server) unregister(sl *slot) {
	s.mu.Lock()
	if s.slots[sl.key] == sl {
		delete(s.slots, sl.key)
	}
	s.mu.Unlock()
}

// lookupSlot finds the slot of a resume credential. The map is keyed by the
// credential's hash, so lookups reveal nothing about stored credentials.
func (s *Server) lookupSlot(credential string) *slot {
	key := sha256.Sum256([]byte(credential))
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slots[key]
}

// closeResumedElsewhere is the close code (RFC 6455 §7.4.2, private range)
// of a socket whose session resumed on another socket.
const closeResumedElsewhere = 4001

// takenOver closes a socket whose slot resumed on another one.
func (ss *session) takenOver() {
	ss.mu.Lock()
	if !ss.closing {
		ss.closing = true
		ss.closeMsg = websocket.FormatCloseMessage(closeResumedElsewhere, "resumed on another connection")
	}
	ss.mu.Unlock()
	ss.stop()
}

// resume binds this socket to the slot a `resume` names. Every refusal
// closes; the client then joins again with a token.
func (ss *session) resume(m *inMessage) bool {
	if ss.part != nil {
		ss.refuse(codeAlreadyIn, "this socket has joined already")
		return false
	}
	if m.V != protocolVersion {
		ss.fail(websocket.CloseProtocolError, codeVersion, fmt.Sprintf("protocol version %d is not supported; use %d", m.V, protocolVersion))
		return true
	}
	if m.Resume == "" || m.LastSeq == nil {
		ss.fail(websocket.ClosePolicyViolation, codeBadMessage, "resume needs resume (from joined) and lastSeq")
		return true
	}
	sl := ss.s.lookupSlot(m.Resume)
	if sl == nil {
		ss.fail(websocket.ClosePolicyViolation, codeResumeFailed, "the session is over (it left, was removed, or was away too long): join again")
		return true
	}
	ss.claims, ss.room, ss.slot = sl.claims, sl.room, sl
	ss.log = ss.log.With(zap.String("call", sl.room.ID), zap.String("participant", sl.claims.Subject))
	if !sl.resume(ss, *m.LastSeq) {
		ss.slot = nil
		sl.leave()
		ss.fail(websocket.ClosePolicyViolation, codeResumeFailed, "too much happened while away to resume: join again")
		return true
	}
	sl.mu.Lock()
	ss.part = sl.part
	sl.mu.Unlock()
	_ = ss.conn.SetReadDeadline(time.Now().Add(pongTimeout))
	ss.conn.SetReadLimit(maxMessageBytes)
	ss.startICERefresh()
	return false
}

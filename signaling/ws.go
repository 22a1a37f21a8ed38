package signaling

import (
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/sfu"
	"go.uber.org/zap"
)

// handle runs one client message; it returns true when the session must end.
func (ss *session) handle(m *inMessage) bool {
	if m.Type == "join" {
		return ss.join(m)
	}
	if ss.part == nil {
		switch m.Type {
		case "ping":
			ss.pong(m)
		case "offer", "answer", "candidate", "mute", "leave":
			ss.refuse(codeNotJoined, "send join first")
		default:
			ss.refuse(codeUnknownType, fmt.Sprintf("unknown message type %.32q", m.Type))
		}
		return false
	}
	switch m.Type {
	case "offer":
		if m.Transport != "publish" {
			ss.refuse(codeBadMessage, `offers are for the "publish" transport`)
			return false
		}
		if !ss.claims.Publish {
			ss.refuse(codeForbidden, "this token does not allow publishing")
			return false
		}
		answer, err := ss.part.Publish(m.SDP)
		if err != nil {
			ss.sdpError(err)
			return false
		}
		ss.send(sdpMsg{Type: "answer", Transport: "publish", SDP: answer})
	case "answer":
		if m.Transport != "subscribe" {
			ss.refuse(codeBadMessage, `answers are for the "subscribe" transport`)
			return false
		}
		if err := ss.part.SubscribeAnswer(m.SDP); err != nil {
			ss.sdpError(err)
		}
	case "candidate":
		if m.Candidate == nil || (m.Transport != "publish" && m.Transport != "subscribe") {
			ss.refuse(codeBadMessage, "candidate needs a transport and a candidate")
			return false
		}
		if err := ss.part.AddCandidate(m.Transport == "publish", *m.Candidate); err != nil {
			ss.refuse(codeBadMessage, err.Error())
		}
	case "mute":
		if m.TrackID == "" || m.Muted == nil {
			ss.refuse(codeBadMessage, "mute needs trackId and muted")
			return false
		}
		if err := ss.part.SetMuted(m.TrackID, *m.Muted); err != nil {
			ss.refuse(codeBadMessage, err.Error())
		}
	case "leave":
		ss.part.Close()
		ss.closeWith(websocket.CloseNormalClosure, "left")
		return true
	case "ping":
		ss.pong(m)
	default:
		ss.refuse(codeUnknownType, fmt.Sprintf("unknown message type %.32q", m.Type))
	}
	return false
}

// pong answers a ping with its id: a number or a string of at most
// maxPingIDBytes (as JSON), so an echo never holds much.
func (ss *session) pong(m *inMessage) {
	if id := m.ID; len(id) > maxPingIDBytes || len(id) > 0 && id[0] != '"' && id[0] != '-' && (id[0] < '0' || id[0] > '9') {
		ss.refuse(codeBadMessage, "ping id must be a number or a string of at most 64 bytes")
		return
	}
	ss.send(pongMsg{Type: "pong", ID: m.ID})
}

func (ss *session) sdpError(err error) {
	switch {
	case errors.Is(err, sfu.ErrInvalidSDP), errors.Is(err, sfu.ErrNoOffer):
		ss.refuse(codeInvalidSDP, err.Error())
	case errors.Is(err, sfu.ErrClosed):
	default:
		ss.log.Warn("negotiation failed", zap.Error(err))
		ss.send(errorMsg{Type: "error", Code: codeInternal, Message: "negotiation failed"})
	}
}

// join binds the socket to one call and participant. Every refusal closes.
func (ss *session) join(m *inMessage) bool {
	if ss.part != nil {
		ss.refuse(codeAlreadyIn, "this socket has joined already")
		return false
	}
	if m.V != protocolVersion {
		ss.fail(websocket.CloseProtocolError, codeVersion, fmt.Sprintf("protocol version %d is not supported; use %d", m.V, protocolVersion))
		return true
	}
	claims, err := ss.s.tokens.parse(m.Token)
	if err != nil {
		ss.fail(websocket.ClosePolicyViolation, codeInvalidToken, err.Error())
		return true
	}
	room, err := ss.s.rooms.Get(claims.Call)
	if err != nil {
		ss.fail(websocket.ClosePolicyViolation, codeCallNotFound, "the call has ended or never existed")
		return true
	}
	ss.claims, ss.room = claims, room
	ss.log = ss.log.With(zap.String("call", room.ID), zap.String("participant", claims.Subject))
	part, err := room.JoinNamed(claims.Subject, claims.Name, handler{ss})
	switch {
	case errors.Is(err, roommgr.ErrFull):
		ss.fail(websocket.ClosePolicyViolation, codeCallFull, err.Error())
		return true
	case errors.Is(err, roommgr.ErrRemoved):
		ss.fail(websocket.ClosePolicyViolation, codeForbidden, err.Error())
		return true
	case errors.Is(err, roommgr.ErrEnded):
		ss.fail(websocket.ClosePolicyViolation, codeCallNotFound, "the call has ended")
		return true
	case err != nil:
		ss.log.Warn("join failed", zap.Error(err))
		ss.fail(websocket.CloseInternalServerErr, codeInternal, "join failed")
		return true
	}
	ss.part = part
	_ = ss.conn.SetReadDeadline(time.Now().Add(pongTimeout))
	ss.conn.SetReadLimit(maxMessageBytes)

	others := []sfu.ParticipantInfo{}
	for _, p := range room.Participants() {
		if p.ID != claims.Subject {
			others = append(others, p)
		}
	}
	ss.mu.Lock()
	ss.sendLocked(joinedMsg{Type: "joined", V: protocolVersion, CallID: room.ID, ParticipantID: claims.Subject,
		Name: claims.Name, Participants: others, ICEServers: ss.s.cfg.ICEServers(room.ID, claims.Subject)})
	ss.joined = true
	for _, p := range ss.pending {
		ss.sendLocked(p)
	}
	ss.pending = nil
	ss.mu.Unlock()
	ss.log.Info("client joined")
	return false
}

// handler adapts a session to sfu.Handler: every event becomes a queued message.
type handler struct{ ss *session }

func (h handler) SubscribeOffer(sdp string) {
	h.ss.event(sdpMsg{Type: "offer", Transport: "subscribe", SDP: sdp})
}
func (h handler) ParticipantJoined(p sfu.ParticipantInfo) {
	h.ss.event(participantMsg{Type: "participantJoined", Participant: p})
}
func (h handler) ParticipantLeft(id string) {
	h.ss.event(participantLeftMsg{Type: "participantLeft", ParticipantID: id})
}
func (h handler) TrackPublished(pid string, t sfu.TrackInfo) {
	h.ss.event(trackMsg{Type: "trackPublished", ParticipantID: pid, Track: t})
}
func (h handler) TrackUnpublished(pid, tid string) {
	h.ss.event(trackGoneMsg{Type: "trackUnpublished", ParticipantID: pid, TrackID: tid})
}
func (h handler) TrackMuted(pid, tid string, muted bool) {
	h.ss.event(muteMsg{Type: "mute", ParticipantID: pid, TrackID: tid, Muted: muted})
}

// Closed: the SFU ended this participant (call ended, removed, replaced).
func (h handler) Closed(reason string) {
	if reason == "left" {
		return
	}
	h.ss.event(endedMsg{Type: "ended", Reason: reason})
	h.ss.closeWith(websocket.CloseNormalClosure, reason)
}

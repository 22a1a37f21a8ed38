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
	switch m.Type {
	case "join":
		return ss.join(m)
	case "resume":
		return ss.resume(m)
	}
	if ss.part == nil {
		switch m.Type {
		case "ping":
			ss.pong(m)
		case "offer", "answer", "candidate", "mute", "leave", "restartIce", "subscription":
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
		o := ss.slot.outstandingOffer()
		if err := ss.part.SubscribeAnswer(m.SDP); err != nil {
			ss.sdpError(err)
			return false
		}
		ss.slot.answered(o)
	case "restartIce":
		if m.Transport != "subscribe" {
			ss.refuse(codeBadMessage, `restartIce is for the "subscribe" transport; restart "publish" with an offer`)
			return false
		}
		ss.part.RestartICE()
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
	case "subscription":
		ss.subscription(m)
	case "leave":
		ss.slot.leave()
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
	if !room.Granted(claims.Subject, claims.ID) {
		ss.fail(websocket.ClosePolicyViolation, codeForbidden,
			"this token was revoked: the participant was removed from the call after it was issued")
		return true
	}
	ss.claims, ss.room = claims, room
	ss.log = ss.log.With(zap.String("call", room.ID), zap.String("participant", claims.Subject))
	sl, err := newSlot(ss.s, ss, room, claims)
	if err != nil {
		ss.log.Error("resume credential", zap.Error(err))
		ss.fail(websocket.CloseInternalServerErr, codeInternal, "join failed")
		return true
	}
	part, err := room.JoinNamed(claims.Subject, claims.Name, sl)
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
	ss.part, ss.slot = part, sl
	sl.mu.Lock()
	sl.part = part
	sl.mu.Unlock()
	ss.s.register(sl)
	_ = ss.conn.SetReadDeadline(time.Now().Add(pongTimeout))
	ss.conn.SetReadLimit(maxMessageBytes)

	others := []sfu.ParticipantInfo{}
	for _, p := range room.Participants() {
		if p.ID != claims.Subject {
			others = append(others, p)
		}
	}
	sl.joined(joinedMsg{Type: "joined", V: protocolVersion, CallID: room.ID, ParticipantID: claims.Subject,
		Name: claims.Name, Participants: others, ICEServers: ss.s.cfg.ICEServers(room.ID, claims.Subject),
		Resume: sl.credential, ResumeGrace: int(ss.s.cfg.ResumeGrace / time.Second), Network: ss.s.network()})
	ss.startICERefresh()
	ss.log.Info("client joined")
	return false
}

package signaling

import (
	"encoding/json"

	"github.com/orville/orville/sfu"
	"github.com/pion/webrtc/v4"
)

// Protocol version spoken on /v1/rtc (docs/signaling.md).
const protocolVersion = 1

// inMessage is any client message; which fields matter depends on Type.
type inMessage struct {
	Type      string                   `json:"type"`
	V         int                      `json:"v,omitempty"`
	Token     string                   `json:"token,omitempty"`
	Transport string                   `json:"transport,omitempty"`
	SDP       string                   `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	TrackID   string                   `json:"trackId,omitempty"`
	Muted     *bool                    `json:"muted,omitempty"`
	ID        json.RawMessage          `json:"id,omitempty"`
	Resume    string                   `json:"resume,omitempty"`  // resume: the credential from joined
	LastSeq   *uint64                  `json:"lastSeq,omitempty"` // resume: the last call message received
	Video     json.RawMessage          `json:"video,omitempty"`   // subscription: the videos to receive (video.go)
}

// Server messages.
type (
	joinedMsg struct {
		Type          string                `json:"type"`
		V             int                   `json:"v"`
		CallID        string                `json:"callId"`
		ParticipantID string                `json:"participantId"`
		Name          string                `json:"name,omitempty"` // this participant's display name
		Participants  []sfu.ParticipantInfo `json:"participants"`
		ICEServers    []ICEServer           `json:"iceServers"`
		// Resume is the credential of `resume`, valid for ResumeGrace
		// seconds after the socket drops (resume.go).
		Resume      string      `json:"resume"`
		ResumeGrace int         `json:"resumeGrace"`
		Network     networkInfo `json:"network"`
	}
	resumedMsg struct {
		Type          string      `json:"type"`
		V             int         `json:"v"`
		CallID        string      `json:"callId"`
		ParticipantID string      `json:"participantId"`
		LastSeq       uint64      `json:"lastSeq"` // the server's latest call message
		ICEServers    []ICEServer `json:"iceServers"`
	}
	// networkInfo is what a client must reach, so that it can tell its user
	// which ports a firewall must let through when media cannot connect.
	networkInfo struct {
		Host         string `json:"host"`         // of the signaling URL
		TCPPort      int    `json:"tcpPort"`      // signaling, ICE-TCP and TURN
		UDPPortFirst int    `json:"udpPortFirst"` // the media range
		UDPPortLast  int    `json:"udpPortLast"`
	}
	sdpMsg struct {
		Type      string `json:"type"`
		Transport string `json:"transport"`
		SDP       string `json:"sdp"`
	}
	participantMsg struct {
		Type        string              `json:"type"`
		Participant sfu.ParticipantInfo `json:"participant"`
	}
	participantLeftMsg struct {
		Type          string `json:"type"`
		ParticipantID string `json:"participantId"`
	}
	trackMsg struct {
		Type          string        `json:"type"`
		ParticipantID string        `json:"participantId"`
		Track         sfu.TrackInfo `json:"track"`
	}
	trackGoneMsg struct {
		Type          string `json:"type"`
		ParticipantID string `json:"participantId"`
		TrackID       string `json:"trackId"`
	}
	speakersMsg struct {
		Type     string            `json:"type"`
		Speakers []sfu.SpeakerInfo `json:"speakers"`
		Dominant string            `json:"dominant"`
	}
	muteMsg struct {
		Type          string `json:"type"`
		ParticipantID string `json:"participantId"`
		TrackID       string `json:"trackId"`
		Muted         bool   `json:"muted"`
	}
	errorMsg struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	endedMsg struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	}
	pongMsg struct {
		Type string          `json:"type"`
		ID   json.RawMessage `json:"id,omitempty"`
	}
)

// Protocol error codes (docs/signaling.md).
const (
	codeBadMessage   = "bad_message"
	codeUnknownType  = "unknown_type"
	codeVersion      = "unsupported_version"
	codeNotJoined    = "not_joined"
	codeAlreadyIn    = "already_joined"
	codeInvalidToken = "invalid_token"
	codeCallNotFound = "call_not_found"
	codeCallFull     = "call_full"
	codeForbidden    = "forbidden"
	codeInvalidSDP   = "invalid_sdp"
	codeRateLimited  = "rate_limited"
	codeResumeFailed = "resume_failed"
	codeInternal     = "internal"
)

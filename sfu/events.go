package sfu

import (
	"time"

	"github.com/pion/webrtc/v4"
)

// Handler receives what one participant must be told. The signaling layer
// implements it; calls come from SFU control goroutines and must not block
// (queue the message and return).
type Handler interface {
	// SubscribeOffer carries a new offer for the participant's subscribe transport.
	SubscribeOffer(sdp string)
	ParticipantJoined(p ParticipantInfo)
	ParticipantLeft(id string)
	TrackPublished(participantID string, t TrackInfo)
	TrackUnpublished(participantID, trackID string)
	TrackMuted(participantID, trackID string, muted bool)
	// Speakers says who is speaking, loudest first, and who the dominant
	// speaker is ("" for nobody); sent when either changes, at most three
	// times a second (speaker.go).
	Speakers(speakers []SpeakerInfo, dominant string)
	// Closed says the participant is gone (reason is one of the protocol's
	// `ended` reasons, or "transport_failed").
	Closed(reason string)
}

// TrackInfo describes one published track.
type TrackInfo struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Muted bool   `json:"muted"`
}

// SpeakerInfo is one speaking participant: level is 0 (silence) to 1 (full
// scale), from the RFC 6464 audio levels of its microphone, smoothed over
// about a second.
type SpeakerInfo struct {
	ParticipantID string  `json:"participantId"`
	Level         float64 `json:"level"`
}

// ParticipantInfo describes one participant for events and the API.
type ParticipantInfo struct {
	ID string `json:"id"`
	// Name is the display name the messaging server gave at invitation
	// (opaque to the SFU; clients show it).
	Name      string      `json:"name,omitempty"`
	JoinedAt  time.Time   `json:"joinedAt"`
	Transport string      `json:"transport"`
	Tracks    []TrackInfo `json:"tracks"`
	// Video is the participant's received video (Call.ParticipantDetails,
	// for the API only).
	Video *VideoReceiveInfo `json:"video,omitempty"`
}

// Observer receives media-plane counters (Prometheus in production). The
// packet path reports once per batch, not per packet: PacketsIn and
// PacketsOut carry a batch's totals for one kind, and latency is how long
// that batch took from the socket read to its sendmmsg. The other methods
// are for rare events. All must be cheap and must not block.
type Observer interface {
	PacketsIn(kind webrtc.RTPCodecType, packets, bytes int)
	PacketsOut(kind webrtc.RTPCodecType, packets, bytes int, latency time.Duration)
	PacketDropped(reason string)
	NACK(retransmitted bool)
	PLI()
	DominantSpeakerChanged()
}

type nopObserver struct{}

func (nopObserver) PacketsIn(webrtc.RTPCodecType, int, int)                 {}
func (nopObserver) PacketsOut(webrtc.RTPCodecType, int, int, time.Duration) {}
func (nopObserver) PacketDropped(string)                                    {}
func (nopObserver) NACK(bool)                                               {}
func (nopObserver) PLI()                                                    {}
func (nopObserver) DominantSpeakerChanged()                                 {}

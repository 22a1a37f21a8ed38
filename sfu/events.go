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

// ParticipantInfo describes one participant for events and the API.
type ParticipantInfo struct {
	ID string `json:"id"`
	// Name is the display name the messaging server gave at invitation
	// (opaque to the SFU; clients show it).
	Name      string      `json:"name,omitempty"`
	JoinedAt  time.Time   `json:"joinedAt"`
	Transport string      `json:"transport"`
	Tracks    []TrackInfo `json:"tracks"`
}

// Observer receives media-plane counters (Prometheus in production). Methods are
// called on the packet path: they must be cheap and lock-free.
type Observer interface {
	PacketIn(kind webrtc.RTPCodecType, bytes int)
	PacketOut(kind webrtc.RTPCodecType, bytes int, latency time.Duration)
	PacketDropped(reason string)
	NACK(retransmitted bool)
	PLI()
}

type nopObserver struct{}

func (nopObserver) PacketIn(webrtc.RTPCodecType, int)                 {}
func (nopObserver) PacketOut(webrtc.RTPCodecType, int, time.Duration) {}
func (nopObserver) PacketDropped(string)                              {}
func (nopObserver) NACK(bool)                                         {}
func (nopObserver) PLI()                                              {}

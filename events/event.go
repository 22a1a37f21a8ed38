// Package events carries the server's life-cycle events — calls starting and
// ending, participants joining and leaving, tracks published and unpublished
// — from where they happen (the room manager, on the calls' own goroutines)
// to any number of subscribers: webhooks, metrics, drain, the cluster.
//
// Every subscriber has its own goroutine and its own bounded queue, so a
// subscriber never runs on a call's goroutine and a slow one delays nobody
// else. Publish never blocks: when a subscriber's queue is full the event is
// dropped for that subscriber alone, logged and counted (Config.OnDrop).
// Each subscriber sees events in publish order, the same order for all
// subscribers; the room manager publishes a call's events in the order they
// happen, so per call the order is call.started, participant.joined,
// track.published … track.unpublished, participant.left, call.ended.
//
// The package imports nothing else of the module: sources depend on the
// Publisher interface, subscribers on a func(Event).
package events

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Type names an event. The names are part of the webhook contract
// (docs/webhooks.md): add new ones, never rename.
type Type string

// The event types.
const (
	// CallStarted: a call has its port pair and waits for participants.
	CallStarted Type = "call.started"
	// CallEnded: the call is over and its ports are free; Reason says why
	// (ended_by_api, empty_timeout, last_left, max_duration, server_shutdown).
	CallEnded Type = "call.ended"
	// ParticipantJoined: a participant's session is in the call.
	ParticipantJoined Type = "participant.joined"
	// ParticipantLeft: the session is gone; Reason is the protocol's reason
	// (left, removed, replaced, transport_failed, or why the call ended).
	ParticipantLeft Type = "participant.left"
	// TrackPublished / TrackUnpublished: a participant's track started or
	// stopped being forwarded to the others.
	TrackPublished   Type = "track.published"
	TrackUnpublished Type = "track.unpublished"
)

// Event is one thing that happened. Fields a type does not use are empty.
type Event struct {
	// ID is unique per event (32 hex digits), filled in by Publish: a
	// receiver that may get an event twice (webhook retries) de-duplicates
	// on it.
	ID   string
	Type Type
	// Time is when it happened, filled in by Publish when zero.
	Time time.Time
	// Seq orders the events of one Bus (1, 2, …), filled in by Publish.
	Seq uint64
	// CallID is the call's eventId (the start-call answer's state.eventId).
	CallID string
	// ParticipantID is set for participant and track events.
	ParticipantID string
	// Reason is set for call.ended and participant.left.
	Reason string
	// Track is set for track events.
	Track *Track
}

// Track identifies a published track.
type Track struct {
	ID   string
	Kind string // audio or video
}

// Publisher is what an event source needs. *Bus implements it; Publish must
// not block and must not retain e beyond copying it.
type Publisher interface {
	Publish(e Event)
}

// Nop discards every event: the publisher of a source nobody listens to.
type Nop struct{}

// Publish implements Publisher.
func (Nop) Publish(Event) {}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

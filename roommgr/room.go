package roommgr

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/orville/orville/sfu"
)

// ErrFull is returned when a join would exceed the call's participant limit.
var ErrFull = errors.New("call is full")

// ErrEnded is returned when joining a call that has ended.
var ErrEnded = errors.New("call has ended")

// ErrRemoved is returned when a participant the API removed tries to rejoin
// before the messaging server invites it again.
var ErrRemoved = errors.New("participant was removed from the call")

// Room is one call: its port pair, its limits and its life cycle.
type Room struct {
	ID              string
	Port            int // P; the subscribe port is P+1
	CreatedAt       time.Time
	ExpiresAt       time.Time
	MaxParticipants int
	Metadata        json.RawMessage

	slot int
	call *sfu.Call
	ev   *roomEvents
	m    *Manager

	mu        sync.Mutex
	idle      *time.Timer // empty timeout, then leave grace
	maxTimer  *time.Timer
	ended     bool
	endReason string
	removed   map[string]bool                 // removed by the API, until invited again
	grants    map[string]map[string]time.Time // participant → grant → expiry (grants.go)
	done      chan struct{}
}

func (r *Room) start(dur time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idle = time.AfterFunc(r.m.cfg.EmptyTimeout, func() { r.endIfEmpty("empty_timeout") })
	r.maxTimer = time.AfterFunc(dur, func() { r.End("max_duration") })
	r.call.OnLeave(func(remaining int) {
		if remaining > 0 {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.ended {
			return
		}
		r.idle.Stop()
		r.idle = time.AfterFunc(r.m.cfg.LeaveGrace, func() { r.endIfEmpty("last_left") })
	})
}

func (r *Room) endIfEmpty(reason string) {
	if r.call.Count() == 0 {
		r.End(reason)
	}
}

// Join admits participant id unless the call is full. A participant already in
// the call (a reconnect) replaces its earlier session and does not count twice.
func (r *Room) Join(id string, h sfu.Handler) (*sfu.Participant, error) {
	return r.JoinNamed(id, "", h)
}

// JoinNamed is Join with the participant's display name (from its token).
func (r *Room) JoinNamed(id, name string, h sfu.Handler) (*sfu.Participant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return nil, ErrEnded
	}
	if r.removed[id] {
		return nil, ErrRemoved
	}
	if r.call.Participant(id) == nil && r.call.Count() >= r.MaxParticipants {
		return nil, fmt.Errorf("%w: %d participants is the limit", ErrFull, r.MaxParticipants)
	}
	wrapped, es := r.ev.wrap(id, h)
	p, err := r.call.JoinNamed(id, name, wrapped)
	if err != nil {
		if errors.Is(err, sfu.ErrCallClosed) {
			return nil, ErrEnded
		}
		return nil, err
	}
	r.ev.joined(es)
	r.idle.Stop()
	return p, nil
}

// Participants describes who is in the call.
func (r *Room) Participants() []sfu.ParticipantInfo { return r.call.Participants() }

// ParticipantDetails is Participants with each one's video allocation (for
// the API).
func (r *Room) ParticipantDetails() []sfu.ParticipantInfo { return r.call.ParticipantDetails() }

// VideoSummary aggregates the call's video allocation (for metrics).
func (r *Room) VideoSummary() sfu.VideoSummary { return r.call.VideoSummary() }

// Remove ends one participant's session ("removed"), revokes every grant
// issued to it (grants.go) and refuses it until Readmit; Config.OnRemove
// then closes its relays. It reports whether the participant was in the call.
func (r *Room) Remove(id string) bool {
	r.mu.Lock()
	if r.removed == nil {
		r.removed = map[string]bool{}
	}
	r.removed[id] = true
	r.revokeLocked(id)
	r.mu.Unlock()
	in := r.call.Remove(id, "removed")
	if r.m.cfg.OnRemove != nil {
		r.m.cfg.OnRemove(r.ID, id)
	}
	return in
}

// Readmit lets a removed participant join again (the API issued it a new token).
func (r *Room) Readmit(id string) {
	r.mu.Lock()
	delete(r.removed, id)
	r.mu.Unlock()
}

// HasParticipant reports whether id is in the call.
func (r *Room) HasParticipant(id string) bool { return r.call.Participant(id) != nil }

// Done is closed once the call has ended and its ports are free.
func (r *Room) Done() <-chan struct{} { return r.done }

// Ended reports whether the call is over, and why.
func (r *Room) Ended() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended, r.endReason
}

// End closes every participant and transport and returns the port pair.
// Idempotent; returns after the ports are free.
func (r *Room) End(reason string) {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		<-r.done
		return
	}
	r.ended, r.endReason = true, reason
	r.idle.Stop()
	r.maxTimer.Stop()
	r.mu.Unlock()
	r.call.Close(participantReason(reason))
	r.m.release(r, reason)
	close(r.done)
}

// participantReason maps why a call ended to the protocol's `ended` reasons.
func participantReason(reason string) string {
	switch reason {
	case "max_duration", "server_shutdown", "ended_by_api":
		return reason
	default:
		return "ended_by_api"
	}
}

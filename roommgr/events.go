package roommgr

import (
	"sort"
	"sync"

	"github.com/orville/orville/events"
	"github.com/orville/orville/sfu"
)

// roomEvents publishes one call's participant and track events, each once
// and in the order they happened: a session's participant.joined before its
// tracks, its track.unpublished events before its participant.left. The
// SFU tells it about sessions through a wrapped sfu.Handler and about tracks
// through sfu.Config.OnTrack.
type roomEvents struct {
	pub    events.Publisher
	callID string

	mu   sync.Mutex
	live map[string]*evSession // the current session of each participant id
}

// evSession is one participant session as the events see it.
type evSession struct {
	id     string
	joined bool
	left   string            // the leave reason, once the SFU closed the session
	tracks map[string]string // published track id → kind
	gone   map[string]bool   // unpublished before its publish was seen
}

func newRoomEvents(pub events.Publisher, callID string) *roomEvents {
	return &roomEvents{pub: pub, callID: callID, live: map[string]*evSession{}}
}

func (ev *roomEvents) publish(t events.Type, pid, reason string, tr *events.Track) {
	ev.pub.Publish(events.Event{Type: t, CallID: ev.callID, ParticipantID: pid, Reason: reason, Track: tr})
}

// wrap returns the handler the SFU gets for a new session of participant id.
func (ev *roomEvents) wrap(id string, h sfu.Handler) (sfu.Handler, *evSession) {
	s := &evSession{id: id, tracks: map[string]string{}, gone: map[string]bool{}}
	return &eventHandler{Handler: h, ev: ev, s: s}, s
}

// joined records that the SFU admitted s. A session closed before that (the
// API removed it while Join ran) is published as joined, then left.
func (ev *roomEvents) joined(s *evSession) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	s.joined = true
	ev.publish(events.ParticipantJoined, s.id, "", nil)
	if s.left != "" {
		ev.publish(events.ParticipantLeft, s.id, s.left, nil)
		return
	}
	ev.live[s.id] = s
}

// closed is the SFU ending session s.
func (ev *roomEvents) closed(s *evSession, reason string) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if s.left != "" {
		return
	}
	s.left = reason
	if !s.joined {
		return // joined publishes both, or Join failed and nothing is published
	}
	// Tracks still marked published lost their unpublish to a teardown race.
	ids := make([]string, 0, len(s.tracks))
	for id := range s.tracks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ev.publish(events.TrackUnpublished, s.id, "", &events.Track{ID: id, Kind: s.tracks[id]})
	}
	ev.publish(events.ParticipantLeft, s.id, reason, nil)
	if ev.live[s.id] == s {
		delete(ev.live, s.id)
	}
}

// track is sfu.Config.OnTrack.
func (ev *roomEvents) track(pid string, t sfu.TrackInfo, published bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	s := ev.live[pid]
	if s == nil || s.left != "" {
		return
	}
	switch _, known := s.tracks[t.ID]; {
	case published && s.gone[t.ID]:
		delete(s.gone, t.ID) // its unpublish overtook it: neither happened
	case published && !known:
		s.tracks[t.ID] = t.Kind
		ev.publish(events.TrackPublished, pid, "", &events.Track{ID: t.ID, Kind: t.Kind})
	case !published && known:
		delete(s.tracks, t.ID)
		ev.publish(events.TrackUnpublished, pid, "", &events.Track{ID: t.ID, Kind: t.Kind})
	case !published:
		s.gone[t.ID] = true
	}
}

// eventHandler is the sfu.Handler of one session: the signaling session's
// handler, plus the leave reason for the events.
type eventHandler struct {
	sfu.Handler
	ev *roomEvents
	s  *evSession
}

func (h *eventHandler) Closed(reason string) {
	h.ev.closed(h.s, reason)
	h.Handler.Closed(reason)
}

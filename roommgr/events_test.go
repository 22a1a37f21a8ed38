package roommgr

import (
	"strings"
	"sync"
	"testing"

	"github.com/orville/orville/events"
	"github.com/orville/orville/sfu"
	"go.uber.org/goleak"
)

// recorder is a Publisher that keeps what it was given, in order.
type recorder struct {
	mu  sync.Mutex
	got []events.Event
}

func (r *recorder) Publish(e events.Event) {
	r.mu.Lock()
	r.got = append(r.got, e)
	r.mu.Unlock()
}

// lines renders the events as "type participant reason track" for compact
// comparison.
func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.got))
	for _, e := range r.got {
		l := string(e.Type)
		if e.ParticipantID != "" {
			l += " " + e.ParticipantID
		}
		if e.Reason != "" {
			l += " " + e.Reason
		}
		if e.Track != nil {
			l += " " + e.Track.ID + "/" + e.Track.Kind
		}
		out = append(out, l)
	}
	return out
}

// nopHandler stands in for a signaling session.
type nopHandler struct{ closed chan string }

func (nopHandler) SubscribeOffer(string)                 {}
func (nopHandler) Speakers([]sfu.SpeakerInfo, string)    {}
func (nopHandler) ParticipantJoined(sfu.ParticipantInfo) {}
func (nopHandler) ParticipantLeft(string)                {}
func (nopHandler) TrackPublished(string, sfu.TrackInfo)  {}
func (nopHandler) TrackUnpublished(string, string)       {}
func (nopHandler) TrackMuted(string, string, bool)       {}
func (h nopHandler) Closed(reason string) {
	select {
	case h.closed <- reason:
	default:
	}
}
func newNopHandler() nopHandler { return nopHandler{closed: make(chan string, 1)} }

func expect(t *testing.T, rec *recorder, callID string, want ...string) {
	t.Helper()
	got := rec.lines()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.got {
		if e.CallID != callID {
			t.Fatalf("%s for call %q, want %q", e.Type, e.CallID, callID)
		}
	}
}

// The room manager publishes a call's life cycle through Config.Events, with
// the leave reasons the SFU gives: removed, replaced, and the call's end.
func TestRoomPublishesLifeCycleEvents(t *testing.T) {
	defer goleak.VerifyNone(t)
	rec := &recorder{}
	cfg := testConfig(t, 42400, 1)
	cfg.MaxParticipants = 4
	cfg.Events = rec
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, err := m.Create(CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob, bob2 := newNopHandler(), newNopHandler(), newNopHandler()
	if _, err := r.Join("alice", alice); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Join("bob", bob); err != nil {
		t.Fatal(err)
	}
	if !r.Remove("bob") {
		t.Fatal("bob was not in the call")
	}
	<-bob.closed
	r.Readmit("bob")
	if _, err := r.Join("bob", bob); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Join("bob", bob2); err != nil { // bob reconnects
		t.Fatal(err)
	}
	<-bob.closed
	r.End("ended_by_api")
	expect(t, rec, r.ID,
		"call.started",
		"participant.joined alice",
		"participant.joined bob",
		"participant.left bob removed",
		"participant.joined bob",
		"participant.left bob replaced",
		"participant.joined bob",
		// The call's end closes both at once, in either order.
		rec.lines()[7], rec.lines()[8],
		"call.ended ended_by_api")
	ends := rec.lines()[7] + "|" + rec.lines()[8]
	if ends != "participant.left alice ended_by_api|participant.left bob ended_by_api" &&
		ends != "participant.left bob ended_by_api|participant.left alice ended_by_api" {
		t.Fatalf("at the end: %s", ends)
	}
}

// Drain refuses new calls and leaves running ones alone.
func TestDrainRefusesNewCalls(t *testing.T) {
	defer goleak.VerifyNone(t)
	m, _ := New(testConfig(t, 42500, 3))
	defer m.Close()
	r, err := m.Create(CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.DrainStarted():
		t.Fatal("drain started by itself")
	default:
	}
	if !m.Drain() || m.Drain() {
		t.Fatal("Drain must report true once, then false")
	}
	<-m.DrainStarted()
	if !m.Draining() {
		t.Fatal("not draining after Drain")
	}
	if _, err := m.Create(CreateOptions{}); err != ErrDraining {
		t.Fatalf("Create while draining: %v", err)
	}
	if m.Count() != 1 {
		t.Fatalf("%d calls, want the running one", m.Count())
	}
	if _, err := r.Join("alice", newNopHandler()); err != nil {
		t.Fatalf("joining a running call while draining: %v", err)
	}
	r.End("ended_by_api")
	if m.Count() != 0 {
		t.Fatalf("%d calls after the last ended", m.Count())
	}
}

// roomEvents keeps each session's events consistent when the SFU's
// callbacks race with each other during teardown.
func TestRoomEventsOrdering(t *testing.T) {
	rec := &recorder{}
	ev := newRoomEvents(rec, "c1")
	audio := sfu.TrackInfo{ID: "a1", Kind: "audio"}
	video := sfu.TrackInfo{ID: "v1", Kind: "video"}

	h, s := ev.wrap("alice", newNopHandler())
	ev.track("alice", audio, true) // before alice is admitted: no session yet
	ev.joined(s)
	ev.track("alice", audio, true)
	ev.track("alice", audio, true) // once only
	ev.track("alice", video, false)
	ev.track("alice", video, true) // its unpublish overtook it
	ev.track("alice", sfu.TrackInfo{ID: "v2", Kind: "video"}, true)
	ev.track("alice", audio, false)
	h.Closed("left") // v2 lost its unpublish: published at the leave
	ev.track("alice", audio, true)
	h.Closed("left")

	// Removed while Join ran: joined, then left, nothing in between.
	h2, s2 := ev.wrap("bob", newNopHandler())
	h2.Closed("removed")
	ev.joined(s2)
	ev.track("bob", audio, true)

	// A Join that failed publishes nothing.
	h3, _ := ev.wrap("carol", newNopHandler())
	h3.Closed("ended_by_api")

	expect(t, rec, "c1",
		"participant.joined alice",
		"track.published alice a1/audio",
		"track.published alice v2/video",
		"track.unpublished alice a1/audio",
		"track.unpublished alice v2/video",
		"participant.left alice left",
		"participant.joined bob",
		"participant.left bob removed")
	for i, l := range rec.lines() {
		if strings.Contains(l, "carol") {
			t.Fatalf("event %d for a failed join: %s", i, l)
		}
	}
}

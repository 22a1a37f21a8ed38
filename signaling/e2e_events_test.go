package signaling_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orville/orville/events"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

// A real call through the API and the client channel produces every
// life-cycle event, through the events bus, in the order it happened.
func TestCallLifeCycleEvents(t *testing.T) {
	defer goleak.VerifyNone(t, goleakOpts...)
	bus, err := events.NewBus(events.Config{Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []events.Event
	if _, err := bus.Subscribe("test", func(e events.Event) {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, 43400, func(rc *roommgr.Config, _ *signaling.Config) { rc.Events = bus })
	sc := ts.createCall(t)
	call := sc.State.EventID
	alice := ts.join(t, call, "alice")
	bob := ts.join(t, call, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct {
		from string
		wait func(context.Context, []string, []string) error
	}{{"bob", alice.WaitForMedia}, {"alice", bob.WaitForMedia}} {
		if err := c.wait(ctx, []string{c.from}, []string{"audio", "video"}); err != nil {
			t.Fatal(err)
		}
	}
	_ = bob.Close() // bob leaves
	waitUntil(t, func() bool { return !hasParticipant(ts, call, "bob") })
	if err := ts.apiClient.EndCall(ctx, call); err != nil {
		t.Fatal(err)
	}
	<-alice.Done()
	bus.Close() // every queued event delivered
	_ = alice.Close()

	var lines []string
	for _, e := range got {
		if e.CallID != call {
			t.Fatalf("event for call %q: %+v", e.CallID, e)
		}
		l := []string{string(e.Type), e.ParticipantID, e.Reason}
		if e.Track != nil {
			l[2] = e.Track.Kind
		}
		lines = append(lines, strings.Join(slices.DeleteFunc(l, func(s string) bool { return s == "" }), " "))
	}
	all := strings.Join(lines, "\n")
	// Each of these must appear exactly once; index() gives the position.
	index := func(l string) int {
		i := slices.Index(lines, l)
		if i < 0 || slices.Index(lines[i+1:], l) >= 0 {
			t.Fatalf("want exactly one %q in:\n%s", l, all)
		}
		return i
	}
	order := func(ls ...string) {
		for i := 1; i < len(ls); i++ {
			if index(ls[i-1]) > index(ls[i]) {
				t.Fatalf("%q came after %q:\n%s", ls[i-1], ls[i], all)
			}
		}
	}
	// started, 2 joined, 4 tracks published and unpublished, 2 left, ended.
	if len(lines) != 14 {
		t.Fatalf("%d events, want 14:\n%s", len(lines), all)
	}
	order("call.started", "participant.joined alice", "participant.joined bob",
		"participant.left bob left", "participant.left alice ended_by_api", "call.ended ended_by_api")
	for _, who := range []string{"alice", "bob"} {
		reason := map[string]string{"alice": "ended_by_api", "bob": "left"}[who]
		for _, kind := range []string{"audio", "video"} {
			order("participant.joined "+who, "track.published "+who+" "+kind,
				"track.unpublished "+who+" "+kind, "participant.left "+who+" "+reason)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq || got[i].Time.Before(got[i-1].Time) {
			t.Fatalf("event %d out of sequence: %+v after %+v", i, got[i], got[i-1])
		}
	}
}

func hasParticipant(ts *testServer, call, id string) bool {
	r, err := ts.rooms.Get(call)
	return err == nil && r.HasParticipant(id)
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package sfu

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCallForwardsAmongThree(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := newTestCall(t, 41000)
	ctx, cancel := context.WithCancel(context.Background())
	ids := []string{"alice", "bob", "carol"}
	var peers []*testPeer
	for _, id := range ids {
		tp := joinTestPeer(t, c, id)
		peers = append(peers, tp)
		go tp.send(ctx)
	}
	for _, tp := range peers {
		for _, from := range ids {
			if from == tp.id {
				continue
			}
			for _, kind := range []string{"audio", "video"} {
				waitFor(t, 5*time.Second, tp.id+" receives "+from+" "+kind, func() bool { return tp.count(from, kind) > 20 })
			}
		}
		if n := tp.count(tp.id, "audio"); n != 0 {
			t.Errorf("%s received its own audio (%d packets)", tp.id, n)
		}
	}
	if got := len(c.Participants()); got != 3 {
		t.Fatalf("Participants() = %d, want 3", got)
	}
	cancel()
	for _, tp := range peers {
		tp.p.Close()
		tp.close()
	}
	if c.Count() != 0 {
		t.Fatalf("count after leave = %d", c.Count())
	}
	c.Close("test")
	c.Close("again") // idempotent
}

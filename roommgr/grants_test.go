package roommgr

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// A removal revokes every grant issued to the participant before it — also
// once the participant is invited again — and only that participant's;
// grants issued after the removal work. OnRemove runs with the ids.
func TestRemovalRevokesGrants(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := testConfig(t, 42400, 1)
	var mu sync.Mutex
	var removed []string
	cfg.OnRemove = func(call, id string) {
		mu.Lock()
		removed = append(removed, call+"/"+id)
		mu.Unlock()
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, err := m.Create(CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Minute)
	a1, a2, b1 := r.Grant("alice", exp), r.Grant("alice", exp), r.Grant("bob", exp)
	if a1 == a2 || len(a1) != 16 {
		t.Fatalf("grant ids %q, %q", a1, a2)
	}
	if !r.Granted("alice", a1) || !r.Granted("alice", a2) || !r.Granted("bob", b1) {
		t.Fatal("fresh grants refused")
	}
	if r.Granted("bob", a1) || r.Granted("alice", "0123456789abcdef") {
		t.Fatal("a grant of another participant, or an unknown one, accepted")
	}
	if r.Remove("alice") {
		t.Fatal("alice was never in the call")
	}
	if g := r.Grant("alice", exp); g != "" {
		t.Fatalf("a removed participant got grant %q before being invited again", g)
	}
	r.Readmit("alice") // invited again
	a3 := r.Grant("alice", exp)
	if r.Granted("alice", a1) || r.Granted("alice", a2) {
		t.Fatal("a grant from before the removal survived it")
	}
	if !r.Granted("alice", a3) || !r.Granted("bob", b1) {
		t.Fatal("a grant issued after the removal, or another participant's, was revoked")
	}
	mu.Lock()
	if len(removed) != 1 || removed[0] != r.ID+"/alice" {
		t.Fatalf("OnRemove calls %v", removed)
	}
	mu.Unlock()
	r.End("ended_by_api")
	if r.Granted("alice", a3) || r.Grant("bob", exp) != "" {
		t.Fatal("a grant of an ended call accepted")
	}
}

// Expired grants are forgotten, and one participant holds a bounded number.
func TestGrantsAreBounded(t *testing.T) {
	defer goleak.VerifyNone(t)
	m, err := New(testConfig(t, 42410, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, err := m.Create(CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := r.Grant("alice", time.Now().Add(-time.Second))
	r.Grant("alice", time.Now().Add(time.Minute))
	if r.Granted("alice", old) {
		t.Fatal("an expired grant was kept")
	}
	first := r.Grant("bob", time.Now().Add(time.Minute))
	for i := range maxGrantsPerParticipant {
		r.Grant("bob", time.Now().Add(time.Hour+time.Duration(i)))
	}
	r.mu.Lock()
	n := len(r.grants["bob"])
	r.mu.Unlock()
	if n != maxGrantsPerParticipant || r.Granted("bob", first) {
		t.Fatalf("%d grants held (want %d), soonest expiring kept: %v", n, maxGrantsPerParticipant, r.Granted("bob", first))
	}
}

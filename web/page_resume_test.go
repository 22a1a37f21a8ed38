package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/internal/browsertest"
)

// TestPageResumesWhenServerClosesSocket: the server side cuts every
// connection of the client port — both pages' WebSockets — in the middle
// of a call. Each page says "Reconnecting…", resumes its session on a new
// socket by itself and keeps its tiles (the same elements, never removed);
// video keeps decoding; nobody is told anyone left; the server never saw a
// new join.
func TestPageResumesWhenServerClosesSocket(t *testing.T) {
	browsertest.Require(t)
	s := startCallServer(t, 27040, nil)
	call := s.createCall(t)
	alice, bob := newBrowser(t, "alice", s), newBrowser(t, "bob", s)
	alice.navigate(s.callURL(s.namedToken(t, call, "alice", "Alice"), callSecret))
	bob.navigate(s.callURL(s.namedToken(t, call, "bob", "Bob"), callSecret))
	for _, b := range []*browser{alice, bob} {
		other := map[*browser]string{alice: "bob", bob: "alice"}[b]
		b.waitStats(10*time.Second, "video from "+other, func(s pageStats) bool {
			v := s.track(other, "video")
			return s.State == "connected" && v != nil && v.FramesDecoded > 10
		})
		// Mark the tile element: a resume must keep it, not redraw it.
		mustEval[bool](b, `(document.querySelector('.tile:not(.self)').orvilleMark = 'kept', true)`)
		mustEval[bool](b, `(window.orvilleRemoved = 0, new MutationObserver((ms) => { for (const m of ms)
			for (const n of m.removedNodes) if (n.classList && n.classList.contains('tile')) window.orvilleRemoved++; })
			.observe(document.getElementById('tiles'), { childList: true }), true)`)
	}
	info, err := s.apiC.GetCall(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	joinedAt := map[string]time.Time{}
	for _, p := range info.Participants {
		joinedAt[p.ID] = p.JoinedAt
	}

	if n := s.conns.cutAll(); n < 2 {
		t.Fatalf("cut %d connections, want both pages' sockets", n)
	}
	alice.waitText("#banner", "Reconnecting…")
	start := time.Now()
	for _, b := range []*browser{alice, bob} {
		other := map[*browser]string{alice: "bob", bob: "alice"}[b]
		before := b.stats().track(other, "video").FramesDecoded
		st := b.waitStats(15*time.Second, "a resumed session with video from "+other, func(s pageStats) bool {
			v := s.track(other, "video")
			return s.Resumes >= 1 && s.State == "connected" && v != nil && v.FramesDecoded > before+30
		})
		if b.shown("#banner") {
			t.Errorf("%s: banner still shown after the resume: %q", b.name, b.text("#banner"))
		}
		if mark := mustEval[string](b, `document.querySelector('.tile:not(.self)').orvilleMark || ''`); mark != "kept" {
			t.Errorf("%s: the other's tile was redrawn by the resume", b.name)
		}
		if n := mustEval[int](b, `window.orvilleRemoved`); n != 0 {
			t.Errorf("%s: %d tiles removed during the resume", b.name, n)
		}
		if got := b.text("#notices"); got != "" && !containsOnly(got, "joined") {
			t.Errorf("%s: notices during the resume: %q", b.name, got)
		}
		t.Logf("%s resumed (%d resumes, %d ICE restarts) %v after the cut", b.name, st.Resumes, st.ICERestarts,
			time.Since(start).Round(time.Millisecond))
	}
	info, err = s.apiC.GetCall(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range info.Participants {
		if !p.JoinedAt.Equal(joinedAt[p.ID]) {
			t.Errorf("%s joined again (%v → %v)", p.ID, joinedAt[p.ID], p.JoinedAt)
		}
	}
}

// containsOnly reports whether every line of text contains word.
func containsOnly(text, word string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l != "" && !strings.Contains(l, word) {
			return false
		}
	}
	return true
}

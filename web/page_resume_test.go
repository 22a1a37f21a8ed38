package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/internal/browsertest"
	"github.com/orville/orville/internal/netnstest"
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

// TestPageSurvivesAddressChange: the page (Chromium in its own network
// namespace) loses its address mid-call and gets another, as a laptop
// moving to another network: its socket and its media path die with the
// old address. The page says "Reconnecting…", resumes the session from the
// new address, restarts ICE and decodes the other's video again — no new
// join, the other page never told it left.
func TestPageSurvivesAddressChange(t *testing.T) {
	browsertest.Require(t)
	srv, cli, other := netnstest.New(t, "psrv"), netnstest.New(t, "pcli"), netnstest.New(t, "phome")
	netnstest.Link(t, srv, "v-psrv", "10.81.0.1/24", cli, "v-pcli", "10.81.0.2/24")
	netnstest.Link(t, srv, "v-psrv2", "10.82.0.1/24", other, "v-phome", "10.82.0.2/24")
	other.Run(t, "ip", "route", "add", "10.81.0.0/24", "via", "10.82.0.1")
	s := startCallServerIn(t, 27120, nil, srv, "10.81.0.1")
	call := s.createCall(t)
	roamer := newBrowser(t, "roamer", s, browsertest.WrapCommand("ip", "netns", "exec", cli.Name))
	home := newBrowser(t, "home", s, browsertest.WrapCommand("ip", "netns", "exec", other.Name))
	roamer.navigate(s.callURL(s.token(t, call, "roamer"), callSecret))
	home.navigate(s.callURL(s.token(t, call, "home"), callSecret))
	roamer.waitStats(20*time.Second, "home's video", func(s pageStats) bool {
		v := s.track("home", "video")
		return s.State == "connected" && v != nil && v.FramesDecoded > 10
	})
	info, err := s.apiC.GetCall(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}

	cli.Run(t, "ip", "addr", "del", "10.81.0.2/24", "dev", "v-pcli")
	cli.Run(t, "ip", "addr", "add", "10.81.0.7/24", "dev", "v-pcli")
	changed := time.Now()
	before := roamer.stats().track("home", "video").FramesDecoded
	st := roamer.waitStats(30*time.Second, "home's video again after the address change", func(s pageStats) bool {
		v := s.track("home", "video")
		return s.State == "connected" && v != nil && v.FramesDecoded > before+30
	})
	hb := home.stats().track("roamer", "video").FramesDecoded
	home.waitStats(15*time.Second, "the roamer's video again", func(s pageStats) bool {
		v := s.track("roamer", "video")
		return v != nil && v.FramesDecoded > hb+30
	})
	t.Logf("media back %v after the address change (%d resumes, %d ICE restarts)",
		time.Since(changed).Round(time.Millisecond), st.Resumes, st.ICERestarts)
	if st.ICERestarts < 2 {
		t.Errorf("%d ICE restarts, want both transports restarted", st.ICERestarts)
	}
	if strings.Contains(home.text("#notices"), "left") {
		t.Errorf("home was told the roamer left: %q", home.text("#notices"))
	}
	after, err := s.apiC.GetCall(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range after.Participants {
		if !p.JoinedAt.Equal(info.Participants[i].JoinedAt) {
			t.Errorf("%s joined again", p.ID)
		}
	}
}

package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/internal/browsertest"
)

func tileSel(id, source string) string {
	return fmt.Sprintf(`.tile[data-participant=%s][data-source=%s]`, js(id), js(source))
}

// TestPageStates drives the meeting page as two people would, checking
// what they see: alone at first; names on tiles and in the people list;
// join and leave notices; separate microphone-off and camera-off
// indicators (camera off shows initials); who is speaking, from the audio
// the page plays; Leave → "You left the call" → Rejoin back into the call.
func TestPageStates(t *testing.T) {
	browsertest.Require(t)
	s := startCallServer(t, 27000, nil)
	call := s.createCall(t)
	alice, bob := newBrowser(t, "alice", s), newBrowser(t, "bob", s)
	bobLink := s.callURL(s.namedToken(t, call, "bob", "Bob Stone"), callSecret)

	alice.navigate(s.callURL(s.namedToken(t, call, "alice", "Alice Martin"), callSecret))
	alice.waitShown("#alone")
	if got := alice.text("#alone"); got != "You're the only one here" {
		t.Errorf("alone: %q", got)
	}
	alice.waitText(tileSel("alice", "camera")+" .name", "You (Alice Martin)")
	if n := alice.text("#count"); n != "1" {
		t.Errorf("people count alone: %q", n)
	}

	bob.navigate(bobLink)
	alice.waitText("#notices", "Bob Stone joined")
	alice.waitText(tileSel("bob", "camera")+" .name", "Bob Stone")
	alice.waitJS(10*time.Second, "alone notice gone", `document.getElementById('alone').hidden`)
	alice.waitText("#count", "2")
	bob.waitText(tileSel("alice", "camera")+" .name", "Alice Martin")
	bob.waitStats(10*time.Second, "alice's video", func(s pageStats) bool {
		v := s.track("alice", "video")
		return v != nil && v.FramesDecoded > 10
	})
	alice.click("#people-toggle")
	alice.waitShown("#people")
	people := alice.text("#people-list")
	if !strings.Contains(people, "Alice Martin (you)") || !strings.Contains(people, "Bob Stone") {
		t.Errorf("people list: %q", people)
	}
	alice.click("#people-toggle")

	// Indicators: microphone and camera separately.
	for _, ind := range []string{".mic-off", ".cam-off", ".avatar"} {
		if alice.shown(tileSel("bob", "camera") + " " + ind) {
			t.Errorf("%s shown on bob's tile before he muted anything", ind)
		}
	}
	bob.click("#mic")
	alice.waitShown(tileSel("bob", "camera") + " .mic-off")
	if alice.shown(tileSel("bob", "camera")+" .cam-off") || alice.shown(tileSel("bob", "camera")+" .avatar") {
		t.Error("camera-off shown while only the microphone is off")
	}
	bob.waitShown(tileSel("bob", "camera") + " .mic-off") // his own tile too
	if got := mustEval[string](bob, `document.getElementById('mic').getAttribute('aria-label')`); got != "Turn on microphone" {
		t.Errorf("mic button label when muted: %q", got)
	}
	bob.click("#cam")
	alice.waitShown(tileSel("bob", "camera") + " .cam-off")
	alice.waitShown(tileSel("bob", "camera") + " .avatar")
	if got := alice.text(tileSel("bob", "camera") + " .avatar"); got != "BS" {
		t.Errorf("initials on bob's tile: %q", got)
	}
	if alice.shown(tileSel("bob", "camera") + " video") {
		t.Error("bob's video still shown with his camera off")
	}
	bob.click("#mic")
	bob.click("#cam")
	alice.waitJS(10*time.Second, "bob's indicators cleared", fmt.Sprintf(`!%s && !%s`,
		shownExpr(tileSel("bob", "camera")+" .mic-off"), shownExpr(tileSel("bob", "camera")+" .cam-off")))

	// Who speaks: Chromium's fake microphone beeps; the page measures it.
	alice.waitJS(15*time.Second, "bob's tile highlighted as speaking",
		fmt.Sprintf(`document.querySelector(%s).dataset.speaking === 'yes'`, js(tileSel("bob", "camera"))))
	// The server's active-speaker detector reads the RFC 6464 levels
	// Chromium sends and its `speakers` events drive the highlight.
	if st := alice.stats(); st.SpeakerSource != "server" {
		t.Errorf("speaker source %q, want the server's speakers events", st.SpeakerSource)
	}

	// Leave, then Rejoin.
	bob.click("#leave")
	bob.waitShown("#screen")
	if got := bob.text("#screen-title"); got != "You left the call" {
		t.Errorf("after leave: %q", got)
	}
	if !bob.shown("#rejoin") || mustEval[string](bob, `document.activeElement.id`) != "rejoin" {
		t.Error("Rejoin is not shown and focused after leave")
	}
	if bob.shown("#controls") || bob.shown(".tile") {
		t.Error("call controls or tiles still shown after leave")
	}
	alice.waitText("#notices", "Bob Stone left")
	alice.waitShown("#alone")
	alice.waitText("#count", "1")

	bob.click("#rejoin")
	bob.waitStats(15*time.Second, "alice's video after rejoining", func(s pageStats) bool {
		v := s.track("alice", "video")
		return s.State == "connected" && v != nil && v.FramesDecoded > 10 && v.DecryptFailures == 0
	})
	if bob.shown("#screen") {
		t.Error("the left screen still shows after Rejoin")
	}
	alice.waitJS(10*time.Second, "a second join notice", `[...document.querySelectorAll('#notices .notice')]
		.filter((n) => n.textContent === 'Bob Stone joined').length >= 1`)
	alice.waitStats(10*time.Second, "bob's video after he rejoined", func(s pageStats) bool {
		v := s.track("bob", "video")
		return v != nil && v.FramesDecoded > 10
	})
}

// TestSpeakersFromServer: the page measures its own levels until the
// server's first `speakers` event, then follows the events (the dominant
// speaker highlighted above the others): the server sends one whenever who
// speaks changes, so the latest holds until the next.
func TestSpeakersFromServer(t *testing.T) {
	browsertest.Require(t)
	s := startCallServer(t, 27010, nil)
	b := newBrowser(t, "page", s)
	b.navigate(s.base + "/?token=unit-test") // the page modules, not a call
	got := mustEval[string](b, `(async () => {
		const { Speakers } = await import('/speakers.js');
		const seen = [];
		const sp = new Speakers((speaking, dominant) => seen.push([...speaking].sort().join(',') + '|' + dominant));
		sp.tick(); // nothing from the server yet: local levels (none here)
		const before = sp.source;
		sp.fromServer({ type: 'speakers', speakers: [{ participantId: 'a', level: 0.5 }, { participantId: 'b', level: 0.2 }], dominant: 'a' });
		sp.fromServer({ type: 'speakers', speakers: [{ participantId: 'b', level: 0.4 }], dominant: 'b' });
		const server = sp.source;
		sp.tick(); // no new event: the last one still holds
		return JSON.stringify({ before, seen, server, after: sp.source });
	})()`)
	want := `{"before":"local","seen":["|","a,b|a","b|b"],"server":"server","after":"server"}`
	if got != want {
		t.Errorf("speakers: %s, want %s", got, want)
	}
}

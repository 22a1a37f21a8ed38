package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/orville/orville/internal/browsertest"
)

// TestScreenShare: a screen share is a second video track, end-to-end
// encrypted like the camera: the other page decodes it without a decrypt
// failure and shows it in the spotlight, named; stopping it removes it;
// sharing again works (the same transceiver).
func TestScreenShare(t *testing.T) {
	browsertest.Require(t)
	s := startCallServer(t, 27060, nil)
	call := s.createCall(t)
	alice, bob := newBrowser(t, "alice", s), newBrowser(t, "bob", s)
	alice.navigate(s.callURL(s.namedToken(t, call, "alice", "Alice"), callSecret))
	bob.navigate(s.callURL(s.namedToken(t, call, "bob", "Bob"), callSecret))
	bob.waitStats(15*time.Second, "alice's camera", func(s pageStats) bool {
		v := s.track("alice", "video")
		return v != nil && v.FramesDecoded > 10
	})
	screenOf := func(s pageStats) *trackStats {
		for i := range s.Tracks {
			if s.Tracks[i].Participant == "alice" && s.Tracks[i].Source == "screen" {
				return &s.Tracks[i]
			}
		}
		return nil
	}
	for round := 1; round <= 2; round++ {
		alice.click("#share")
		alice.waitJS(10*time.Second, "the share button pressed", `document.getElementById('share').getAttribute('aria-pressed') === 'true'`)
		bob.waitShown("#spotlight " + tileSel("alice", "screen"))
		st := bob.waitStats(15*time.Second, "alice's screen decoded", func(s pageStats) bool {
			sc := screenOf(s)
			return sc != nil && sc.FramesDecoded > 10
		})
		if sc := screenOf(st); sc.DecryptFailures != 0 || sc.FramesDecrypted == 0 {
			t.Errorf("round %d: screen share %+v, want decrypted frames only", round, sc)
		}
		if got := bob.text(tileSel("alice", "screen") + " .name"); got != "Alice's screen" {
			t.Errorf("round %d: screen tile caption %q", round, got)
		}
		if cam := st.track("alice", "video"); cam == nil || cam.Source != "camera" {
			t.Errorf("round %d: alice's camera track %+v", round, cam)
		}
		if l := mustEval[string](bob, `document.getElementById('stage').dataset.layout`); l != "spotlight" {
			t.Errorf("round %d: layout %q with a screen share", round, l)
		}
		alice.click("#share")
		bob.waitJS(10*time.Second, "the screen tile gone", fmt.Sprintf(`!document.querySelector(%s) &&
			document.getElementById('spotlight').hidden`, js(tileSel("alice", "screen"))))
	}
}

// TestDevicePicker: the device dialog lists the microphones and cameras by
// label; choosing another one switches the published track without a
// renegotiation, and the other page keeps receiving.
func TestDevicePicker(t *testing.T) {
	browsertest.Require(t)
	s := startCallServer(t, 27070, nil)
	call := s.createCall(t)
	alice, bob := newBrowser(t, "alice", s), newBrowser(t, "bob", s)
	alice.navigate(s.callURL(s.token(t, call, "alice"), callSecret))
	bob.navigate(s.callURL(s.token(t, call, "bob"), callSecret))
	bob.waitStats(15*time.Second, "alice's media", func(s pageStats) bool {
		v := s.track("alice", "video")
		return v != nil && v.FramesDecoded > 10
	})
	alice.click("#settings")
	alice.waitJS(10*time.Second, "the device dialog open", `document.getElementById('devices').open`)
	for _, sel := range []string{"#mic-select", "#cam-select"} {
		alice.waitJS(10*time.Second, "devices in "+sel, fmt.Sprintf(`document.querySelector(%s).options.length > 0`, js(sel)))
		labels := mustEval[[]string](alice, fmt.Sprintf(`[...document.querySelector(%s).options].map((o) => o.textContent)`, js(sel)))
		for _, l := range labels {
			if strings.TrimSpace(l) == "" {
				t.Errorf("%s: an option without a label: %q", sel, labels)
			}
		}
		// Choose the last one.
		want := mustEval[string](alice, fmt.Sprintf(`(() => { const s = document.querySelector(%s);
			s.value = s.options[s.options.length - 1].value; s.dispatchEvent(new Event('change')); return s.value; })()`, js(sel)))
		kind := map[string]string{"#mic-select": "audio", "#cam-select": "video"}[sel]
		alice.waitJS(10*time.Second, "the "+kind+" device switched", fmt.Sprintf(
			`window.orville.localTrack(%s)?.getSettings().deviceId === %s`, js(kind), js(want)))
		if alice.shown("#devices-error") {
			t.Errorf("%s: %s", sel, alice.text("#devices-error"))
		}
		before := bob.stats().track("alice", kind)
		bob.waitStats(10*time.Second, "alice's "+kind+" after the switch", func(s pageStats) bool {
			v := s.track("alice", kind)
			return v != nil && v.PacketsReceived > before.PacketsReceived+20
		})
	}
	if got := mustEval[string](alice, `window.orville.localTrack('video')?.getSettings().deviceId || ''`); got == "" {
		t.Error("no local camera after the switch")
	}
	mustEval[bool](alice, `(document.getElementById('devices-close').click(), true)`)
	alice.waitJS(5*time.Second, "the dialog closed", `!document.getElementById('devices').open`)
}

// TestPageKeyboard: every control has a name a screen reader can say and
// is reached with Tab; the microphone toggles with Space, the device dialog
// opens with Enter and closes with Escape.
func TestPageKeyboard(t *testing.T) {
	browsertest.Require(t)
	s := startCallServer(t, 27080, nil)
	call := s.createCall(t)
	b := newBrowser(t, "keys", s)
	b.navigate(s.callURL(s.token(t, call, "alice"), callSecret))
	b.waitStats(15*time.Second, "connected", func(s pageStats) bool { return s.State == "connected" })
	unnamed := mustEval[[]string](b, `[...document.querySelectorAll('button, select')].filter((e) => !e.hidden &&
		e.getClientRects().length).filter((e) => {
			const name = e.getAttribute('aria-label') || e.textContent.trim() ||
				(e.id && document.querySelector('label[for="' + e.id + '"]')?.textContent.trim());
			return !name;
		}).map((e) => e.outerHTML.slice(0, 80))`)
	if len(unnamed) > 0 {
		t.Errorf("controls without an accessible name: %q", unnamed)
	}
	mustEval[bool](b, `(document.activeElement.blur(), true)`)
	seen := map[string]bool{}
	for range 12 {
		if err := chromedp.Do(b.ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatal(err)
		}
		seen[mustEval[string](b, `document.activeElement.id || document.activeElement.tagName`)] = true
	}
	for _, id := range []string{"people-toggle", "mic", "cam", "share", "settings", "leave"} {
		if !seen[id] {
			t.Errorf("Tab never reached #%s (reached %v)", id, seen)
		}
	}
	mustEval[bool](b, `(document.getElementById('mic').focus(), true)`)
	if err := chromedp.Do(b.ctx, chromedp.KeyEvent(" ")); err != nil {
		t.Fatal(err)
	}
	b.waitJS(5*time.Second, "the microphone muted by Space", `document.getElementById('mic').getAttribute('aria-pressed') === 'true'`)
	mustEval[bool](b, `(document.getElementById('settings').focus(), true)`)
	if err := chromedp.Do(b.ctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	b.waitJS(5*time.Second, "the device dialog opened by Enter", `document.getElementById('devices').open`)
	if id := mustEval[string](b, `document.activeElement.id`); id != "mic-select" {
		t.Errorf("focus in the dialog on %q, want the first control", id)
	}
	if err := chromedp.Do(b.ctx, chromedp.KeyEvent(kb.Escape)); err != nil {
		t.Fatal(err)
	}
	b.waitJS(5*time.Second, "the dialog closed by Escape", `!document.getElementById('devices').open`)
}

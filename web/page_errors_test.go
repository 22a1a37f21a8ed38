package web_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/orville/orville/client"
	"github.com/orville/orville/internal/browsertest"
)

// expectScreen waits for the full-page message with that code and checks
// its title, a phrase of its text and whether it offers Rejoin.
func (b *browser) expectScreen(code, title, phrase string, rejoin bool) {
	b.t.Helper()
	b.waitJS(15*time.Second, "the "+code+" screen", fmt.Sprintf(
		`!document.getElementById('screen').hidden && document.getElementById('screen').dataset.code === %s`, js(code)))
	if got := b.text("#screen-title"); got != title {
		b.t.Errorf("%s: title %q, want %q", code, got, title)
	}
	if got := b.text("#screen-text"); !strings.Contains(got, phrase) {
		b.t.Errorf("%s: text %q lacks %q", code, got, phrase)
	}
	if b.shown("#rejoin") != rejoin {
		b.t.Errorf("%s: Rejoin shown %v, want %v", code, !rejoin, rejoin)
	}
	page := b.text("body")
	for _, dev := range []string{"TOKEN", "SECRET", "HOST", "undefined", "[object"} {
		if strings.Contains(page, dev) {
			b.t.Errorf("%s: the page shows %q: %q", code, dev, page)
		}
	}
}

// TestPageErrors: every way a join or a call can end has its own message in
// plain words — no link, a bad or expired link, an ended call, a full call,
// removal, joining from elsewhere, the end of the call, a server shutdown, a
// too-short key; the ones worth retrying offer Rejoin.
func TestPageErrors(t *testing.T) {
	browsertest.Require(t)
	s := startCallServer(t, 27020, nil)
	ctx := context.Background()
	b := newBrowser(t, "page", s)

	b.navigate(s.base + "/")
	b.expectScreen("no_link", "This page needs a call link", "Open the link you were sent", false)

	b.navigate(s.base + "/?token=eyJub3QiOiJhIHRva2VuIn0.e30.c2ln#key=" + callSecret)
	b.expectScreen("invalid_token", "This call link has expired or is no longer valid", "Ask for a new link", false)

	call := s.createCall(t)
	b.navigate(s.callURL(s.token(t, call, "alice"), "short"))
	b.expectScreen("key_too_short", "This call link is incomplete", "too short", false)
	if got := b.text("#e2ee"); !strings.Contains(got, "Not end-to-end encrypted") {
		t.Errorf("badge with a short key: %q", got)
	}

	gone := s.createCall(t)
	tok := s.token(t, gone, "alice")
	if err := s.apiC.EndCall(ctx, gone); err != nil {
		t.Fatal(err)
	}
	b.navigate(s.callURL(tok, callSecret))
	b.expectScreen("call_not_found", "This call has ended", "no call at this link", false)

	sc, err := s.apiC.CreateCall(ctx, &client.CreateCallOptions{MaxParticipants: 1})
	if err != nil {
		t.Fatal(err)
	}
	full := sc.State.EventID
	occupant, err := client.Join(ctx, client.Config{SignalingURL: "wss" + s.base[len("https"):] + "/v1/rtc",
		Token: s.token(t, full, "occupant"), TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	b.navigate(s.callURL(s.token(t, full, "alice"), callSecret))
	b.expectScreen("call_full", "This call is full", "Try again when someone has left", true)
	occupant.Close()

	// In the call, then removed through the API.
	b.navigate(s.callURL(s.token(t, call, "alice"), callSecret))
	b.waitStats(10*time.Second, "connected", func(s pageStats) bool { return s.State == "connected" })
	if err := s.apiC.RemoveParticipant(ctx, call, "alice"); err != nil {
		t.Fatal(err)
	}
	b.expectScreen("removed", "You were removed from the call", "only with a new link", false)

	// In the call, then the same participant joins from elsewhere.
	link := s.callURL(s.token(t, call, "bob"), callSecret)
	b.navigate(link)
	b.waitStats(10*time.Second, "connected", func(s pageStats) bool { return s.State == "connected" })
	other := newBrowser(t, "other-tab", s)
	other.navigate(link)
	b.expectScreen("replaced", "You joined from somewhere else", "another tab or on another device", true)
	other.waitStats(10*time.Second, "connected", func(s pageStats) bool { return s.State == "connected" })

	// The call ends.
	if err := s.apiC.EndCall(ctx, call); err != nil {
		t.Fatal(err)
	}
	other.expectScreen("ended_by_api", "The call has ended", "ended for everyone", false)

	// The server shuts down under a call.
	last := s.createCall(t)
	b.navigate(s.callURL(s.token(t, last, "carol"), callSecret))
	b.waitStats(10*time.Second, "connected", func(s pageStats) bool { return s.State == "connected" })
	s.sig.Close()
	b.expectScreen("server_shutdown", "The call server is restarting", "Rejoin in a moment", true)
}

// unreachableMedia makes every server candidate the page receives point at
// port 9 (discard): media can never connect, signaling works.
const unreachableMedia = `(() => {
  const orig = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (d) {
    if (d && d.sdp) d = { type: d.type, sdp: d.sdp.replace(/(a=candidate:\S+ \d+ \S+ \d+ \S+ )\d+/g, '$19') };
    return orig.call(this, d);
  };
})();`

// TestPageNamesPortsWhenMediaCannotConnect: when media does not connect,
// the page says which ports to open: the server's UDP range and client
// port, from `joined`.
func TestPageNamesPortsWhenMediaCannotConnect(t *testing.T) {
	browsertest.Require(t)
	s := startCallServer(t, 27030, nil)
	call := s.createCall(t)
	b := newBrowser(t, "blocked", s)
	if _, err := chromedp.Call(b.ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: unreachableMedia}); err != nil {
		t.Fatal(err)
	}
	b.navigate(s.callURL(s.token(t, call, "alice"), callSecret))
	b.waitJS(20*time.Second, "the network banner", `document.getElementById('banner').dataset.kind === 'network'`)
	port := s.base[strings.LastIndex(s.base, ":")+1:]
	want := fmt.Sprintf("allow UDP ports 27030–27033 and TCP port %s to 127.0.0.1", port)
	if got := b.text("#banner"); !strings.Contains(got, want) {
		t.Errorf("banner %q lacks %q", got, want)
	}
}

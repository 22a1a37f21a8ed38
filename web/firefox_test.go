package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/internal/browsertest"
	"github.com/orville/orville/internal/netnstest"
)

// ffPage is the web client in headless Firefox (WebDriver BiDi).
type ffPage struct {
	t    *testing.T
	name string
	ff   *browsertest.Firefox
}

func newFirefox(t *testing.T, name string, o browsertest.FirefoxOptions) *ffPage {
	t.Helper()
	return &ffPage{t: t, name: name, ff: browsertest.StartFirefox(t, o)}
}

func (p *ffPage) navigate(url string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.ff.Navigate(ctx, p.ff.Tab, url); err != nil {
		p.t.Fatalf("%s: open %s: %v", p.name, url, err)
	}
}

func (p *ffPage) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return p.ff.EvalJSON(ctx, p.ff.Tab, expr, out)
}

func (p *ffPage) stats() pageStats {
	p.t.Helper()
	var s pageStats
	if err := p.eval("window.orville.stats()", &s); err != nil {
		p.t.Fatalf("%s: stats: %v", p.name, err)
	}
	return s
}

func (p *ffPage) waitStats(d time.Duration, what string, ok func(pageStats) bool) pageStats {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := p.stats()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no %s within %v; stats %s", p.name, what, d, s)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (p *ffPage) waitJS(d time.Duration, what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var ok bool
		err := p.eval(expr, &ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no %s within %v (%s; err %v)", p.name, what, d, expr, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (p *ffPage) text(sel string) string {
	p.t.Helper()
	var s string
	if err := p.eval(fmt.Sprintf(`(document.querySelector(%s) || {}).innerText || ''`, js(sel)), &s); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	return s
}

const wrongSecret = "not-the-call-secret-9Xq2Lm"

// TestChromiumAndFirefoxCall: headless Chromium and headless Firefox
// (Debian's firefox-esr, over WebDriver BiDi) in one end-to-end encrypted
// call over UDP, the server in one network namespace and the browsers in
// another (10.79.0.1 and 10.79.0.2: Firefox's ICE ignores loopback). Each
// decodes the other's video, decrypting every frame; each shows the other's
// display name. A third page with a wrong key sees "cannot decrypt" on
// both tiles and a badge that no longer says the call is secure; the two
// others see the same about it.
func TestChromiumAndFirefoxCall(t *testing.T) {
	browsertest.Require(t)
	browsertest.RequireFirefox(t)
	srv, cli := netnstest.New(t, "wsrv"), netnstest.New(t, "wcli")
	netnstest.Link(t, srv, "v-wsrv", "10.79.0.1/24", cli, "v-wcli", "10.79.0.2/24")
	s := startCallServerIn(t, 27100, nil, srv, "10.79.0.1")
	call := s.createCall(t)

	inCli := browsertest.WrapCommand("ip", "netns", "exec", cli.Name)
	chrome := newBrowser(t, "chromium", s, inCli)
	fox := newFirefox(t, "firefox", browsertest.FirefoxOptions{Command: cli.Command, Dial: cli.DialContext})
	chrome.navigate(s.callURL(s.namedToken(t, call, "cam", "Camille Chromium"), callSecret))
	fox.navigate(s.callURL(s.namedToken(t, call, "fox", "Félix Firefox"), callSecret))

	start := time.Now()
	cst := chrome.waitStats(20*time.Second, "Firefox's video", func(s pageStats) bool {
		v := s.track("fox", "video")
		return v != nil && v.FramesDecoded > 30
	})
	fst := fox.waitStats(20*time.Second, "Chromium's video", func(s pageStats) bool {
		v := s.track("cam", "video")
		return v != nil && v.FramesDecoded > 30
	})
	t.Logf("both decode the other's video %v after joining", time.Since(start).Round(time.Millisecond))
	for name, st := range map[string]pageStats{"chromium": cst, "firefox": fst} {
		other := map[string]string{"chromium": "fox", "firefox": "cam"}[name]
		if st.State != "connected" || st.Transport != "udp" || !st.E2EE || !st.ScriptTransform {
			t.Errorf("%s: %s, want connected over udp with E2EE in an RTCRtpScriptTransform", name, st)
		}
		for _, kind := range []string{"audio", "video"} {
			if tr := st.track(other, kind); tr == nil || tr.DecryptFailures != 0 || tr.FramesDecrypted == 0 {
				t.Errorf("%s: %s from %s: %+v, want decrypted frames and no failure", name, kind, other, tr)
			}
		}
	}
	if got := chrome.text(tileSel("fox", "camera") + " .name"); got != "Félix Firefox" {
		t.Errorf("chromium's tile for firefox: %q", got)
	}
	if got := fox.text(tileSel("cam", "camera") + " .name"); got != "Camille Chromium" {
		t.Errorf("firefox's tile for chromium: %q", got)
	}
	for _, txt := range []string{chrome.text("#e2ee"), fox.text("#e2ee")} {
		if !strings.Contains(txt, "End-to-end encrypted") {
			t.Errorf("badge %q", txt)
		}
	}

	// A third page with a wrong key.
	wrong := newBrowser(t, "wrong-key", s, inCli)
	wrong.navigate(s.callURL(s.namedToken(t, call, "eve", "Eve Wrongkey"), wrongSecret))
	for _, id := range []string{"cam", "fox"} {
		wrong.waitJS(20*time.Second, "cannot-decrypt on "+id+"'s tile",
			fmt.Sprintf(`document.querySelector(%s)?.dataset.decrypt === 'failing'`, js(tileSel(id, "camera"))))
		if got := wrong.text(tileSel(id, "camera") + " .problem"); !strings.Contains(got, "Can’t decrypt") {
			t.Errorf("wrong-key page, %s's tile: %q", id, got)
		}
	}
	if on := mustEval[string](wrong, `document.getElementById('e2ee').dataset.on`); on != "mismatch" {
		t.Errorf("wrong-key page's badge state %q, want mismatch", on)
	}
	if got := wrong.text("#e2ee"); strings.Contains(got, "End-to-end encrypted") || !strings.Contains(got, "Not secure") {
		t.Errorf("wrong-key page's badge says %q", got)
	}
	if st := wrong.stats(); len(st.DecryptFailing) != 2 {
		t.Errorf("wrong-key page: decrypt failing for %v, want both", st.DecryptFailing)
	}
	// And the others cannot decrypt the wrong-key page.
	chrome.waitJS(20*time.Second, "cannot-decrypt on eve's tile at chromium",
		fmt.Sprintf(`document.querySelector(%s)?.dataset.decrypt === 'failing'`, js(tileSel("eve", "camera"))))
	fox.waitJS(20*time.Second, "cannot-decrypt on eve's tile at firefox",
		fmt.Sprintf(`document.querySelector(%s)?.dataset.decrypt === 'failing'`, js(tileSel("eve", "camera"))))
	if got := fox.text("#e2ee"); !strings.Contains(got, "Eve Wrongkey") {
		t.Errorf("firefox's badge with eve in the call: %q", got)
	}
	// Chromium and Firefox still decrypt each other.
	if tr := chrome.stats().track("fox", "video"); tr == nil || tr.DecryptFailures != 0 {
		t.Errorf("chromium's video from firefox after eve joined: %+v", tr)
	}
}

// TestFirefoxOnLoopbackServer: against a server on 127.0.0.1 (what `orville
// serve --dev` runs), Firefox cannot connect media — its ICE ignores
// loopback candidates — and the page says so and what to do.
func TestFirefoxOnLoopbackServer(t *testing.T) {
	browsertest.RequireFirefox(t)
	s := startCallServer(t, 27110, nil)
	call := s.createCall(t)
	fox := newFirefox(t, "firefox", browsertest.FirefoxOptions{})
	fox.navigate(s.callURL(s.token(t, call, "fox"), callSecret))
	fox.waitJS(20*time.Second, "the loopback banner", `document.getElementById('banner').dataset.kind === 'loopback' ||
		document.getElementById('banner').dataset.kind === 'network'`)
	got := fox.text("#banner")
	for _, want := range []string{"only on 127.0.0.1", "Firefox does not connect media to loopback addresses", "--listen-ip"} {
		if !strings.Contains(got, want) {
			t.Errorf("banner %q lacks %q", got, want)
		}
	}
	if st := fox.stats(); !st.LoopbackOnly || st.State == "connected" {
		t.Errorf("firefox on loopback: %s (loopback only %v)", st, st.LoopbackOnly)
	}
}

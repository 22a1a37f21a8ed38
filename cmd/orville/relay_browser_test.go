package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"github.com/orville/orville/internal/browsertest"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/orville/orville/internal/tlsutil"
)

// relayOnlyTLS makes every RTCPeerConnection of the page relay-only
// (iceTransportPolicy "relay") through the TURN over TLS URLs the server
// handed out — the turn: (TCP) URLs are dropped — before the web client's
// own scripts run.
const relayOnlyTLS = `(() => {
  const Orig = window.RTCPeerConnection;
  function Relay(cfg, ...rest) {
    cfg = Object.assign({}, cfg || {}, { iceTransportPolicy: 'relay' });
    cfg.iceServers = (cfg.iceServers || [])
      .map((s) => Object.assign({}, s, { urls: [].concat(s.urls).filter((u) => u.startsWith('turns:')) }))
      .filter((s) => s.urls.length > 0);
    window.__orvilleRelayServers = cfg.iceServers;
    return new Orig(cfg, ...rest);
  }
  Relay.prototype = Orig.prototype;
  Object.setPrototypeOf(Relay, Orig);
  window.RTCPeerConnection = Relay;
})();`

// pageState is what the test reads from the web client (window.orville.stats).
type pageState struct {
	State     string `json:"state"`
	Transport string `json:"transport"`
	Tracks    []struct {
		Kind          string `json:"kind"`
		Participant   string `json:"participant"`
		FramesDecoded int    `json:"framesDecoded"`
	} `json:"tracks"`
	Relay []struct {
		URLs []string `json:"urls"`
	} `json:"relay"`
}

// Headless Chromium, relay-only through our TURN over TLS on the client
// port, joins a call with the web client at / and decodes the video of the
// other participant (a second Chromium tab with a fake camera).
func TestBrowserRelayOverTURNTLS(t *testing.T) {
	browsertest.Require(t)
	s := startStack(t, 45400)
	_, g := s.call(t, "alice", "bob")

	// The deployment certificate is self-signed: trust it by its key.
	conn, err := tls.Dial("tcp", s.tcpAddr, s.tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	spki := tlsutil.SPKIHash(conn.ConnectionState().PeerCertificates[0])
	conn.Close()

	alice, bob := newChromium(t, spki), newChromium(t, spki)

	base := "https://" + s.tcpAddr + "/?token="
	if _, err := chromedp.Call(alice, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: relayOnlyTLS}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(alice, chromedp.Navigate(base+g["alice"].Token)); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if err := chromedp.Do(bob, chromedp.Navigate(base+g["bob"].Token)); err != nil {
		t.Fatalf("bob: %v", err)
	}

	read := func(ctx context.Context) (pageState, error) {
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
			const s = await window.orville.stats();
			s.relay = window.__orvilleRelayServers || [];
			return JSON.stringify(s);
		})()`, chromedp.EvalAwaitPromise))
		var st pageState
		if err == nil {
			err = json.Unmarshal([]byte(raw), &st)
		}
		return st, err
	}
	deadline := time.Now().Add(30 * time.Second)
	var st pageState
	for {
		var err error
		st, err = read(alice)
		decoded := 0
		for _, tr := range st.Tracks {
			if tr.Participant == "bob" && tr.Kind == "video" {
				decoded = tr.FramesDecoded
			}
		}
		if err == nil && decoded > 10 && st.Transport != "" {
			t.Logf("alice decoded %d video frames from bob over %s", decoded, st.Transport)
			break
		}
		if time.Now().After(deadline) {
			bs, _ := read(bob)
			t.Fatalf("alice decoded no video from bob: %+v (err %v); bob: %+v", st, err, bs)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if st.Transport != "turn/tls" {
		t.Errorf("alice's transport %q, want turn/tls (relay over TURN over TLS)", st.Transport)
	}
	if len(st.Relay) != 1 || len(st.Relay[0].URLs) != 1 || st.Relay[0].URLs[0] != "turns:"+s.tcpAddr+"?transport=tcp" {
		t.Errorf("relay servers %+v", st.Relay)
	}
}

// newChromium starts a headless Chromium with a fake camera and microphone
// that trusts the server certificate with the given SPKI hash.
func newChromium(t *testing.T, spki string) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), browsertest.Options(spki, t.TempDir())...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

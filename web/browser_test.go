package web_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"github.com/orville/orville/internal/browsertest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/orville/orville/client"
	"github.com/orville/orville/e2ee"
	"github.com/pion/rtp/codecs"
	"golang.org/x/image/vp8"
)

const callSecret = "web-test-call-secret-Zx81Kq"

// shapeTap checks, on the SFU's forwarding path, that every Opus frame and
// every first packet of a VP8 frame is SFrame ciphertext. Browsers name
// their tracks at random, so it starts once it knows which are video.
type shapeTap struct {
	mu     sync.Mutex
	video  map[string]bool // participant/track → video
	frames int
	bad    []string
}

func (s *shapeTap) tap(participant, trackID string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.video == nil {
		return
	}
	codec, frame := e2ee.CodecOpus, payload
	if s.video[participant+"/"+trackID] {
		var d codecs.VP8Packet
		part, err := d.Unmarshal(payload)
		if err != nil {
			s.bad = append(s.bad, participant+"/"+trackID+": bad VP8 payload descriptor")
			return
		}
		if d.S != 1 || d.PID != 0 {
			return // not the first packet of a frame
		}
		codec, frame = e2ee.CodecVP8, part
	}
	s.frames++
	if !e2ee.LooksProtected(codec, frame) && len(s.bad) < 5 {
		s.bad = append(s.bad, fmt.Sprintf("%s/%s: % x", participant, trackID, frame[:min(len(frame), 24)]))
	}
}

// start learns the call's video tracks from the API and starts checking.
func (s *shapeTap) start(t *testing.T, api *client.APIClient, call string) {
	t.Helper()
	info, err := api.GetCall(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	video := map[string]bool{}
	for _, p := range info.Participants {
		for _, tr := range p.Tracks {
			video[p.ID+"/"+tr.ID] = tr.Kind == client.KindVideo
		}
	}
	s.mu.Lock()
	s.video = video
	s.mu.Unlock()
}

// TestTwoBrowsersE2EECall: two headless Chromium instances join one call
// through the web client with E2EE on. Each decodes the other's video
// (framesDecoded > 30 within 10 s) with no decrypt failure, shows the E2EE
// indicator and the transport, ratchets (with a key frame) when the other
// joins; the server
// forwards only SFrame ciphertext. Then mute goes through to the server,
// and leave ends the other's tile.
func TestTwoBrowsersE2EECall(t *testing.T) {
	browsertest.Require(t)
	tap := &shapeTap{}
	s := startCallServer(t, 46120, tap.tap)
	call := s.createCall(t)
	alice, bob := newBrowser(t, "alice", s), newBrowser(t, "bob", s)
	alice.navigate(s.callURL(s.token(t, call, "alice"), callSecret))
	// alice is in the call before bob joins, so that she ratchets on his
	// join (on a loaded machine a page loaded first may join second).
	alice.waitStats(10*time.Second, "alice joined", func(s pageStats) bool { return s.ParticipantID == "alice" })
	bob.navigate(s.callURL(s.token(t, call, "bob"), callSecret))
	start := time.Now()
	for _, b := range []*browser{alice, bob} {
		other := map[*browser]string{alice: "bob", bob: "alice"}[b]
		st := b.waitStats(10*time.Second-time.Since(start), "decoded video from "+other, func(s pageStats) bool {
			v := s.track(other, "video")
			return v != nil && v.FramesDecoded > 30
		})
		if !st.E2EE || st.State != "connected" || st.Transport != "udp" || !st.ScriptTransform {
			t.Errorf("%s: %s, want connected over udp with E2EE in an RTCRtpScriptTransform", b.name, st)
		}
	}
	t.Logf("both browsers decoded > 30 frames of the other's video after %v", time.Since(start).Round(time.Millisecond))

	tap.start(t, s.apiC, call)
	time.Sleep(time.Second)
	for _, b := range []*browser{alice, bob} {
		other := map[*browser]string{alice: "bob", bob: "alice"}[b]
		st := b.stats()
		for _, kind := range []string{"audio", "video"} {
			tr := st.track(other, kind)
			if tr == nil || tr.DecryptFailures != 0 || tr.FramesDecrypted == 0 || tr.PacketsReceived == 0 {
				t.Errorf("%s: %s from %s: %+v, want frames decrypted and no failure", b.name, kind, other, tr)
			}
		}
	}
	// alice was in the call when bob joined, so she ratcheted.
	if st := alice.stats(); st.KeySwitches < 1 || st.KeyFrameOnSwitch == "" {
		t.Errorf("alice did not ratchet on bob's join and ask for a key frame: %s", st)
	}
	tap.mu.Lock()
	if tap.frames < 50 || len(tap.bad) > 0 {
		t.Errorf("tap: %d frames, not SFrame: %v", tap.frames, tap.bad)
	}
	tap.mu.Unlock()
	e2eeText := mustEval[string](alice, `document.getElementById('e2ee').textContent`)
	if !bytes.Contains([]byte(e2eeText), []byte("End-to-end encrypted")) {
		t.Errorf("E2EE indicator says %q", e2eeText)
	}
	if tiles := mustEval[[]string](alice, `[...document.querySelectorAll('.tile:not(.self)')].map((t) => t.dataset.participant)`); len(tiles) != 1 || tiles[0] != "bob" {
		t.Errorf("alice's tiles: %v", tiles)
	}

	// Mute alice's microphone from the page: the server marks the track
	// muted and bob's page shows it.
	mustEval[bool](alice, `(document.getElementById('mic').click(), true)`)
	waitFor(t, "alice's audio muted at the server", func() bool {
		info, err := s.apiC.GetCall(context.Background(), call)
		if err != nil {
			return false
		}
		for _, p := range info.Participants {
			for _, tr := range p.Tracks {
				if p.ID == "alice" && tr.Kind == client.KindAudio {
					return tr.Muted
				}
			}
		}
		return false
	})

	// bob's page shows alice's microphone muted, her video still on.
	waitFor(t, "alice's tile at bob showing her microphone muted", func() bool {
		v, _ := eval[string](bob, `(() => { const t = document.querySelector('.tile[data-participant="alice"]');
			return t ? (t.dataset.audioMuted || '') + '/' + (t.dataset.videoMuted || '') : ''; })()`)
		return v == "yes/no"
	})

	// The secret stayed in the pages: no request URL and no signaling
	// message carried it (the fragment is not part of a request).
	for _, b := range []*browser{alice, bob} {
		sent := b.sentToServer()
		joined := false
		for _, m := range sent {
			if strings.Contains(m, callSecret) {
				t.Errorf("%s sent the call secret to the server: %.200q", b.name, m)
			}
			joined = joined || strings.Contains(m, `"type":"join"`)
		}
		if !joined || len(sent) < 5 {
			t.Errorf("%s: recorded %d requests and messages, no join among them", b.name, len(sent))
		}
	}

	// bob leaves: his page says so, alice's tile for him goes, alice takes a
	// new key generation.
	switches := alice.stats().KeySwitches
	mustEval[bool](bob, `(document.getElementById('leave').click(), true)`)
	bob.waitStats(10*time.Second, "state left", func(s pageStats) bool { return s.State == "left" })
	waitFor(t, "bob's tile gone and a new key at alice", func() bool {
		n := mustEval[int](alice, `document.querySelectorAll('.tile:not(.self)').length`)
		return n == 0 && alice.stats().KeySwitches > switches
	})
}

// TestBrowserGoInterop: a browser and a Go client in one call, both with
// E2EE. The Go client decrypts the browser's VP8 and a decrypted key frame
// decodes (golang.org/x/image/vp8) as a picture of the browser camera's
// size; the browser decrypts the Go client's frames with no failure (the Go
// client's VP8 is synthetic, so the browser cannot decode it as video). Run
// with RTCRtpScriptTransform, and with the createEncodedStreams fallback of
// browsers that lack it (RTCRtpScriptTransform removed before the page runs).
func TestBrowserGoInterop(t *testing.T) {
	t.Run("RTCRtpScriptTransform", func(t *testing.T) { browserGoInterop(t, 46140, false) })
	t.Run("createEncodedStreams", func(t *testing.T) { browserGoInterop(t, 46150, true) })
}

func browserGoInterop(t *testing.T, portStart int, fallback bool) {
	browsertest.Require(t)
	s := startCallServer(t, portStart, nil)
	call := s.createCall(t)

	type picture struct{ w, h int }
	pictures := make(chan picture, 16)
	var decodeErrs sync.Map
	tf, err := client.NewE2EE(client.E2EEConfig{Secret: []byte(callSecret), OnVideoKeyFrame: func(frame []byte) {
		d := vp8.NewDecoder()
		d.Init(bytes.NewReader(frame), len(frame))
		fh, err := d.DecodeFrameHeader()
		if err != nil || !fh.KeyFrame {
			decodeErrs.Store(fmt.Sprint(err), true)
			return
		}
		img, err := d.DecodeFrame()
		if err != nil {
			decodeErrs.Store(err.Error(), true)
			return
		}
		select {
		case pictures <- picture{img.Bounds().Dx(), img.Bounds().Dy()}:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, "browser", s)
	if fallback {
		if _, err := chromedp.Call(b.ctx, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: "delete window.RTCRtpScriptTransform"}); err != nil {
			t.Fatal(err)
		}
	}
	b.navigate(s.callURL(s.token(t, call, "browser"), callSecret))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	goc, err := client.Join(ctx, client.Config{SignalingURL: "wss" + s.base[len("https"):] + "/v1/rtc",
		Token: s.token(t, call, "gopher"), TLSConfig: &tls.Config{InsecureSkipVerify: true}, ParticipantID: "gopher",
		PublishAudio: true, PublishVideo: true, VideoBitrate: 300_000, Transform: tf})
	if err != nil {
		t.Fatal(err)
	}
	defer goc.Close()
	if err := goc.WaitForMedia(ctx, []string{"browser"}, []string{client.KindAudio, client.KindVideo}); err != nil {
		t.Fatal(err)
	}

	st := b.waitStats(10*time.Second, "decrypted frames from the Go client", func(s pageStats) bool {
		a, v := s.track("gopher", "audio"), s.track("gopher", "video")
		return a != nil && v != nil && a.FramesDecrypted > 20 && v.FramesDecrypted > 20
	})
	if st.Camera == nil || st.Camera.Width == 0 {
		t.Fatalf("browser camera unknown: %s", st)
	}
	if st.ScriptTransform == fallback {
		t.Fatalf("scriptTransform %v, want %v", st.ScriptTransform, !fallback)
	}
	for _, kind := range []string{"audio", "video"} {
		if tr := st.track("gopher", kind); tr.DecryptFailures != 0 || tr.PacketsReceived == 0 {
			t.Errorf("browser: %s from the Go client: %+v", kind, tr)
		}
	}

	// Key frames come at the start, on each key switch and on request.
	want := picture{st.Camera.Width, st.Camera.Height}
	var seen []picture
	deadline := time.After(10 * time.Second)
	for got := false; !got; {
		_ = goc.RequestKeyFrame("browser", videoTrackOf(t, goc, "browser"))
		select {
		case p := <-pictures:
			seen = append(seen, p)
			got = p == want
		case <-time.After(time.Second):
		case <-deadline:
			var errs []any
			decodeErrs.Range(func(k, _ any) bool { errs = append(errs, k); return true })
			t.Fatalf("no decrypted key frame of the camera's size %v: decoded %v, errors %v", want, seen, errs)
		}
	}
	// Another participant comes and goes: the browser ratchets, then takes
	// a new key generation and sends a key frame, which the Go client
	// decrypts like every other frame.
	keyFrames := func() uint64 {
		for _, r := range goc.Stats().Received {
			if r.ParticipantID == "browser" && r.Kind == client.KindVideo {
				return r.KeyFrames
			}
		}
		return 0
	}
	switches := b.stats().KeySwitches
	other, err := client.Join(ctx, client.Config{SignalingURL: "wss" + s.base[len("https"):] + "/v1/rtc",
		Token: s.token(t, call, "visitor"), TLSConfig: &tls.Config{InsecureSkipVerify: true}, ParticipantID: "visitor"})
	if err != nil {
		t.Fatal(err)
	}
	b.waitStats(10*time.Second, "a ratchet on the visitor's join", func(s pageStats) bool { return s.KeySwitches > switches })
	time.Sleep(1500 * time.Millisecond) // key frames the visitor's subscription asked for
	k, switches := keyFrames(), b.stats().KeySwitches
	other.Close()
	st = b.waitStats(10*time.Second, "a new generation on the visitor's leave", func(s pageStats) bool { return s.KeySwitches > switches })
	if st.KeyFrameOnSwitch == "" {
		t.Errorf("the browser's key switch asked for no key frame: %s", st)
	}
	waitFor(t, "a key frame from the browser after its key switch", func() bool { return keyFrames() > k })
	time.Sleep(500 * time.Millisecond)

	for _, r := range goc.Stats().Received {
		if r.ParticipantID == "browser" && (r.Frames == 0 || r.FramesDecryptFailed != 0) {
			t.Errorf("Go client: %s from the browser: %d frames, %d failed to decrypt", r.Kind, r.Frames, r.FramesDecryptFailed)
		}
	}
	t.Logf("Go decoded the browser's key frame as %dx%d; key frame after a key switch by %s", want.w, want.h, st.KeyFrameOnSwitch)
}

func videoTrackOf(t *testing.T, c *client.Client, participant string) string {
	for _, r := range c.Stats().Received {
		if r.ParticipantID == participant && r.Kind == client.KindVideo {
			return r.TrackID
		}
	}
	t.Fatalf("no video track of %s", participant)
	return ""
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

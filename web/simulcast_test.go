package web_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/internal/browsertest"
	"golang.org/x/image/vp8"
)

// Simulcast from a browser (issue 10's acceptance): a Chromium page
// publishes its camera as three encodings (q, h, f) through the web client
// with E2EE. A Go subscriber asking for 180-pixel tiles receives only q and
// decrypts it (its key frames decode, at q's size); a second Chromium page
// decodes the full layer. That page then switches layers — tiles of 120,
// then 240 pixels, then no limit — and its decoder never stops: frames keep
// being decoded across each switch, with a key frame per switch and no
// storm of them. While nobody receives f, the publisher is told and stops
// encoding it.

// simTrack is what the simulcast tests read of a received track.
type simTrack struct {
	Kind             string `json:"kind"`
	Participant      string `json:"participant"`
	FramesDecoded    int    `json:"framesDecoded"`
	FrameHeight      int    `json:"frameHeight"`
	KeyFramesDecoded int    `json:"keyFramesDecoded"`
	FreezeCount      int    `json:"freezeCount"`
	PLICount         int    `json:"pliCount"`
	DecryptFailures  int    `json:"decryptFailures"`
}

type simLayer struct {
	RID         string `json:"rid"`
	Active      bool   `json:"active"`
	BytesSent   int    `json:"bytesSent"`
	FrameHeight int    `json:"frameHeight"`
}

func videoFrom(b *browser, from string) simTrack {
	b.t.Helper()
	for _, tr := range mustEval[[]simTrack](b, `window.orville.stats().then((s) => s.tracks)`) {
		if tr.Participant == from && tr.Kind == "video" {
			return tr
		}
	}
	return simTrack{}
}

func layersOf(b *browser) map[string]simLayer {
	b.t.Helper()
	out := map[string]simLayer{}
	for _, l := range mustEval[[]simLayer](b, `window.orville.layers()`) {
		out[l.RID] = l
	}
	return out
}

// within polls ok every 200 ms until it holds, or fails after d.
func within(t *testing.T, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(start)
}

func TestBrowserSimulcast(t *testing.T) {
	browsertest.Require(t)
	s := startCallServer(t, 46170, nil)
	call := s.createCall(t)

	alice := newBrowser(t, "alice", s)
	alice.navigate(s.callURL(s.token(t, call, "alice"), callSecret))
	alice.waitStats(15*time.Second, "alice connected", func(p pageStats) bool { return p.State == "connected" })

	// The Go subscriber: 180-pixel tiles, E2EE; its decrypted key frames
	// are decoded to read their size.
	var mu sync.Mutex
	sizes := map[string]int{}
	tf, err := client.NewE2EE(client.E2EEConfig{Secret: []byte(callSecret), OnVideoKeyFrame: func(frame []byte) {
		d := vp8.NewDecoder()
		d.Init(bytes.NewReader(frame), len(frame))
		if _, err := d.DecodeFrameHeader(); err != nil {
			return
		}
		img, err := d.DecodeFrame()
		key := "undecodable"
		if err == nil {
			key = fmt.Sprintf("%dx%d", img.Bounds().Dx(), img.Bounds().Dy())
		}
		mu.Lock()
		sizes[key]++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	goc, err := client.Join(ctx, client.Config{SignalingURL: "wss" + s.base[len("https"):] + "/v1/rtc",
		Token: s.token(t, call, "gopher"), TLSConfig: &tls.Config{InsecureSkipVerify: true}, ParticipantID: "gopher",
		Transform: tf})
	if err != nil {
		t.Fatal(err)
	}
	defer goc.Close()
	if err := goc.Subscribe([]client.VideoSubscription{{ParticipantID: "alice", MaxHeight: 180}}); err != nil {
		t.Fatal(err)
	}
	bob := newBrowser(t, "bob", s)
	bob.navigate(s.callURL(s.token(t, call, "bob"), callSecret))

	// alice sends every layer the browser encodes for her camera (two for
	// its 640×480, three from 540 lines up): smallest first.
	var layers []simLayer
	within(t, 15*time.Second, "alice sending her layers", func() bool {
		layers = layers[:0]
		for _, l := range layersOf(alice) {
			if l.BytesSent == 0 || l.FrameHeight == 0 {
				return false
			}
			layers = append(layers, l)
		}
		return len(layers) >= 2
	})
	sort.Slice(layers, func(i, j int) bool { return layers[i].FrameHeight < layers[j].FrameHeight })
	low, full := layers[0], layers[len(layers)-1]
	t.Logf("alice's layers: %+v", layers)
	if low.RID != "q" || full.RID != "f" {
		t.Fatalf("alice's layers %+v: want q the smallest and f the full picture", layers)
	}

	within(t, 15*time.Second, "bob decoding the full layer", func() bool {
		v := videoFrom(bob, "alice")
		return v.FrameHeight == full.FrameHeight && v.FramesDecoded > 30
	})
	within(t, 10*time.Second, "the Go subscriber decrypting q", func() bool {
		for _, r := range goc.Stats().Received {
			if r.ParticipantID == "alice" && r.Kind == "video" {
				return r.Height == low.FrameHeight && r.Frames > 30
			}
		}
		return false
	})
	time.Sleep(2 * time.Second) // a while on q
	for _, r := range goc.Stats().Received {
		if r.ParticipantID == "alice" && r.Kind == "video" && (r.FramesDecryptFailed != 0 || r.Height != low.FrameHeight) {
			t.Errorf("Go subscriber: %+v", r)
		}
	}
	mu.Lock()
	got := fmt.Sprint(sizes)
	qSize := fmt.Sprintf("%dx%d", low.FrameHeight*4/3, low.FrameHeight)
	onlyQ := len(sizes) == 1 && sizes[qSize] > 0
	mu.Unlock()
	if !onlyQ {
		t.Errorf("the Go subscriber's key frames decode as %s, want only %s (q)", got, qSize)
	}

	// bob switches layers; his decoder keeps going.
	type step struct {
		what   string
		video  string
		height int
	}
	var steps []step
	for _, l := range layers[:len(layers)-1] {
		steps = append(steps, step{fmt.Sprintf("%d-pixel tiles", l.FrameHeight),
			fmt.Sprintf(`[{participantId: 'alice', maxHeight: %d}]`, l.FrameHeight), l.FrameHeight})
	}
	steps = append(steps, step{"no limit", `null`, full.FrameHeight})
	steps = append(steps, steps[0])
	for _, st := range steps {
		before := videoFrom(bob, "alice")
		mustEval[bool](bob, `(window.orville.subscribe(`+st.video+`), true)`)
		took := within(t, 10*time.Second, "bob on "+st.what, func() bool { return videoFrom(bob, "alice").FrameHeight == st.height })
		time.Sleep(time.Second)
		after := videoFrom(bob, "alice")
		t.Logf("bob on %s (%d lines) %v after asking; %d frames decoded since, %d key frames, %d PLIs, %d freezes",
			st.what, st.height, took.Round(10*time.Millisecond), after.FramesDecoded-before.FramesDecoded,
			after.KeyFramesDecoded-before.KeyFramesDecoded, after.PLICount-before.PLICount, after.FreezeCount-before.FreezeCount)
		if after.FramesDecoded-before.FramesDecoded < 15 || after.DecryptFailures != 0 {
			t.Errorf("bob after switching to %s: %+v (before %+v)", st.what, after, before)
		}
		if k := after.KeyFramesDecoded - before.KeyFramesDecoded; k > 4 {
			t.Errorf("bob decoded %d key frames for one switch: a decoder reset storm", k)
		}
	}
	// bob and the Go subscriber on q: nobody receives f, and alice's
	// browser stops encoding it.
	within(t, 10*time.Second, "alice told to stop f", func() bool { return !layersOf(alice)["f"].Active })
	f0 := layersOf(alice)["f"].BytesSent
	time.Sleep(2 * time.Second)
	lay := layersOf(alice)
	t.Logf("alice's f: %d bytes in 2 s after the layers message; q active %v", lay["f"].BytesSent-f0, lay["q"].Active)
	if lay["f"].BytesSent-f0 > 2000 || !lay["q"].Active {
		t.Errorf("alice's layers once nobody receives f: %+v (f had sent %d)", lay, f0)
	}
	// bob asks for the full picture again: f comes back and he decodes it.
	mustEval[bool](bob, `(window.orville.subscribe(null), true)`)
	within(t, 10*time.Second, "bob back on f", func() bool { return videoFrom(bob, "alice").FrameHeight == full.FrameHeight })
	if v := videoFrom(bob, "alice"); v.FreezeCount > len(steps) {
		t.Errorf("bob's video froze %d times across %d switches", v.FreezeCount, len(steps)+1)
	}
}

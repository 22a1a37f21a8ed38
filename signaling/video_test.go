package signaling_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
	"go.uber.org/goleak"
)

// Simulcast end to end with Go clients (docs/signaling.md, "Video:
// simulcast, bandwidth and layers").

// joinVideo joins a client; simulcast publishes three layers of
// VideoBitrate bitrate, 0 publishes no video.
func (ts *testServer) joinVideo(t *testing.T, call, id string, simulcast bool, bitrate int, audio bool) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.Join(ctx, client.Config{SignalingURL: ts.wsURL, Token: ts.token(t, call, id),
		TLSConfig: &tls.Config{InsecureSkipVerify: true}, ParticipantID: id,
		PublishAudio: audio, PublishVideo: bitrate > 0, VideoBitrate: bitrate, Simulcast: simulcast})
	if err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	ts.videoClients = append(ts.videoClients, c)
	return c
}

// endVideoCall closes the clients joinVideo made and ends the call, before
// the goroutine leak check.
func (ts *testServer) endVideoCall(t *testing.T, call string) {
	for _, c := range ts.videoClients {
		c.Close()
	}
	_ = ts.apiClient.EndCall(context.Background(), call)
}

// receivedVideo is what c receives of from's video.
func receivedVideo(c *client.Client, from string) (client.ReceivedTrackStats, bool) {
	for _, r := range c.Stats().Received {
		if r.ParticipantID == from && r.Kind == "video" {
			return r, true
		}
	}
	return client.ReceivedTrackStats{}, false
}

// waitFor polls cond every 100 ms until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// sentLayer is what c sent of its video layer rid.
func sentLayer(c *client.Client, rid string) client.SentLayerStats {
	for _, tr := range c.Stats().Sent {
		for _, l := range tr.Layers {
			if l.RID == rid {
				return l
			}
		}
	}
	return client.SentLayerStats{}
}

// videoInfo reads GET /v1/calls/{id}: each participant's video allocation.
func (ts *testServer) videoInfo(t *testing.T, call string) map[string]map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.api.URL+"/v1/calls/"+call, nil)
	req.Header.Set("Authorization", "Bearer "+testSecret)
	resp, err := ts.api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ci struct {
		Participants []struct {
			ID    string         `json:"id"`
			Video map[string]any `json:"video"`
		} `json:"participants"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ci); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, p := range ci.Participants {
		out[p.ID] = p.Video
	}
	return out
}

// Each subscriber gets the layer its tile needs: bob asks for 180 pixels
// and gets h, carol shows every video as large as it comes and gets f. The
// API shows both allocations. Nobody receives q, so its publisher is told
// and stops sending it; when dave joins with a 90-pixel tile, q is wanted
// again and comes back.
func TestSimulcastLayerPerSubscriber(t *testing.T) {
	defer goleak.VerifyNone(t, goleakOpts...)
	ts := startServer(t, 44100)
	call := ts.createCall(t).State.EventID
	defer ts.endVideoCall(t, call)
	alice := ts.joinVideo(t, call, "alice", true, client.DefaultVideoBitrate, true)
	bob := ts.joinVideo(t, call, "bob", false, 0, false)
	if err := bob.Subscribe([]client.VideoSubscription{{ParticipantID: "alice", MaxHeight: 180}}); err != nil {
		t.Fatal(err)
	}
	carol := ts.joinVideo(t, call, "carol", false, 0, false)
	waitFor(t, 10*time.Second, "bob on h (180 lines)", func() bool {
		r, _ := receivedVideo(bob, "alice")
		return r.Height == 180
	})
	waitFor(t, 10*time.Second, "carol on f (360 lines)", func() bool {
		r, _ := receivedVideo(carol, "alice")
		return r.Height == 360
	})
	info := ts.videoInfo(t, call)
	for who, want := range map[string]string{"bob": "h", "carol": "f"} {
		v := info[who]
		tracks, _ := v["tracks"].([]any)
		if len(tracks) != 1 || tracks[0].(map[string]any)["targetLayer"] != want || v["estimateBps"].(float64) <= 0 {
			t.Errorf("GET call: %s's video %v, want alice's on %s with an estimate", who, v, want)
		}
	}
	// q: nobody. After the grace (3 s), alice stops it.
	waitFor(t, 10*time.Second, "alice told to stop q", func() bool { return !sentLayer(alice, "q").Active })
	before := sentLayer(alice, "q").Bytes
	time.Sleep(time.Second)
	if after := sentLayer(alice, "q").Bytes; after-before > 2000 {
		t.Errorf("q still sent after it was turned off: %d bytes in 1 s", after-before)
	}
	if f := sentLayer(alice, "f"); !f.Active {
		t.Error("f turned off while carol receives it")
	}
	dave := ts.joinVideo(t, call, "dave", false, 0, false)
	if err := dave.Subscribe([]client.VideoSubscription{{ParticipantID: "alice", MaxHeight: 90}}); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 5*time.Second, "dave on q (90 lines)", func() bool {
		r, _ := receivedVideo(dave, "alice")
		return r.Height == 90 && r.Frames > 0
	})
	t.Logf("q back for dave %v after his subscription", took.Round(10*time.Millisecond))
	for _, c := range []*client.Client{bob, carol, dave} {
		r, _ := receivedVideo(c, "alice")
		if r.FramesDecryptFailed != 0 || r.PacketsLost+int64(r.Duplicates) > int64(r.Packets/50) {
			t.Errorf("%s: %+v", c.ParticipantID(), r)
		}
	}
}

// When nobody receives a publisher's f layer, the publisher is told and its
// f bitrate drops to about zero; it comes back when somebody wants it.
func TestLayersMessageStopsUnwatchedLayer(t *testing.T) {
	defer goleak.VerifyNone(t, goleakOpts...)
	ts := startServer(t, 44120)
	call := ts.createCall(t).State.EventID
	defer ts.endVideoCall(t, call)
	alice := ts.joinVideo(t, call, "alice", true, client.DefaultVideoBitrate, false)
	bob := ts.joinVideo(t, call, "bob", false, 0, false)
	if err := bob.Subscribe([]client.VideoSubscription{{ParticipantID: "alice", MaxHeight: 180}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "bob on h", func() bool { r, _ := receivedVideo(bob, "alice"); return r.Height == 180 })
	rate := func(rid string) float64 {
		b0 := sentLayer(alice, rid).Bytes
		time.Sleep(time.Second)
		return float64(sentLayer(alice, rid).Bytes-b0) * 8
	}
	waitFor(t, 10*time.Second, "alice told to stop f", func() bool { return !sentLayer(alice, "f").Active })
	f, h := rate("f"), rate("h")
	t.Logf("after the layers message: f %.0f b/s, h %.0f b/s", f, h)
	if f > 10_000 || h < 200_000 {
		t.Errorf("f %.0f b/s (want ~0), h %.0f b/s (want ~500k)", f, h)
	}
	if alice.LayerMessages() == 0 {
		t.Error("no layers message counted")
	}
	if err := bob.Subscribe([]client.VideoSubscription{{ParticipantID: "alice"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "f back for bob", func() bool { r, _ := receivedVideo(bob, "alice"); return r.Height == 360 })
	if f := rate("f"); f < 1_000_000 {
		t.Errorf("f at %.0f b/s once wanted again", f)
	}
}

// A 12-person call where one receiver shows 4 videos: it receives exactly
// those 4 streams, and after it changes its subscription the new 4 within
// 2 s (and the old ones stop).
func TestTwelvePeopleFourTiles(t *testing.T) {
	defer goleak.VerifyNone(t, goleakOpts...)
	ts := startServer(t, 44140, func(r *roommgr.Config, _ *signaling.Config) { r.MaxParticipants = 12 })
	call := ts.createCall(t).State.EventID
	defer ts.endVideoCall(t, call)
	viewer := ts.joinVideo(t, call, "viewer", false, 0, false)
	if err := viewer.Subscribe(tiles("p00", "p01", "p02", "p03")); err != nil {
		t.Fatal(err)
	}
	var pubs []*client.Client
	for i := range 11 {
		// Low rates: 11 publishers of three layers each on one machine.
		c := ts.joinVideo(t, call, fmt.Sprintf("p%02d", i), true, 300_000, false)
		if err := c.Subscribe(nil); err != nil { // the others show no video
			t.Fatal(err)
		}
		pubs = append(pubs, c)
	}
	_ = pubs
	waitFor(t, 10*time.Second, "the first 4 tiles", func() bool {
		return slices.Equal(videoFrom(viewer, 500*time.Millisecond), []string{"p00", "p01", "p02", "p03"})
	})
	for range 3 { // and only those, for a while
		if got := videoFrom(viewer, time.Second); !slices.Equal(got, []string{"p00", "p01", "p02", "p03"}) {
			t.Fatalf("viewer receives video from %v, want the 4 tiles", got)
		}
	}
	if err := viewer.Subscribe(tiles("p07", "p08", "p09", "p10")); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	before := map[string]uint64{}
	for _, id := range []string{"p07", "p08", "p09", "p10"} {
		r, _ := receivedVideo(viewer, id)
		before[id] = r.Frames
	}
	took := waitFor(t, 2*time.Second, "the new 4 tiles", func() bool {
		for id, n := range before {
			if r, _ := receivedVideo(viewer, id); r.Frames <= n || r.FramesDecryptFailed > 0 {
				return false
			}
		}
		return true
	})
	t.Logf("new tiles decoding %v after the subscription changed", took.Round(10*time.Millisecond))
	if got := videoFrom(viewer, time.Second); !slices.Equal(got, []string{"p07", "p08", "p09", "p10"}) {
		t.Errorf("%v after the change: video from %v, want the new 4", time.Since(changed).Round(time.Millisecond), got)
	}
}

func tiles(ids ...string) []client.VideoSubscription {
	var out []client.VideoSubscription
	for _, id := range ids {
		out = append(out, client.VideoSubscription{ParticipantID: id, MaxHeight: 360})
	}
	return out
}

// videoFrom lists, sorted, the participants whose video c received packets
// of during the next window.
func videoFrom(c *client.Client, window time.Duration) []string {
	count := func() map[string]uint64 {
		m := map[string]uint64{}
		for _, r := range c.Stats().Received {
			if r.Kind == "video" {
				m[r.ParticipantID] += r.Packets
			}
		}
		return m
	}
	a := count()
	time.Sleep(window)
	var out []string
	for id, n := range count() {
		if n > a[id] {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// A bad `subscription` gets bad_message and changes nothing; before join
// it is not_joined.
func TestSubscriptionBadInput(t *testing.T) {
	defer goleak.VerifyNone(t, goleakOpts...)
	ts := startServer(t, 44160)
	call := ts.createCall(t).State.EventID
	c := dialWS(t, ts)
	send(t, c, `{"type":"subscription","video":[]}`)
	expectError(t, c, "not_joined")
	send(t, c, joinMsg(ts.token(t, call, "alice")))
	next(t, c, "joined")
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf(`{"participantId":"p%d"}`, i)
	}
	for _, bad := range []string{
		`{"type":"subscription","video":"bob"}`,
		`{"type":"subscription","video":[{"participantId":"bob","maxHeight":-1}]}`,
		`{"type":"subscription","video":[{"participantId":"bob","maxHeight":99999}]}`,
		`{"type":"subscription","video":[{"maxHeight":180}]}`,
		`{"type":"subscription","video":[{"participantId":"` + strings.Repeat("x", 65) + `"}]}`,
		`{"type":"subscription","video":[` + strings.Join(many, ",") + `]}`,
	} {
		send(t, c, bad)
		if m := expectError(t, c, "bad_message"); !strings.Contains(m.Message, "subscription") {
			t.Errorf("%.60s: error %q does not say what is wrong", bad, m.Message)
		}
	}
	for _, good := range []string{
		`{"type":"subscription","video":[{"participantId":"bob","maxHeight":180,"pinned":true}]}`,
		`{"type":"subscription","video":null}`,
		`{"type":"subscription"}`,
		`{"type":"subscription","video":[]}`,
	} {
		send(t, c, good)
	}
	send(t, c, `{"type":"ping","id":7}`)
	if m := next(t, c, "pong", "error"); m.Type != "pong" {
		t.Fatalf("a valid subscription was refused: %+v", m)
	}
	c.Close()
	_ = ts.apiClient.EndCall(context.Background(), call)
}

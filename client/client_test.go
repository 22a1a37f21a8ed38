package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// leakOptions: goroutines that outlive a client for reasons outside it.
// The HTTP keep-alive loops belong to the httptest server's client side.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreCurrent(),
	}
}

func testConfig(t *testing.T, f *fakeServer, id string) Config {
	return Config{
		SignalingURL:  f.URL(),
		Token:         id, // the fake server uses the token as participant id
		TLSConfig:     &tls.Config{InsecureSkipVerify: true},
		ParticipantID: id,
		PublishAudio:  true,
		PublishVideo:  true,
		VideoBitrate:  500_000, // keep the 2-core test machine relaxed
		Logger:        zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestEchoCall joins the fake server, which echoes both published tracks
// back, and checks transports, media, stats and a clean Close.
func TestEchoCall(t *testing.T) {
	opts := leakOptions()
	defer goleak.VerifyNone(t, opts...)
	f := newFakeServer(t, fakeOptions{})
	defer f.Close()

	ctx := ctxFor(t, 20*time.Second)
	c, err := Join(ctx, testConfig(t, f, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.CallID() != "fakecall" || c.ParticipantID() != "alice" {
		t.Fatalf("call %q participant %q", c.CallID(), c.ParticipantID())
	}
	for _, tr := range []string{TransportPublish, TransportSubscribe} {
		if err := c.WaitConnected(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitForMedia(ctx, []string{echoParticipant}, []string{KindAudio, KindVideo}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // let counters, jitter and RTT accumulate

	s := c.Stats()
	if s.JoinDuration <= 0 || s.Publish.ConnectedAfter < s.JoinDuration || s.Subscribe.ConnectedAfter <= 0 {
		t.Errorf("timings: join %v publish %v subscribe %v", s.JoinDuration, s.Publish.ConnectedAfter, s.Subscribe.ConnectedAfter)
	}
	for name, ts := range map[string]TransportStats{"publish": s.Publish, "subscribe": s.Subscribe} {
		if ts.State != "connected" || ts.Pair == nil {
			t.Fatalf("%s: state %s pair %+v", name, ts.State, ts.Pair)
		}
		if ts.Pair.LocalProtocol != "udp" || ts.Pair.RemoteType != "host" || ts.Pair.LocalType != "host" {
			t.Errorf("%s: pair %+v", name, *ts.Pair)
		}
		if ts.RTT <= 0 || ts.RTT > time.Second {
			t.Errorf("%s: RTT %v", name, ts.RTT)
		}
	}

	if len(s.Sent) != 2 {
		t.Fatalf("sent tracks: %+v", s.Sent)
	}
	for _, st := range s.Sent {
		if st.Packets == 0 || st.Bytes == 0 || st.Frames == 0 || st.SSRC == 0 {
			t.Errorf("sent %+v", st)
		}
		if st.TrackID != "alice-"+st.Kind {
			t.Errorf("sent track id %q", st.TrackID)
		}
	}

	if len(s.Received) != 2 {
		t.Fatalf("received tracks: %+v", s.Received)
	}
	for _, r := range s.Received {
		if r.ParticipantID != echoParticipant || r.TrackID != "alice-"+r.Kind {
			t.Errorf("received %s/%s", r.ParticipantID, r.TrackID)
		}
		if r.Packets == 0 || r.Bytes == 0 || r.Frames == 0 || r.FirstPacketAt.IsZero() {
			t.Errorf("received %+v", r)
		}
		if r.PacketsLost != 0 || r.LossFraction != 0 {
			t.Errorf("%s: lost %d (%.3f)", r.Kind, r.PacketsLost, r.LossFraction)
		}
		if r.MarkedFrames == 0 || r.LatencyMean <= 0 || r.LatencyMean > 500*time.Millisecond || r.LatencyLast <= 0 {
			t.Errorf("%s: marker latency mean %v last %v over %d frames", r.Kind, r.LatencyMean, r.LatencyLast, r.MarkedFrames)
		}
		if r.Jitter > 50*time.Millisecond {
			t.Errorf("%s: jitter %v", r.Kind, r.Jitter)
		}
		if r.Kind == KindVideo && (r.KeyFrames == 0 || r.Codec != "video/VP8") {
			t.Errorf("video: %d key frames, codec %s", r.KeyFrames, r.Codec)
		}
	}
	t.Logf("stats: %+v", s)

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.Close() // idempotent
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err after Close: %v", c.Err())
	}
	if st := c.Stats(); st.Publish.State != "closed" {
		t.Errorf("state after close %s", st.Publish.State)
	}
	waitFor(t, func() bool { return slices.Contains(f.received(), "leave") }, "leave message")
}

// TestKeyFrameRequest: a PLI from the receiver travels through the fake
// SFU to the publisher, which answers with a key frame.
func TestKeyFrameRequest(t *testing.T) {
	f := newFakeServer(t, fakeOptions{})
	defer f.Close()
	ctx := ctxFor(t, 20*time.Second)
	cfg := testConfig(t, f, "bob")
	cfg.PublishAudio = false
	cfg.KeyframeInterval = time.Hour // only the first key frame is periodic
	c, err := Join(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitForMedia(ctx, []string{echoParticipant}, []string{KindVideo}); err != nil {
		t.Fatal(err)
	}
	if err := c.RequestKeyFrame(echoParticipant, "bob-video"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		s := c.Stats()
		return s.Sent[0].PLIs > 0 && s.Sent[0].KeyFrames >= 2 && s.Received[0].KeyFrames >= 2
	}, "a second key frame after the PLI")
	if err := c.RequestKeyFrame(echoParticipant, "nope"); err == nil {
		t.Error("RequestKeyFrame for an unknown track succeeded")
	}
}

// TestSignalingEvents: roster updates, ping/pong and mute.
func TestSignalingEvents(t *testing.T) {
	f := newFakeServer(t, fakeOptions{})
	defer f.Close()
	ctx := ctxFor(t, 20*time.Second)
	c, err := Join(ctx, testConfig(t, f, "carol"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	muted := true
	f.broadcast(message{Type: "participantJoined", Participant: &Participant{ID: "dave"}})
	f.broadcast(message{Type: "participantJoined", Participant: &Participant{ID: "erin"}})
	f.broadcast(message{Type: "trackPublished", ParticipantID: "dave", Track: &TrackInfo{ID: "d-audio", Kind: KindAudio}})
	f.broadcast(message{Type: "trackPublished", ParticipantID: "dave", Track: &TrackInfo{ID: "d-video", Kind: KindVideo}})
	f.broadcast(message{Type: "mute", ParticipantID: "dave", TrackID: "d-audio", Muted: &muted})
	f.broadcast(message{Type: "trackUnpublished", ParticipantID: "dave", TrackID: "d-video"})
	f.broadcast(message{Type: "participantLeft", ParticipantID: "erin"})
	// The pong comes after the events, and the client handles messages in
	// order, so the roster is up to date when Ping returns.
	rtt, err := c.Ping(ctx)
	if err != nil || rtt <= 0 {
		t.Fatalf("ping: %v %v", rtt, err)
	}
	got := jsonOf(c.Stats().RemoteParticipants)
	want := `[{"id":"dave","tracks":[{"id":"d-audio","kind":"audio","muted":true}]}]`
	if got != want {
		t.Errorf("participants\n got %s\nwant %s", got, want)
	}

	if err := c.SetMuted(KindAudio, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	var mute *message
	for i := range f.msgs {
		if f.msgs[i].Type == "mute" {
			mute = &f.msgs[i]
		}
	}
	f.mu.Unlock()
	if mute == nil || mute.TrackID != "carol-audio" || mute.Muted == nil || !*mute.Muted {
		t.Errorf("mute message %+v", mute)
	}
	f.wsPing()
	waitFor(t, func() bool { return f.pongs.Load() > 0 }, "a WebSocket pong")

	if err := c.SetMuted("screen", true); err == nil {
		t.Error("SetMuted of an unpublished kind succeeded")
	}
}

// xorTransform stands in for E2EE: it flips every byte after the clear
// prefix, and refuses to decrypt audio.
type xorTransform struct{}

func (xorTransform) Encrypt(kind string, frame []byte) []byte {
	out := slices.Clone(frame)
	for i := clearPrefixLen(kind, frame); i < len(out); i++ {
		out[i] ^= 0x5a
	}
	return out
}

func (x xorTransform) Decrypt(kind string, frame []byte) ([]byte, error) {
	if kind == KindAudio {
		return nil, errors.New("no key")
	}
	return x.Encrypt(kind, frame), nil
}

// TestFrameTransform: frames are transformed before sending and after
// depacketization; the marker is only readable after Decrypt, and failures
// are counted.
func TestFrameTransform(t *testing.T) {
	f := newFakeServer(t, fakeOptions{})
	defer f.Close()
	ctx := ctxFor(t, 20*time.Second)
	cfg := testConfig(t, f, "judy")
	cfg.Transform = xorTransform{}
	c, err := Join(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitForMedia(ctx, []string{echoParticipant}, []string{KindAudio, KindVideo}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		for _, r := range c.Stats().Received {
			if r.Frames < 5 {
				return false
			}
		}
		return true
	}, "frames")
	for _, r := range c.Stats().Received {
		switch r.Kind {
		case KindAudio:
			if r.FramesDecryptFailed != r.Frames || r.MarkedFrames != 0 {
				t.Errorf("audio: %d frames, %d failed, %d marked", r.Frames, r.FramesDecryptFailed, r.MarkedFrames)
			}
		case KindVideo:
			if r.FramesDecryptFailed != 0 || r.MarkedFrames != r.Frames || r.KeyFrames == 0 {
				t.Errorf("video: %d frames, %d failed, %d marked, %d key", r.Frames, r.FramesDecryptFailed, r.MarkedFrames, r.KeyFrames)
			}
		}
	}
}

// TestServerDropsSocket: the server closes the socket; Done fires and Err
// says the connection was lost.
func TestServerDropsSocket(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	f := newFakeServer(t, fakeOptions{closeAfterJoin: true})
	defer f.Close()
	cfg := testConfig(t, f, "hank")
	cfg.PublishAudio, cfg.PublishVideo = false, false // Join returns at `joined`
	c, err := Join(ctxFor(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done did not fire")
	}
	if !errors.Is(c.Err(), ErrConnectionLost) {
		t.Errorf("Err %v", c.Err())
	}

	// Publishing: the socket drops while Join waits for the publish answer.
	cfg.PublishAudio = true
	if c2, err := Join(ctxFor(t, 10*time.Second), cfg); err == nil {
		c2.Close()
		t.Error("Join succeeded without a publish answer")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no url", Config{Token: "t"}, "SignalingURL"},
		{"bad scheme", Config{SignalingURL: "https://x/v1/rtc", Token: "t"}, "scheme"},
		{"no host", Config{SignalingURL: "wss:///v1/rtc", Token: "t"}, "host"},
		{"no token", Config{SignalingURL: "wss://x/v1/rtc"}, "Token"},
		{"fps", Config{SignalingURL: "wss://x/v1/rtc", Token: "t", VideoFPS: 500}, "VideoFPS"},
		{"bitrate", Config{SignalingURL: "wss://x/v1/rtc", Token: "t", VideoBitrate: 1000}, "VideoBitrate"},
		{"keyframes", Config{SignalingURL: "wss://x/v1/rtc", Token: "t", KeyframeInterval: -time.Second}, "KeyframeInterval"},
	} {
		err := tc.cfg.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	cfg := Config{SignalingURL: "wss://x/v1/rtc", Token: "t"}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.VideoBitrate != DefaultVideoBitrate || cfg.VideoFPS != DefaultVideoFPS ||
		cfg.KeyframeInterval != DefaultKeyframeInterval || cfg.JoinTimeout != DefaultJoinTimeout || cfg.Logger == nil {
		t.Errorf("defaults: %+v", cfg)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

package signaling_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/internal/netnstest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// A real bottleneck (the acceptance test of simulcast and bandwidth
// estimation): the server and two clients in one network namespace, a third
// client in another behind a veth pair whose server end is limited with a
// token bucket (tc tbf, 600 kbit/s: the kernel has no netem). alice
// publishes three layers (150 k, 500 k, 1.5 Mb/s) and audio; carol, on the
// server's side, receives everything; thin, behind the limit, must settle
// on the low layer within 10 s, decode it continuously with little loss,
// and be back on the full layer within 15 s once the limit is lifted.

const thinRate = "600kbit"

// joinNS joins a client whose signaling and media sockets are in ns.
func (w *nsWorld) joinNS(t *testing.T, ns *netnstest.NS, call, id string, cfg client.Config) *client.Client {
	t.Helper()
	n, err := ns.Net()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg.SignalingURL, cfg.Token, cfg.ParticipantID = w.ts.wsURL, w.ts.token(t, call, id), id
	cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	cfg.UDPOnly, cfg.NetDialContext, cfg.ICENet = true, ns.DialContext, n
	cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named(id)
	c, err := client.Join(ctx, cfg)
	if err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// window measures what c received of from's video between two samples.
type window struct {
	c             *client.Client
	from          string
	start         client.ReceivedTrackStats
	lastFrames    uint64
	lastFrameAt   time.Time
	longestFreeze time.Duration
}

func newWindow(c *client.Client, from string) *window {
	r, _ := receivedVideo(c, from)
	return &window{c: c, from: from, start: r, lastFrames: r.MarkedFrames, lastFrameAt: time.Now()}
}

// poll notes decoded frames (the marker is read after decryption, so a
// marked frame is one the receiver could use).
func (w *window) poll() {
	r, _ := receivedVideo(w.c, w.from)
	now := time.Now()
	if r.MarkedFrames > w.lastFrames {
		w.lastFrames, w.lastFrameAt = r.MarkedFrames, now
	}
	w.longestFreeze = max(w.longestFreeze, now.Sub(w.lastFrameAt))
}

// loss is the fraction of the window's packets that never arrived
// (duplicates — retransmissions, probes — do not hide losses).
func (w *window) loss() (lost, expected int64) {
	r, _ := receivedVideo(w.c, w.from)
	lost = r.PacketsLost + int64(r.Duplicates) - w.start.PacketsLost - int64(w.start.Duplicates)
	expected = int64(r.Packets) + r.PacketsLost - int64(w.start.Packets) - w.start.PacketsLost
	return lost, expected
}

func TestBottleneckSubscriberGetsLowLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs about 40 s of media")
	}
	w := newNSWorld(t, 27400)
	call := w.ts.createCall(t).State.EventID
	defer w.ts.apiClient.EndCall(context.Background(), call) //nolint:errcheck
	// The limit is on the server's end of the link: what the server sends
	// toward thin (media and signaling) passes a 600 kbit/s bucket with a
	// 1600-byte burst and at most 400 ms of queue.
	w.srv.Run(t, "tc", "qdisc", "add", "dev", "v-srv", "root", "tbf", "rate", thinRate, "burst", "1600", "latency", "400ms")

	w.joinNS(t, w.srv, call, "alice", client.Config{PublishAudio: true, PublishVideo: true, Simulcast: true})
	carol := w.joinNS(t, w.srv, call, "carol", client.Config{})
	thin := w.joinNS(t, w.alice, call, "thin", client.Config{})
	joined := time.Now()

	// Within 10 s: thin on the low layer (90 lines), carol on the full one.
	took := waitFor(t, 10*time.Second, "thin on the low layer", func() bool {
		r, _ := receivedVideo(thin, "alice")
		return r.Height == 90 && r.MarkedFrames > 0
	})
	t.Logf("thin on q %v after joining", time.Since(joined).Round(10*time.Millisecond))
	waitFor(t, 10*time.Second-took, "carol on the full layer", func() bool {
		r, _ := receivedVideo(carol, "alice")
		return r.Height == 360
	})
	// Settled: 15 s on q, decoding all along, under 2% loss.
	time.Sleep(2 * time.Second)
	win := newWindow(thin, "alice")
	end := time.Now().Add(15 * time.Second)
	heights := map[int]int{}
	for time.Now().Before(end) {
		time.Sleep(100 * time.Millisecond)
		win.poll()
		r, _ := receivedVideo(thin, "alice")
		heights[r.Height]++
	}
	lost, expected := win.loss()
	r, _ := receivedVideo(thin, "alice")
	t.Logf("thin over 15 s: %d of %d packets lost (%.2f%%), longest pause between decoded frames %v, picture heights seen %v; %d duplicates in all",
		lost, expected, 100*float64(lost)/float64(max(expected, 1)), win.longestFreeze.Round(10*time.Millisecond), heights, r.Duplicates)
	if expected < 300 {
		t.Errorf("only %d packets expected in 15 s", expected)
	}
	if float64(lost) >= 0.02*float64(expected) {
		t.Errorf("thin lost %d of %d packets, want < 2%%", lost, expected)
	}
	if win.longestFreeze > time.Second {
		t.Errorf("thin's video froze for %v", win.longestFreeze)
	}
	if len(heights) != 1 || heights[90] == 0 {
		t.Errorf("thin's picture height changed while settled: %v", heights)
	}
	if cr, _ := receivedVideo(carol, "alice"); cr.Height != 360 {
		t.Errorf("carol at %d lines, want the full layer", cr.Height)
	}

	// The limit lifts: thin back on the full layer within 15 s.
	w.srv.Run(t, "tc", "qdisc", "del", "dev", "v-srv", "root")
	lifted := time.Now()
	waitFor(t, 15*time.Second, "thin back on the full layer", func() bool {
		r, _ := receivedVideo(thin, "alice")
		return r.Height == 360
	})
	t.Logf("thin on f %v after the limit was lifted", time.Since(lifted).Round(10*time.Millisecond))
}

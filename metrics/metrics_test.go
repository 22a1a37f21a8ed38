package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

func newTestMetrics(t *testing.T) *Metrics {
	t.Helper()
	m, err := New(Config{Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestObserverCountsByKindAndReason(t *testing.T) {
	m := newTestMetrics(t)
	m.PacketsIn(webrtc.RTPCodecTypeAudio, 1, 100)
	m.PacketsIn(webrtc.RTPCodecTypeVideo, 1, 1200)
	m.PacketsIn(webrtc.RTPCodecTypeVideo, 1, 1000)
	m.PacketsOut(webrtc.RTPCodecTypeVideo, 1, 1000, 300*time.Microsecond)
	m.PacketDropped("queue_full")
	m.PacketDropped("something new")
	m.NACK(true)
	m.NACK(false)
	m.NACK(false)
	m.PLI()
	m.APIRequest("POST /v1/calls", 201)
	m.APIRequest("unmatched", 401)
	m.APIRequest("unmatched", 418)

	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.packetsIn[1]), 1, "audio packets in"},
		{testutil.ToFloat64(m.packetsIn[2]), 2, "video packets in"},
		{testutil.ToFloat64(m.bytesIn[2]), 2200, "video bytes in"},
		{testutil.ToFloat64(m.packetsOut[2]), 1, "video packets out"},
		{testutil.ToFloat64(m.bytesOut[2]), 1000, "video bytes out"},
		{testutil.ToFloat64(m.dropped[2]), 1, "queue_full drops"},
		{testutil.ToFloat64(m.dropped[len(dropReasons)-1]), 1, "other drops"},
		{testutil.ToFloat64(m.nackRetransmitted), 1, "NACKs answered"},
		{testutil.ToFloat64(m.nackMissed), 2, "NACKs missed"},
		{testutil.ToFloat64(m.plis), 1, "PLIs"},
		{testutil.ToFloat64(m.apiRequests.WithLabelValues("POST /v1/calls", "201")), 1, "API 201"},
		{testutil.ToFloat64(m.apiRequests.WithLabelValues("unmatched", "418")), 1, "API 418"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	// The histogram puts 300 µs in the ≤ 500 µs bucket and not in ≤ 250 µs.
	exp := `
# HELP orville_forwarding_latency_seconds Time from the socket read of a publisher's packet to the sendmmsg of its batch toward subscribers (one observation per batch).
# TYPE orville_forwarding_latency_seconds histogram
`
	var b strings.Builder
	b.WriteString(exp)
	for _, kind := range []string{"audio", "other", "video"} {
		n := 0
		if kind == "video" {
			n = 1
		}
		for _, le := range []string{"1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025"} {
			b.WriteString(`orville_forwarding_latency_seconds_bucket{kind="` + kind + `",le="` + le + `"} 0` + "\n")
		}
		for _, le := range []string{"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.1", "+Inf"} {
			b.WriteString(`orville_forwarding_latency_seconds_bucket{kind="` + kind + `",le="` + le + `"} ` + string(rune('0'+n)) + "\n")
		}
		sum := "0"
		if n == 1 {
			sum = "0.0003"
		}
		b.WriteString(`orville_forwarding_latency_seconds_sum{kind="` + kind + `"} ` + sum + "\n")
		b.WriteString(`orville_forwarding_latency_seconds_count{kind="` + kind + `"} ` + string(rune('0'+n)) + "\n")
	}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(b.String()), "orville_forwarding_latency_seconds"); err != nil {
		t.Error(err)
	}
}

// The Observer runs once or more per forwarded packet: it must not allocate.
func TestObserverDoesNotAllocate(t *testing.T) {
	m := newTestMetrics(t)
	allocs := testing.AllocsPerRun(1000, func() {
		m.PacketsIn(webrtc.RTPCodecTypeAudio, 1, 120)
		m.PacketsOut(webrtc.RTPCodecTypeAudio, 1, 120, 40*time.Microsecond)
		m.PacketsOut(webrtc.RTPCodecTypeVideo, 1, 1200, 2*time.Millisecond)
		m.PacketDropped("evicted")
		m.NACK(true)
		m.PLI()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet, want 0", allocs)
	}
}

func TestConfigAndClose(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("no logger accepted")
	}
	if _, err := New(Config{Logger: zap.NewNop(), LatencyBuckets: []float64{1, 0.5}}); err == nil {
		t.Fatal("decreasing buckets accepted")
	}
	m := newTestMetrics(t)
	if err := m.WatchRooms(nil); err == nil {
		t.Fatal("nil room manager accepted")
	}
	m.Close()
	m.Close()
	if err := m.WatchRooms(nil); err == nil {
		t.Fatal("WatchRooms after Close accepted")
	}
	// Two instances do not collide: each has its own registry.
	a, b := newTestMetrics(t), newTestMetrics(t)
	a.PLI()
	if testutil.ToFloat64(b.plis) != 0 {
		t.Fatal("metrics instances share counters")
	}
	for code, want := range map[int]string{200: "200", 502: "502", 429: "429", 42: "other"} {
		if got := statusCode(code); got != want {
			t.Errorf("statusCode(%d) = %q, want %q", code, got, want)
		}
	}
}

func BenchmarkObserverPerPacket(b *testing.B) {
	m, _ := New(Config{Logger: zap.NewNop()})
	b.ReportAllocs()
	for b.Loop() {
		m.PacketsIn(webrtc.RTPCodecTypeAudio, 1, 120)
		m.PacketsOut(webrtc.RTPCodecTypeAudio, 1, 120, 40*time.Microsecond)
	}
}

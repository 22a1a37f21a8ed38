package loadtest

import (
	"bytes"
	"errors"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(100 - i) // 100 … 1, unsorted on purpose
	}
	d := distOf(v)
	if d.N != 100 || d.P50 != 50 || d.P95 != 95 || d.P99 != 99 || d.Max != 100 {
		t.Fatalf("%+v", d)
	}
	if v[0] != 100 {
		t.Fatal("distOf sorted its input in place")
	}
	if d := distOf(nil); d != (Dist{}) {
		t.Fatalf("empty: %+v", d)
	}
	if d := distOf([]float64{7}); d.P50 != 7 || d.P99 != 7 {
		t.Fatalf("one value: %+v", d)
	}
}

func TestReadProc(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "4242")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The command name holds a space and a parenthesis, as comm may.
	stat := "4242 (orville (x) y) S 1 4242 4242 0 -1 4194560 5000 0 0 0 250 130 0 0 20 0 12 0 100 0 0"
	status := "Name:\torville\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n"
	_ = os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644)
	p, err := readProc(root, 4242)
	if err != nil {
		t.Fatal(err)
	}
	if p.cpu != 3800*time.Millisecond || p.sys != 1300*time.Millisecond || p.rss != 40<<20 || p.peakRSS != 50<<20 {
		t.Fatalf("%+v", p)
	}
	if _, err := readProc(root, 1); err == nil {
		t.Fatal("missing process accepted")
	}
	_ = os.WriteFile(filepath.Join(dir, "stat"), []byte("4242 (x) S 1"), 0o644)
	if _, err := readProc(root, 4242); err == nil {
		t.Fatal("truncated stat accepted")
	}
	// This very process can be read from the real /proc.
	if p, err := readProc("/proc", os.Getpid()); err != nil || p.rss == 0 || p.peakRSS < p.rss {
		t.Fatalf("own process: %+v, %v", p, err)
	}
}

func TestSumCounter(t *testing.T) {
	text := `# HELP orville_packets_out_total RTP packets forwarded.
# TYPE orville_packets_out_total counter
orville_packets_out_total{kind="audio"} 1200
orville_packets_out_total{kind="video"} 3.4e+03
orville_packets_out_totally_different 99
orville_packets_in_total{kind="audio"} 7
`
	n, err := sumCounter(strings.NewReader(text), forwardedMetric)
	if err != nil || n != 4600 {
		t.Fatalf("%d, %v", n, err)
	}
	if _, err := sumCounter(strings.NewReader("other 1\n"), forwardedMetric); err == nil {
		t.Fatal("missing metric accepted")
	}
	if _, err := sumCounter(strings.NewReader(forwardedMetric+" x\n"), forwardedMetric); err == nil {
		t.Fatal("garbage value accepted")
	}
}

func TestConfigValidation(t *testing.T) {
	good := Config{APIURL: "https://127.0.0.1:8444", APISecret: "s", Calls: 1, Participants: 3,
		AudioPublishers: 3, Duration: time.Second}
	for name, mod := range map[string]func(*Config){
		"no api":           func(c *Config) { c.APIURL = "" },
		"not a URL":        func(c *Config) { c.APIURL = "127.0.0.1:8444" },
		"no secret":        func(c *Config) { c.APISecret = "" },
		"no calls":         func(c *Config) { c.Calls = 0 },
		"too many":         func(c *Config) { c.Calls, c.Participants = 100, 50 },
		"publishers > all": func(c *Config) { c.VideoPublishers = 4 },
		"nobody publishes": func(c *Config) { c.AudioPublishers = 0 },
		"no duration":      func(c *Config) { c.Duration = 0 },
		"negative pid":     func(c *Config) { c.ServerPID = -1 },
		"negative audio":   func(c *Config) { c.AudioPublishers = -1; c.VideoPublishers = 1 },
	} {
		c := good
		mod(&c)
		if _, err := Run(t.Context(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	c := good
	if err := c.validate(); err != nil || c.SampleInterval <= 0 || c.ProcRoot != "/proc" || c.VideoBitrate <= 0 {
		t.Fatalf("defaults: %v %+v", err, c)
	}
}

func sampleReport() *Report {
	n := uint64(9000)
	r := &Report{Scenario: Scenario{Calls: 1, Participants: 3, AudioPublishers: 3, VideoPublishers: 1, DurationSeconds: 5},
		JoinPhaseSeconds: 1, Joined: 3, JoinTimeMs: Dist{N: 3, P50: 150, P95: 180, P99: 180, Max: 180},
		Forwarded: ForwardedReport{ReceivedByClients: 9000, ServerCounter: &n, MediaWindow: 8000},
		Server:    &ServerReport{PID: 1, CPUSeconds: 1, CPUMicrosPerPacket: 12.5, PeakRSSBytes: 30 << 20}}
	for i := range 7 {
		r.Timeline = append(r.Timeline, Point{Seconds: float64(i), RxMbps: float64(i), LossPercent: 0.5 * float64(i%2),
			ServerCPUPercent: 10 * float64(i)})
	}
	return r
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	sampleReport().WriteText(&b)
	for _, want := range []string{"join time", "p50 150 ms", "loss", "jitter", "latency", "forwarded", "server counter 9000",
		"12.50 µs per forwarded packet", "peak RSS 30.0 MB"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
	r := sampleReport()
	r.Server, r.Forwarded.ServerCounter, r.Forwarded.ServerError = nil, nil, "HTTP 401"
	b.Reset()
	r.WriteText(&b)
	if !strings.Contains(b.String(), "not measured") || !strings.Contains(b.String(), "unavailable: HTTP 401") {
		t.Errorf("missing server figures not explained:\n%s", b.String())
	}
}

func TestPlot(t *testing.T) {
	img := renderPlot(sampleReport())
	// Each series' colour appears: the lines were drawn.
	found := map[color.RGBA]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			found[img.RGBAAt(x, y)] = true
		}
	}
	for _, c := range []color.RGBA{{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, colText} {
		if !found[c] {
			t.Errorf("colour %v not drawn", c)
		}
	}
	path := filepath.Join(t.TempDir(), "p.png")
	if err := WritePlot(path, sampleReport()); err != nil {
		t.Fatal(err)
	}
	if err := WritePlot(filepath.Join(t.TempDir(), "no", "such", "dir.png"), sampleReport()); err == nil {
		t.Fatal("unwritable path accepted")
	}
	for _, c := range []struct{ in, want float64 }{{0, 1}, {0.3, 0.5}, {7, 10}, {10, 10}, {101, 200}} {
		if got := niceCeil(c.in); got != c.want {
			t.Errorf("niceCeil(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestHistogramQuantile(t *testing.T) {
	scrape := func(audio, video [4]int) []bucket {
		var b strings.Builder
		for i, le := range []string{"0.0001", "0.0005", "0.001", "+Inf"} {
			b.WriteString(latencyMetric + `{kind="audio",le="` + le + `"} ` + strconv.Itoa(audio[i]) + "\n")
			b.WriteString(latencyMetric + `{kind="video",le="` + le + `"} ` + strconv.Itoa(video[i]) + "\n")
		}
		bs, err := histogramBuckets(strings.NewReader(b.String()), latencyMetric)
		if err != nil {
			t.Fatal(err)
		}
		return bs
	}
	start := scrape([4]int{10, 10, 10, 10}, [4]int{0, 0, 0, 0})
	// Between the scrapes: 50 observations ≤ 100 µs, 40 in (100, 500] µs,
	// 9 in (0.5, 1] ms, 1 above 1 ms.
	end := scrape([4]int{40, 60, 69, 70}, [4]int{20, 40, 40, 40})
	if len(end) != 4 || !math.IsInf(end[3].le, 1) {
		t.Fatalf("buckets %+v", end)
	}
	for _, c := range []struct{ q, want float64 }{{.5, 100e-6}, {.7, 300e-6}, {.99, 1e-3}, {.999, 1e-3}} {
		got, ok := histogramQuantile(c.q, start, end)
		if !ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("q%.3f = %v (%v), want %v", c.q, got, ok, c.want)
		}
	}
	if _, ok := histogramQuantile(.5, end, end); ok {
		t.Error("a quantile without observations")
	}
	if _, err := histogramBuckets(strings.NewReader(latencyMetric+`{le="x"} 1`+"\n"), latencyMetric); err == nil {
		t.Error("a bad bound was accepted")
	}
}

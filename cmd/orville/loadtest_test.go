package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// childPID finds the process this test started whose command line holds
// marker (devServer does not hand out its *exec.Cmd).
func childPID(t *testing.T, marker string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		if bytes.Contains(cmdline, []byte(marker)) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	t.Fatalf("no child process with %q in its command line", marker)
	return 0
}

// The acceptance scenario, shortened for CI: `orville loadtest` against
// `orville serve --dev` on loopback finishes with 0% loss and its JSON
// report holds every field, server figures included.
func TestLoadtestAgainstServeDev(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	api, secret := devServer(t, bin, 47100)
	pid := childPID(t, "47100")
	plot := filepath.Join(t.TempDir(), "run.png")

	var stdout, stderr bytes.Buffer
	code := run([]string{"loadtest", "--api", api, "--insecure", "--calls", "1", "--participants", "3",
		"--audio-publishers", "3", "--video-publishers", "1", "--duration", "3s",
		"--server-pid", fmt.Sprint(pid), "--json", "--plot", plot},
		&stdout, &stderr, func(k string) string {
			if k == "ORVILLE_API_SECRET" {
				return secret
			}
			return ""
		})
	if code != exitOK {
		t.Fatalf("loadtest exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "3/3s") {
		t.Errorf("no progress bar on stderr: %q", stderr.String())
	}

	var generic map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &generic); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	for _, path := range []string{
		"scenario.calls", "scenario.participants", "scenario.audioPublishers", "scenario.videoPublishers",
		"scenario.durationSeconds", "participantsJoined", "joinFailures", "joinPhaseSeconds", "mediaSeconds",
		"joinTimeMs.p50", "joinTimeMs.p95", "joinTimeMs.p99", "joinTimeMs.max",
		"joinStagesMs.joined.p50", "joinStagesMs.publishConnected.p50", "joinStagesMs.subscribeConnected.p50",
		"serverForwardingLatencyMs.p50", "serverForwardingLatencyMs.p99",
		"loss.totalPercent", "loss.packetsLost", "loss.packetsExpected", "loss.perSubscriberPercent.max", "loss.worstSubscriber",
		"jitterMs.audio.p50", "jitterMs.audio.max", "jitterMs.video.p50", "jitterMs.video.max", "jitterMs.worstSubscriber",
		"latencyMs.p50", "latencyMs.p99", "latencyMs.max", "latencyMs.mean", "latencyMs.samples",
		"packetsForwarded.receivedByClients", "packetsForwarded.serverCounter", "packetsForwarded.mediaWindow",
		"server.pid", "server.cpuSeconds", "server.cpuMicrosPerPacket", "server.peakRssBytes", "server.maxSampledRssBytes",
		"subscribers", "timeline", "callsPerNode",
	} {
		var v any = generic
		for _, k := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
		if v == nil {
			t.Errorf("report field %s is missing or null", path)
		}
	}

	var rep struct {
		Joined   int `json:"participantsJoined"`
		JoinTime struct{ N int }
		Loss     struct {
			TotalPercent    float64
			PacketsExpected uint64
		} `json:"loss"`
		Latency struct {
			Samples int
			P50     float64
		} `json:"latencyMs"`
		Forwarded struct {
			Received uint64  `json:"receivedByClients"`
			Server   *uint64 `json:"serverCounter"`
		} `json:"packetsForwarded"`
		Server struct {
			CPU     float64 `json:"cpuSeconds"`
			PerPkt  float64 `json:"cpuMicrosPerPacket"`
			PeakRSS uint64  `json:"peakRssBytes"`
		} `json:"server"`
		Subscribers []struct{ LossPercent float64 } `json:"subscribers"`
		Timeline    []struct {
			CPU float64 `json:"serverCpuPercent"`
		} `json:"timeline"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	// 3 audio publishers and 1 video publisher, each received by 2 others.
	if rep.Joined != 3 || len(rep.Subscribers) != 3 {
		t.Fatalf("joined %d, %d subscribers", rep.Joined, len(rep.Subscribers))
	}
	if rep.Loss.TotalPercent != 0 || rep.Loss.PacketsExpected < 3*2*50*2 {
		t.Errorf("loss %.3f%% of %d packets on loopback, want 0%% of ≥ 600", rep.Loss.TotalPercent, rep.Loss.PacketsExpected)
	}
	if rep.Forwarded.Server == nil || *rep.Forwarded.Server < rep.Forwarded.Received*9/10 {
		t.Errorf("server counter %v vs %d received by the clients", rep.Forwarded.Server, rep.Forwarded.Received)
	}
	if rep.Latency.Samples == 0 || rep.Latency.P50 <= 0 {
		t.Errorf("latency %+v", rep.Latency)
	}
	if rep.Server.CPU <= 0 || rep.Server.PerPkt <= 0 || rep.Server.PeakRSS < 1<<20 {
		t.Errorf("server figures %+v", rep.Server)
	}
	if len(rep.Timeline) < 3 {
		t.Errorf("timeline has %d points for a run of more than 3 s", len(rep.Timeline))
	}

	// The same, end-to-end encrypted and over TCP only.
	stdout.Reset()
	stderr.Reset()
	code = run([]string{"loadtest", "--api", api, "--insecure", "--api-secret", secret, "--calls", "1", "--participants", "2",
		"--audio-publishers", "2", "--video-publishers", "1", "--duration", "2s", "--e2ee", "--force-tcp", "--json"},
		&stdout, &stderr, func(string) string { return "" })
	var tcp struct {
		Scenario        struct{ E2EE, ForceTCP bool }  `json:"scenario"`
		Transports      map[string]int                 `json:"transports"`
		DecryptFailures *uint64                        `json:"decryptFailures"`
		Loss            struct{ TotalPercent float64 } `json:"loss"`
		Forwarded       struct {
			Received uint64 `json:"receivedByClients"`
		} `json:"packetsForwarded"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &tcp); code != exitOK || err != nil {
		t.Fatalf("--e2ee --force-tcp: exit %d, %v\n%s\n%s", code, err, stdout.String(), stderr.String())
	}
	if !tcp.Scenario.E2EE || !tcp.Scenario.ForceTCP || tcp.Transports["tcp"]+tcp.Transports["turn-tls"]+tcp.Transports["turn-tcp"] != 2 ||
		tcp.Transports["udp"] != 0 || tcp.DecryptFailures == nil || *tcp.DecryptFailures != 0 ||
		tcp.Loss.TotalPercent != 0 || tcp.Forwarded.Received == 0 {
		t.Errorf("--e2ee --force-tcp report: %s", stdout.String())
	}

	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 400 {
		t.Fatalf("plot: %v, %v", err, img)
	}
}

func TestLoadtestUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	noEnv := func(string) string { return "" }
	if code := run([]string{"loadtest", "--api", "https://127.0.0.1:1"}, &stdout, &stderr, noEnv); code != exitUsage ||
		!strings.Contains(stderr.String(), "ORVILLE_API_SECRET") {
		t.Errorf("without a secret: exit %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"loadtest", "--api-secret", "s", "--participants", "2", "--audio-publishers", "3"},
		&stdout, &stderr, noEnv); code != exitUsage || !strings.Contains(stderr.String(), "publishers") {
		t.Errorf("more publishers than participants: exit %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"loadtest", "--bogus"}, &stdout, &stderr, noEnv); code != exitUsage {
		t.Errorf("unknown flag: exit %d", code)
	}
}

// /metrics is always on the API listener behind the secret; /debug/pprof/
// only with --pprof.
func TestMetricsAndPprofEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer hc.CloseIdleConnections()
	get := func(url, secret string) int {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	plain, secret := devServer(t, bin, 47120)
	profiled, secret2 := devServer(t, bin, 47130, "--pprof")
	for _, c := range []struct {
		url, secret string
		want        int
	}{
		{plain + "/metrics", secret, 200},
		{plain + "/metrics", "", 401},
		{plain + "/debug/pprof/", secret, 404},
		{profiled + "/debug/pprof/", secret2, 200},
		{profiled + "/debug/pprof/heap", secret2, 200},
		{profiled + "/debug/pprof/", "", 401},
	} {
		if got := get(c.url, c.secret); got != c.want {
			t.Errorf("GET %s (secret %v): %d, want %d", c.url, c.secret != "", got, c.want)
		}
	}
}

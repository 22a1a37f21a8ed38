package metrics_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/metrics"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

const secret = "metrics-test-secret-0123456789"

// scrape fetches /metrics and returns every sample as "name{labels}" → value.
func scrape(t *testing.T, hc *http.Client, url string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestScrapeWhileMediaFlows runs the whole server in-process with the
// metrics wired the way `orville serve` wires them, joins two clients that
// publish audio and video, and scrapes /metrics twice while media flows.
func TestScrapeWhileMediaFlows(t *testing.T) {
	defer goleak.VerifyNone(t)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	m, err := metrics.New(metrics.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rooms, err := roommgr.New(roommgr.Config{PortStart: 47000, MaxCalls: 4, MaxParticipants: 5,
		ListenIP: net.IPv4(127, 0, 0, 1), PublicIP: "127.0.0.1", NodeID: "f985",
		EmptyTimeout: time.Minute, LeaveGrace: time.Second, MaxCallDuration: time.Hour,
		Logger: log, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	defer rooms.Close()
	if err := m.WatchRooms(rooms); err != nil {
		t.Fatal(err)
	}
	rtc := httptest.NewUnstartedServer(nil)
	rtc.StartTLS()
	defer rtc.Close()
	sig, err := signaling.New(signaling.Config{Rooms: rooms, APISecret: secret,
		APIAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Logger: log,
		SignalingURL: "wss://" + rtc.Listener.Addr().String() + "/v1/rtc", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer sig.Close()
	rtc.Config.Handler = sig.ClientHandler()
	mux := http.NewServeMux()
	mux.Handle("/", sig.APIHandler())
	mux.Handle("GET /metrics", sig.Authorized(m.Handler()))
	api := httptest.NewTLSServer(mux)
	defer api.Close()
	hc := api.Client()
	defer hc.CloseIdleConnections()

	// Without the secret, /metrics is refused like the rest of the API.
	resp, err := hc.Get(api.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /metrics without the secret: %d, want 401", resp.StatusCode)
	}

	before := scrape(t, hc, api.URL+"/metrics")
	if before[`orville_port_pairs{state="free"}`] != 4 || before["orville_calls"] != 0 {
		t.Fatalf("idle gauges: pairs free %v, calls %v", before[`orville_port_pairs{state="free"}`], before["orville_calls"])
	}
	if before["orville_process_resident_memory_bytes"] <= 0 || before["orville_process_cpu_seconds_total"] <= 0 {
		t.Fatal("process collector missing")
	}

	apic := &client.APIClient{BaseURL: api.URL, Secret: secret, HTTPClient: hc}
	ctx := context.Background()
	sc, err := apic.CreateCall(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := apic.GetCall(ctx, "no-such-call"); err == nil {
		t.Fatal("unknown call found")
	}
	noSecret := &client.APIClient{BaseURL: api.URL, HTTPClient: hc}
	if _, err := noSecret.ListCalls(ctx); err == nil {
		t.Fatal("API answered without the secret")
	}
	ids := []string{"a", "b"}
	var clients []*client.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for _, id := range ids {
		g, err := apic.AddParticipant(ctx, sc.State.EventID, id)
		if err != nil {
			t.Fatal(err)
		}
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := client.Join(jctx, client.Config{SignalingURL: g.SignalingURL, Token: g.Token,
			TLSConfig: &tls.Config{InsecureSkipVerify: true}, ParticipantID: id,
			PublishAudio: true, PublishVideo: true, VideoBitrate: 300_000})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i, c := range clients {
		if err := c.WaitForMedia(wctx, []string{ids[1-i]}, []string{"audio", "video"}); err != nil {
			t.Fatal(err)
		}
	}
	mid := scrape(t, hc, api.URL+"/metrics")
	time.Sleep(time.Second)
	after := scrape(t, hc, api.URL+"/metrics")

	moved := func(key string, min float64) {
		t.Helper()
		if d := after[key] - mid[key]; d < min {
			t.Errorf("%s moved by %v while media flowed (%v → %v), want ≥ %v", key, d, mid[key], after[key], min)
		}
	}
	// 2 publishers × (50 audio + ≥30 video packets/s), each to 1 subscriber.
	moved(`orville_packets_in_total{kind="audio"}`, 60)
	moved(`orville_packets_in_total{kind="video"}`, 40)
	moved(`orville_packets_out_total{kind="audio"}`, 60)
	moved(`orville_packets_out_total{kind="video"}`, 40)
	moved(`orville_bytes_in_total{kind="video"}`, 20_000)
	moved(`orville_bytes_out_total{kind="audio"}`, 60*80)
	moved(`orville_forwarding_latency_seconds_count{kind="audio"}`, 60)
	moved(`orville_forwarding_latency_seconds_count{kind="video"}`, 40)
	// Latency buckets add up: everything is at most +Inf.
	if after[`orville_forwarding_latency_seconds_bucket{kind="audio",le="+Inf"}`] != after[`orville_forwarding_latency_seconds_count{kind="audio"}`] {
		t.Error("histogram +Inf bucket differs from its count")
	}
	for key, want := range map[string]float64{
		"orville_calls":                                      1,
		"orville_participants":                               2,
		`orville_tracks{kind="audio"}`:                       2,
		`orville_tracks{kind="video"}`:                       2,
		`orville_participants_by_transport{transport="udp"}`: 2,
		`orville_port_pairs{state="used"}`:                   1,
		`orville_port_pairs{state="free"}`:                   3,
	} {
		if after[key] != want {
			t.Errorf("%s = %v, want %v", key, after[key], want)
		}
	}
	for key, min := range map[string]float64{
		`orville_api_requests_total{code="201",route="POST /v1/calls"}`:                        1,
		`orville_api_requests_total{code="201",route="POST /v1/calls/{eventId}/participants"}`: 2,
		`orville_api_requests_total{code="404",route="GET /v1/calls/{eventId}"}`:               1,
		`orville_api_requests_total{code="401",route="GET /v1/calls"}`:                         1,
	} {
		if after[key] < min {
			t.Errorf("%s = %v, want ≥ %v", key, after[key], min)
		}
	}
	if after["orville_process_cpu_seconds_total"] < before["orville_process_cpu_seconds_total"] {
		t.Error("process CPU went backwards")
	}
}

package deploy

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/events"
	"github.com/orville/orville/internal/config"
	"github.com/orville/orville/metrics"
	"github.com/orville/orville/roommgr"
	"go.uber.org/zap"
)

// tool returns the path of a program a test drives. Missing, it fails the
// test under CI (.ci/run installs it) and skips it elsewhere, saying so.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is needed and .ci/run installs it: %v", name, err)
	}
	t.Skipf("skipping: %s is not installed (.ci/run installs it): %v", name, err)
	return ""
}

// envFile reads KEY=VALUE lines (systemd EnvironmentFile syntax, without
// quoting), ignoring comments.
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", path, l)
		}
		out[k] = v
	}
	return out
}

// loadConfig loads a YAML settings file the way `orville serve --config`
// does, with env as the environment.
func loadConfig(t *testing.T, file string, env map[string]string) *config.Config {
	t.Helper()
	if env["ORVILLE_PUBLIC_IP"] == "" {
		env["ORVILLE_PUBLIC_IP"] = "192.0.2.10" // detection is the host's business
	}
	cfg, err := config.Load([]string{"--config", file}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("%s does not load as orville's configuration: %v", file, err)
	}
	return cfg
}

// metricNames are the names /metrics serves: every metric of package
// metrics, each vector touched once so that it shows, histograms with their
// _bucket, _sum and _count.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	m, err := metrics.New(metrics.Config{Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rooms, err := roommgr.New(roommgr.Config{PortStart: 27500, MaxCalls: 1, MaxParticipants: 1,
		ListenIP: net.IPv4(127, 0, 0, 1), EmptyTimeout: time.Minute, LeaveGrace: time.Second,
		MaxCallDuration: time.Hour, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer rooms.Close()
	if err := m.WatchRooms(rooms); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchEdges(func() metrics.EdgeStats { return metrics.EdgeStats{} }); err != nil {
		t.Fatal(err)
	}
	// The media counters are resolved per kind and reason in New: they show
	// untouched. The vectors below have no children until used.
	m.APIRequest("POST /v1/calls", 201)
	for _, e := range []events.Event{{Type: events.CallEnded, Reason: "x"}, {Type: events.ParticipantLeft, Reason: "x"}} {
		m.HandleEvent(e)
	}
	m.EventDropped("x")
	m.WebhookDelivered("x")
	m.WebhookRetried("x")
	m.WebhookDropped("x", "expired")
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		names[n] = true
		if mf.GetType().String() == "HISTOGRAM" {
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		}
	}
	return names
}

package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitValues returns every Key=Value of a unit file, in order.
func unitValues(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		out[k] = append(out[k], v)
	}
	return out
}

// The unit verifies with systemd-analyze (no warning at all), is hardened
// (its offline exposure score), waits longer than the drain, and its example
// configuration loads as Orville's.
func TestSystemdUnit(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	dir := t.TempDir()
	bin := filepath.Join(dir, "orville")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/orville").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	src, err := os.ReadFile("systemd/orville.service")
	if err != nil {
		t.Fatal(err)
	}
	// systemd-analyze checks that ExecStart's program exists: the one just
	// built stands in for /usr/local/bin/orville.
	if !strings.Contains(string(src), "ExecStart=/usr/local/bin/orville serve --config /etc/orville/orville.yaml") {
		t.Fatal("ExecStart is not /usr/local/bin/orville serve --config /etc/orville/orville.yaml")
	}
	unit := filepath.Join(dir, "orville.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(src), "/usr/local/bin/orville", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", unit).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for orville.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.0 {
		t.Fatalf("exposure %s, want at most 2.0:\n%s", m[1], out)
	}
	t.Logf("systemd-analyze security --offline: exposure %s", m[1])

	v := unitValues(t, "systemd/orville.service")
	for key, want := range map[string]string{
		"DynamicUser": "yes", "AmbientCapabilities": "CAP_NET_BIND_SERVICE", "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "Restart": "on-failure", "KillSignal": "SIGTERM",
		"EnvironmentFile": "/etc/orville/orville.env", "LimitNOFILE": "65536",
	} {
		if len(v[key]) != 1 || v[key][0] != want {
			t.Errorf("%s=%q, want %q", key, v[key], want)
		}
	}
	stop, err := time.ParseDuration(strings.ReplaceAll(v["TimeoutStopSec"][0], "min", "m"))
	if err != nil {
		t.Fatalf("TimeoutStopSec %q: %v", v["TimeoutStopSec"], err)
	}

	env := envFile(t, "systemd/orville.env")
	cfg := loadConfig(t, "systemd/orville.yaml", env)
	if stop <= cfg.DrainTimeout {
		t.Fatalf("TimeoutStopSec %v is not above the drain timeout %v: systemd would kill a draining server", stop, cfg.DrainTimeout)
	}
	if cfg.APIListen != ":444" || cfg.TCPListen != ":443" || cfg.MaxCalls != 50 || cfg.PortStart != 16384 {
		t.Fatalf("the example configuration is not the reference deployment's: %+v", cfg)
	}
}

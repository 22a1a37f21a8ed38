package config

import (
	"strings"
	"testing"
	"time"
)

// The operations settings: defaults, each source, and what is refused.
func TestOperationsSettings(t *testing.T) {
	c := mustLoad(t, []string{"--api-secret", testSecret}, env(), hostIP())
	if c.DrainTimeout != time.Hour {
		t.Errorf("drain timeout %v, want 1h", c.DrainTimeout)
	}
	file := writeFile(t, "drain-timeout: 90s\n")
	c = mustLoad(t, []string{"--api-secret", testSecret, "--config", file}, env(), hostIP())
	if c.DrainTimeout != 90*time.Second {
		t.Errorf("drain timeout from YAML %v", c.DrainTimeout)
	}
	c = mustLoad(t, []string{"--api-secret", testSecret, "--config", file}, env("ORVILLE_DRAIN_TIMEOUT", "2m"), hostIP())
	if c.DrainTimeout != 2*time.Minute {
		t.Errorf("drain timeout from the environment %v", c.DrainTimeout)
	}
	c = mustLoad(t, []string{"--api-secret", testSecret, "--drain-timeout", "0s"}, env("ORVILLE_DRAIN_TIMEOUT", "2m"), hostIP())
	if c.DrainTimeout != 0 {
		t.Errorf("--drain-timeout 0s gave %v", c.DrainTimeout)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--drain-timeout", "-1s"}, "--drain-timeout (ORVILLE_DRAIN_TIMEOUT) must not be negative"},
	} {
		if msg := loadErr(t, append([]string{"--api-secret", testSecret}, tt.args...), env()); !strings.Contains(msg, tt.want) {
			t.Errorf("%v: error %q does not contain %q", tt.args, msg, tt.want)
		}
	}
}

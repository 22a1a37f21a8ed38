package config

import (
	"strings"
	"testing"
)

// --last-n, ORVILLE_LAST_N and the YAML key last-n, with the usual
// precedence; negative values are refused.
func TestLastN(t *testing.T) {
	file := writeFile(t, "last-n: 4\n")
	for _, tt := range []struct {
		args   []string
		getenv func(string) string
		want   int
	}{
		{nil, env(), 9},
		{[]string{"--config", file}, env(), 4},
		{[]string{"--config", file}, env("ORVILLE_LAST_N", "6"), 6},
		{[]string{"--config", file, "--last-n", "0"}, env("ORVILLE_LAST_N", "6"), 0},
	} {
		c := mustLoad(t, append([]string{"--api-secret", testSecret}, tt.args...), tt.getenv, hostIP())
		if c.LastN != tt.want {
			t.Errorf("%q: LastN %d, want %d", tt.args, c.LastN, tt.want)
		}
	}
	if msg := loadErr(t, []string{"--api-secret", testSecret, "--last-n", "-1"}, env()); !strings.Contains(msg, "--last-n (ORVILLE_LAST_N)") {
		t.Errorf("error %q", msg)
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// `orville test-calling --force-tcp` against `orville serve --dev` exits 0
// with an OK verdict per direction over a TCP path and no UDP check; without
// the flag it checks UDP and TCP separately.
func TestTestCallingForceTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	api, secret := devServer(t, bin, 45200)
	for _, c := range []struct {
		args     []string
		wantUDP  bool
		verdicts int
	}{
		{[]string{"--force-tcp"}, false, 2},
		{nil, true, 4},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		args := append([]string{"test-calling", "--api", api, "--insecure", "--duration", "1s"}, c.args...)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "ORVILLE_API_SECRET="+secret)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("test-calling %v: %v\nstdout:\n%s\nstderr:\n%s", c.args, err, stdout.String(), stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		ok, udp := 0, false
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "udp ") {
				udp = true
			}
			if strings.HasPrefix(l, "tcp ") && !strings.Contains(l, "via udp") && strings.HasSuffix(l, "— OK") {
				ok++
			}
			if strings.HasPrefix(l, "udp ") && strings.HasSuffix(l, "via udp — OK") {
				ok++
			}
		}
		if ok != c.verdicts || udp != c.wantUDP {
			t.Errorf("test-calling %v: %d OK verdicts (want %d), UDP checked %v (want %v):\n%s",
				c.args, ok, c.verdicts, udp, c.wantUDP, stdout.String())
		}
	}
}

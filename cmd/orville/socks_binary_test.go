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

// `orville test-calling --socks` checks the SOCKS relay alone: two clients
// join through it (signaling over CONNECT, media over UDP ASSOCIATE) and
// get media both ways; against a server without the relay it says so.
func TestTestCallingSOCKS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	run := func(api, secret string) (string, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "test-calling", "--api", api, "--insecure", "--duration", "1s", "--socks")
		cmd.Env = append(os.Environ(), "ORVILLE_API_SECRET="+secret)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	api, secret := devServer(t, bin, 45380)
	stdout, stderr, code := run(api, secret)
	ok := 0
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n")[1:] {
		if strings.HasPrefix(l, "socks ") && strings.HasSuffix(l, "via socks — OK") {
			ok++
		}
	}
	if code != 0 || ok != 2 {
		t.Fatalf("test-calling --socks: exit %d, %d OK verdicts via socks (want 2)\nstdout:\n%s\nstderr:\n%s", code, ok, stdout, stderr)
	}
	off, secret2 := devServer(t, bin, 45390, "--socks-listen", "")
	if _, stderr, code := run(off, secret2); code != exitRefused || !strings.Contains(stderr, "no SOCKS relay") {
		t.Errorf("without a relay: exit %d, %q", code, stderr)
	}
}

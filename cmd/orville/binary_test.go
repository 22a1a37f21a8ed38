package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// buildBinary compiles orville once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "orville")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// devServer runs `orville serve --dev` on free ports and returns its API URL
// and the generated secret.
func devServer(t *testing.T, bin string, portStart int, extra ...string) (api, secret string) {
	t.Helper()
	apiPort, tcpPort := freeTCPPort(t), freeTCPPort(t)
	args := append([]string{"serve", "--dev",
		"--api-listen", fmt.Sprintf("127.0.0.1:%d", apiPort),
		"--tcp-listen", fmt.Sprintf("127.0.0.1:%d", tcpPort),
		"--port-start", fmt.Sprint(portStart), "--max-calls", "4",
		"--socks-listen", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd.Stdout = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("serve did not stop on SIGINT; logs:\n%s", logs.String())
		}
	})
	secretRe := regexp.MustCompile(`API secret \(generated for this run\): (\S+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := secretRe.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case secret = <-found:
	case <-time.After(15 * time.Second):
		t.Fatalf("serve --dev printed no secret; logs:\n%s", logs.String())
	}
	return fmt.Sprintf("https://127.0.0.1:%d", apiPort), secret
}

// The acceptance test of the binary: `orville serve --dev` and `orville
// test-calling` against it exit 0, and test-calling's first line is the
// reference start-call JSON.
func TestServeDevAndTestCalling(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	api, secret := devServer(t, bin, 44200)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "test-calling", "--api", api, "--insecure")
	cmd.Env = append(os.Environ(), "ORVILLE_API_SECRET="+secret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("test-calling: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	first := lines[0]
	if !strings.HasPrefix(first, `{"cluster":"enterprise","state":{"eventId":"`) {
		t.Fatalf("first line is not the reference start-call JSON: %s", first)
	}
	var answer struct {
		Cluster string `json:"cluster"`
		State   struct {
			EventID     string  `json:"eventId"`
			RoomURIIPv6 *string `json:"roomURI_ipv6"`
			PID         string  `json:"pid"`
			RoomURI     string  `json:"roomURI"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(first), &answer); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(answer.State.EventID) ||
		answer.State.RoomURIIPv6 == nil || *answer.State.RoomURIIPv6 != "" ||
		!regexp.MustCompile(`^[0-9a-f]{1,16}$`).MatchString(answer.State.PID) ||
		answer.State.RoomURI != "127.0.0.1:44200" {
		t.Fatalf("start-call answer %+v", answer)
	}
	verdicts := 0
	for _, l := range lines[1:] {
		if strings.HasSuffix(l, "OK") {
			verdicts++
		}
	}
	if verdicts < 2 {
		t.Fatalf("want an OK verdict per direction:\n%s", stdout.String())
	}
}

// test-calling's diagnoses: wrong secret and an unreachable API.
func TestTestCallingDiagnoses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	api, _ := devServer(t, bin, 44220)
	for _, c := range []struct {
		name, api, secret, want string
		code                    int
	}{
		{"wrong secret", api, "wrong-secret-0123456789", "401", exitRefused},
		{"unreachable", fmt.Sprintf("https://127.0.0.1:%d", freeTCPPort(t)), "whatever-0123456789", "unreachable", exitUnreachable},
	} {
		cmd := exec.Command(bin, "test-calling", "--api", c.api, "--insecure")
		cmd.Env = append(os.Environ(), "ORVILLE_API_SECRET="+c.secret)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%s: err %v, stderr %q; want exit %d mentioning %q", c.name, err, stderr.String(), c.code, c.want)
		}
		if lines := strings.Split(stderr.String(), "\n"); len(lines) > 2 {
			t.Errorf("%s: diagnosis should be one line: %q", c.name, stderr.String())
		}
	}
}

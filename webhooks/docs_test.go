package webhooks

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/events"
	"go.uber.org/zap/zaptest"
)

// docSnippet returns the code block after the marker <!-- verify:NAME --> in
// docs/webhooks.md: the verification code operators copy must work.
func docSnippet(t *testing.T, name string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/webhooks.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- verify:"+name+" -->\n```"+name+"\n")
	if !ok {
		t.Fatalf("docs/webhooks.md has no %s verification snippet", name)
	}
	code, _, ok := strings.Cut(rest, "\n```")
	if !ok {
		t.Fatalf("the %s snippet is not closed", name)
	}
	return code + "\n"
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// The documented Go receiver, built and run, accepts what a Sender sends
// and refuses a forged request.
func TestDocGoReceiver(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the documented receiver")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "receiver.go")
	if err := os.WriteFile(src, []byte(docSnippet(t, "go")), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "receiver")
	if out, err := exec.Command("go", "build", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("the documented receiver does not build: %v\n%s", err, out)
	}
	addr := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+testSecret, "LISTEN="+addr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	url := "http://" + addr + "/orville"
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		} else if time.Now().After(deadline) {
			t.Fatal("the documented receiver does not listen")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A forged request: right shape, wrong key.
	body := []byte(`{"id":"forged","type":"call.ended","eventId":"x"}`)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set(SignatureHeader, Sign("not-the-secret-0123456789", time.Now(), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged request: %d", resp.StatusCode)
	}

	obs := &counter{}
	s, err := New(Config{URLs: []string{url}, Secret: testSecret, Logger: zaptest.NewLogger(t), Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	s.HandleEvent(events.Event{ID: "e1", Type: events.ParticipantLeft, CallID: "5bda4906dd4d41ff996ada256cef5308",
		ParticipantID: "alice", Reason: "left", Time: time.Now()})
	select {
	case l := <-lines:
		if l != "e1 participant.left call=5bda4906dd4d41ff996ada256cef5308 participant=alice reason=left" {
			t.Fatalf("receiver printed %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the documented receiver printed nothing")
	}
	s.Close()
	if obs.delivered.Load() != 1 {
		t.Fatalf("delivered %d", obs.delivered.Load())
	}
	http.DefaultClient.CloseIdleConnections()
}

// The documented Python and shell (openssl) checks accept a real signature
// and refuse a tampered body.
func TestDocPythonAndShellVerifiers(t *testing.T) {
	body := []byte(`{"id":"e1","type":"call.started","time":"2026-01-01T12:00:00.000Z","eventId":"5bda4906dd4d41ff996ada256cef5308"}`)
	sig := Sign(testSecret, time.Now(), body)
	tampered := bytes.Replace(body, []byte("started"), []byte("ended"), 1)
	dir := t.TempDir()
	py := filepath.Join(dir, "verify.py")
	sh := filepath.Join(dir, "verify.sh")
	if err := os.WriteFile(py, []byte(docSnippet(t, "python")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sh, []byte(docSnippet(t, "sh")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"python3", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to check the documented snippet (.ci/run installs it): %v", tool, err)
		}
	}
	run := func(name string, b []byte, cmd *exec.Cmd) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "body.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(b)
		cmd.Env = append(os.Environ(), "SECRET="+testSecret, "SIG="+sig)
		out, _ := cmd.CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	for _, c := range []struct {
		name string
		cmd  func() *exec.Cmd
	}{
		{"python", func() *exec.Cmd { return exec.Command("python3", py, testSecret, sig) }},
		{"shell", func() *exec.Cmd { return exec.Command("sh", sh) }},
	} {
		if got := run(c.name, body, c.cmd()); got != "valid" {
			t.Errorf("%s on a genuine request: %q", c.name, got)
		}
		if got := run(c.name, tampered, c.cmd()); got != "INVALID" {
			t.Errorf("%s on a tampered body: %q", c.name, got)
		}
	}
}

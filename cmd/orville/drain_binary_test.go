package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orville/orville/client"
)

// proc is `orville serve` as a child process the test signals itself.
type proc struct {
	cmd                         *exec.Cmd
	api, secret                 string
	apiPort, tcpPort, socksPort int
	healthPort                  int // 0 unless the caller passed --health-listen
	portStart                   int
	apic                        *client.APIClient
	hc                          *http.Client
	tlsConf                     *tls.Config
	exited                      chan struct{}
	exitErr                     error
	logsMu                      sync.Mutex
	logs                        bytes.Buffer
}

const procSecret = "drain-test-api-secret-0123456789"

// startProc runs the binary with --dev on free ports, media from portStart,
// and waits until its API answers.
func startProc(t *testing.T, bin string, portStart int, extra ...string) *proc {
	t.Helper()
	return startProcEnv(t, bin, nil, portStart, extra...)
}

// startProcEnv is startProc with extra environment variables.
func startProcEnv(t *testing.T, bin string, env []string, portStart int, extra ...string) *proc {
	t.Helper()
	p := &proc{apiPort: freeTCPPort(t), tcpPort: freeTCPPort(t), socksPort: freeTCPPort(t), portStart: portStart,
		secret: procSecret, exited: make(chan struct{})}
	args := append([]string{"serve", "--dev", "--api-secret", procSecret,
		"--api-listen", fmt.Sprintf("127.0.0.1:%d", p.apiPort),
		"--tcp-listen", fmt.Sprintf("127.0.0.1:%d", p.tcpPort),
		"--socks-listen", fmt.Sprintf("127.0.0.1:%d", p.socksPort),
		"--port-start", fmt.Sprint(portStart), "--max-calls", "2", "--log-format", "json"}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = &lockedWriter{mu: &p.logsMu, w: &p.logs}
	p.cmd.Stderr = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exitErr = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("serve did not stop on SIGINT; logs:\n%s", p.logText())
		}
	})
	p.api = fmt.Sprintf("https://127.0.0.1:%d", p.apiPort)
	p.tlsConf = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test server's self-signed certificate
	p.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: p.tlsConf}}
	t.Cleanup(p.hc.CloseIdleConnections)
	p.apic = &client.APIClient{BaseURL: p.api, Secret: procSecret, HTTPClient: p.hc}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := p.apic.ListCalls(context.Background()); err == nil {
			return p
		} else if time.Now().After(deadline) {
			t.Fatalf("server not up: %v; logs:\n%s", err, p.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *proc) logText() string {
	p.logsMu.Lock()
	defer p.logsMu.Unlock()
	return p.logs.String()
}

// logged reports whether a JSON log line has this message.
func (p *proc) logged(msg string) bool {
	sc := bufio.NewScanner(strings.NewReader(p.logText()))
	for sc.Scan() {
		var l struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == msg {
			return true
		}
	}
	return false
}

// waitExit waits for the process and returns its exit code and how long it
// took.
func (p *proc) waitExit(t *testing.T, within time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case <-p.exited:
	case <-time.After(within):
		t.Fatalf("the server did not exit within %v; logs:\n%s", within, p.logText())
	}
	var ee *exec.ExitError
	switch {
	case p.exitErr == nil:
		return 0, time.Since(start)
	case errors.As(p.exitErr, &ee):
		return ee.ExitCode(), time.Since(start)
	default:
		t.Fatalf("wait: %v", p.exitErr)
		return -1, 0
	}
}

// portsFree checks that every port the server had is bindable again.
func (p *proc) portsFree(t *testing.T) {
	t.Helper()
	tcp := []int{p.apiPort, p.tcpPort, p.socksPort}
	if p.healthPort != 0 {
		tcp = append(tcp, p.healthPort)
	}
	for _, port := range tcp {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Errorf("TCP %d still taken after exit: %v", port, err)
			continue
		}
		l.Close()
	}
	for port := p.portStart; port < p.portStart+4; port++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			t.Errorf("UDP %d still taken after exit: %v", port, err)
			continue
		}
		c.Close()
	}
}

// callWith starts a call and joins the participants with audio and video,
// waiting until each receives every other's media.
func (p *proc) callWith(t *testing.T, names ...string) (string, map[string]*client.Client) {
	t.Helper()
	sc, err := p.apic.CreateCall(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]*client.Client{}
	for _, n := range names {
		clients[n] = p.join(t, sc.State.EventID, n)
	}
	for _, n := range names {
		p.waitMedia(t, clients[n], others(names, n)...)
	}
	return sc.State.EventID, clients
}

func (p *proc) join(t *testing.T, call, name string) *client.Client {
	t.Helper()
	g, err := p.apic.AddParticipant(context.Background(), call, name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Join(context.Background(), client.Config{SignalingURL: g.SignalingURL, Token: g.Token,
		TLSConfig: p.tlsConf, ParticipantID: name, PublishAudio: true, PublishVideo: true, VideoBitrate: 300_000})
	if err != nil {
		t.Fatalf("%s: join: %v", name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (p *proc) waitMedia(t *testing.T, c *client.Client, from ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.WaitForMedia(ctx, from, []string{"audio", "video"}); err != nil {
		t.Fatalf("%s: %v", c.ParticipantID(), err)
	}
}

func others(all []string, not string) []string {
	var out []string
	for _, n := range all {
		if n != not {
			out = append(out, n)
		}
	}
	return out
}

// receivedFrom counts the packets c got from participant from, by kind.
func receivedFrom(c *client.Client, from string) map[string]uint64 {
	out := map[string]uint64{}
	for _, r := range c.Stats().Received {
		if r.ParticipantID == from {
			out[r.Kind] += r.Packets
		}
	}
	return out
}

// firstStatus polls method path (with the secret) from the moment start
// until it answers want, and returns the response and the time it took.
func (p *proc) firstStatus(t *testing.T, start time.Time, method, path string, want int) (*http.Response, []byte, time.Duration) {
	t.Helper()
	for {
		req, _ := http.NewRequest(method, p.api+path, nil)
		req.Header.Set("Authorization", "Bearer "+p.secret)
		resp, err := p.hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == want {
			return resp, body, time.Since(start)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%s %s still %d after 5 s: %s", method, path, resp.StatusCode, body)
		}
	}
}

// healthProbe is a kubelet's readiness probe on --health-listen: plain
// HTTP, no secret.
func (p *proc) healthProbe(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.healthPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// probe is one API answer and how long it took.
type probe struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

func (p *proc) probe(t *testing.T, method, path string) probe {
	t.Helper()
	start := time.Now()
	req, _ := http.NewRequest(method, p.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+p.secret)
	resp, err := p.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return probe{resp.StatusCode, resp.Header, body, time.Since(start)}
}

func errorCode(body []byte) string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error.Code
}

// metric returns one unlabelled sample of /metrics.
func (p *proc) metric(t *testing.T, name string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+p.secret)
	resp, err := p.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	return ""
}

// The drain acceptance test: SIGTERM with a call in progress. /readyz and
// POST /v1/calls answer 503 draining within 100 ms; media keeps flowing for
// the 5 s the test watches, and a participant can still join; ending the
// call makes the process exit 0, and every port is free afterwards.
func TestSIGTERMDrainsThenExitsWhenTheLastCallEnds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	health := freeTCPPort(t)
	p := startProc(t, bin, 44300, "--drain-timeout", "5m", "--health-listen", fmt.Sprintf("127.0.0.1:%d", health))
	p.healthPort = health
	if status, body := p.healthProbe(t); status != 200 || body != `{"status":"ready"}` {
		t.Fatalf("health listener before the drain: %d %s", status, body)
	}
	call, clients := p.callWith(t, "alice", "bob")
	// Warm connections, so the timing below is the server's, not a handshake's.
	p.firstStatus(t, time.Now(), "GET", "/readyz", http.StatusOK)
	before := map[string]map[string]uint64{"alice": receivedFrom(clients["alice"], "bob"), "bob": receivedFrom(clients["bob"], "alice")}

	sigAt := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Requests sent 100 ms after the signal answer 503 draining: the state
	// changes at once; how long the answer takes on a loaded machine is the
	// client's scheduling, logged but not the criterion.
	time.Sleep(time.Until(sigAt.Add(100 * time.Millisecond)))
	var wg sync.WaitGroup
	var ready, create probe
	wg.Add(2)
	go func() { defer wg.Done(); ready = p.probe(t, "GET", "/readyz") }()
	go func() { defer wg.Done(); create = p.probe(t, "POST", "/v1/calls") }()
	wg.Wait()
	t.Logf("sent 100 ms after SIGTERM: /readyz %d in %v, POST /v1/calls %d in %v", ready.status, ready.took, create.status, create.took)
	if ready.status != 503 || errorCode(ready.body) != "draining" {
		t.Errorf("/readyz 100 ms after SIGTERM: %d %s", ready.status, ready.body)
	}
	if create.status != 503 || errorCode(create.body) != "draining" || create.header.Get("Retry-After") == "" {
		t.Fatalf("POST /v1/calls 100 ms after SIGTERM: %d %s (Retry-After %q)", create.status, create.body, create.header.Get("Retry-After"))
	}
	if status, body := p.healthProbe(t); status != 503 || body != `{"status":"draining"}` {
		t.Errorf("health listener's /readyz while draining: %d %s", status, body)
	}

	// A participant can still join the running call.
	carol := p.join(t, call, "carol")
	p.waitMedia(t, carol, "alice", "bob")
	if v := p.metric(t, "orville_draining"); v != "1" {
		t.Errorf("orville_draining %q, want 1", v)
	}
	if v := p.metric(t, "orville_drain_calls_left"); v != "1" {
		t.Errorf("orville_drain_calls_left %q, want 1", v)
	}

	// Media keeps flowing: for at least 5 s after the signal, at half the
	// synthetic rate or more (Opus sends 50 packets/s), and still arriving.
	time.Sleep(time.Until(sigAt.Add(5500 * time.Millisecond)))
	select {
	case <-p.exited:
		t.Fatalf("the server exited during the drain; logs:\n%s", p.logText())
	default:
	}
	for who, from := range map[string]string{"alice": "bob", "bob": "alice"} {
		now := receivedFrom(clients[who], from)
		audio := now["audio"] - before[who]["audio"]
		video := now["video"] - before[who]["video"]
		if audio < 150 || video < 30 {
			t.Errorf("%s got %d audio and %d video packets from %s in the 5.5 s after SIGTERM", who, audio, video, from)
		}
		for _, r := range clients[who].Stats().Received {
			if r.ParticipantID == from && time.Since(r.LastPacketAt) > time.Second {
				t.Errorf("%s: last %s packet from %s %v ago", who, r.Kind, from, time.Since(r.LastPacketAt))
			}
		}
	}
	if !p.logged("SIGTERM: draining") {
		t.Errorf("no drain log line:\n%s", p.logText())
	}

	endAt := time.Now()
	if err := p.apic.EndCall(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	code, _ := p.waitExit(t, 15*time.Second)
	t.Logf("exited %v after the call ended", time.Since(endAt))
	if code != 0 {
		t.Fatalf("exit code %d after the drain; logs:\n%s", code, p.logText())
	}
	if !p.logged("drained: the last call has ended; stopping") {
		t.Errorf("no 'drained' log line:\n%s", p.logText())
	}
	p.portsFree(t)
}

// With a short --drain-timeout the process exits at the timeout, and the
// clients still in the call are told server_shutdown.
func TestDrainTimeoutEndsCallsWithServerShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	p := startProc(t, bin, 44320, "--drain-timeout", "3s")
	_, clients := p.callWith(t, "alice", "bob")
	sigAt := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, _ := p.waitExit(t, 20*time.Second)
	took := time.Since(sigAt)
	t.Logf("exited %v after SIGTERM with --drain-timeout 3s", took)
	if code != 0 {
		t.Fatalf("exit code %d; logs:\n%s", code, p.logText())
	}
	if took < 3*time.Second || took > 10*time.Second {
		t.Errorf("exited %v after SIGTERM; want at the 3 s timeout", took)
	}
	wantServerShutdown(t, clients)
	if !p.logged("drain timeout: ending the calls still running (server_shutdown)") {
		t.Errorf("no drain-timeout log line:\n%s", p.logText())
	}
	p.portsFree(t)
}

// A second SIGTERM during the drain ends the calls now.
func TestSecondSIGTERMEndsCallsNow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	p := startProc(t, bin, 44340, "--drain-timeout", "1h")
	_, clients := p.callWith(t, "alice", "bob")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.firstStatus(t, time.Now(), "GET", "/readyz", 503)
	time.Sleep(500 * time.Millisecond)
	select {
	case <-p.exited:
		t.Fatal("exited on the first SIGTERM with a call running and an hour to go")
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, took := p.waitExit(t, 15*time.Second)
	t.Logf("exited %v after the second SIGTERM", took)
	if code != 0 {
		t.Fatalf("exit code %d; logs:\n%s", code, p.logText())
	}
	wantServerShutdown(t, clients)
	p.portsFree(t)
}

// `orville drain --wait` drains through the API, follows the calls left and
// returns once the server has stopped.
func TestDrainCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	p := startProc(t, bin, 44360, "--drain-timeout", "5m")
	call, _ := p.callWith(t, "alice", "bob")

	wrong := exec.Command(bin, "drain", "--api", p.api, "--insecure")
	wrong.Env = append(os.Environ(), "ORVILLE_API_SECRET=wrong-secret-0123456789")
	if out, err := wrong.CombinedOutput(); exitCode(err) != exitRefused || !strings.Contains(string(out), "401") {
		t.Fatalf("drain with a wrong secret: %v %s", err, out)
	}
	if _, body, _ := p.firstStatus(t, time.Now(), "GET", "/readyz", 200); len(body) == 0 {
		t.Fatal("a refused drain changed readiness")
	}

	cmd := exec.Command(bin, "drain", "--api", p.api, "--insecure", "--wait")
	cmd.Env = append(os.Environ(), "ORVILLE_API_SECRET="+p.secret)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	p.firstStatus(t, time.Now(), "GET", "/readyz", 503)
	time.Sleep(3 * time.Second) // drain --wait polls every 2 s: it sees the call
	if err := p.apic.EndCall(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.waitExit(t, 15*time.Second); code != 0 {
		t.Fatalf("server exit code %d", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("orville drain --wait: %v\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("orville drain --wait did not return:\n%s", out.String())
	}
	text := out.String()
	if !strings.Contains(text, "draining: no new calls; 1 calls in progress") || !strings.Contains(text, "stopped: the server no longer answers") {
		t.Fatalf("orville drain --wait printed:\n%s", text)
	}
	if !p.logged("drain requested through the API (POST /v1/drain): draining") {
		t.Errorf("no API drain log line:\n%s", p.logText())
	}
	p.portsFree(t)
}

// wantServerShutdown checks that every client was told `ended`
// server_shutdown.
func wantServerShutdown(t *testing.T, clients map[string]*client.Client) {
	t.Helper()
	for name, c := range clients {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still running after the server exited", name)
		}
		var ended *client.EndedError
		if !errors.As(c.Err(), &ended) || ended.Reason != "server_shutdown" {
			t.Errorf("%s stopped with %v, want ended server_shutdown", name, c.Err())
		}
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orville/orville/internal/tlsutil"
	"github.com/orville/orville/webhooks"
)

const hookSecret = "webhook-test-secret-0123456789"

// hookEvent is what the test reads of a webhook body.
type hookEvent struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	Time          string `json:"time"`
	EventID       string `json:"eventId"`
	ParticipantID string `json:"participantId"`
	Reason        string `json:"reason"`
	Track         *struct {
		ID   string `json:"id"`
		Kind string `json:"kind"`
	} `json:"track"`
	Node string `json:"node"`
}

// hookReceiver is a messaging server's webhook endpoint: it checks every
// request's signature and keeps the verified events in arrival order.
// failFirst answers 503 to that many attempts of each event.
type hookReceiver struct {
	t         *testing.T
	srv       *httptest.Server
	failFirst int

	mu       sync.Mutex
	events   []hookEvent
	attempts map[string]int
	bad      []string
	arrived  map[string]time.Time // first verified arrival, by event type
}

func newHookReceiver(t *testing.T, failFirst int) *hookReceiver {
	r := &hookReceiver{t: t, failFirst: failFirst, attempts: map[string]int{}, arrived: map[string]time.Time{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := webhooks.Verify(hookSecret, req.Header.Get(webhooks.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		r.bad = append(r.bad, fmt.Sprintf("%v: %s", err, body))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var e hookEvent
	if err := json.Unmarshal(body, &e); err != nil {
		r.bad = append(r.bad, fmt.Sprintf("%v: %s", err, body))
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.attempts[e.ID]++
	if r.attempts[e.ID] <= r.failFirst {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if slices.ContainsFunc(r.events, func(o hookEvent) bool { return o.ID == e.ID }) {
		w.WriteHeader(http.StatusOK) // a duplicate: acknowledged, not kept twice
		return
	}
	if _, ok := r.arrived[e.Type]; !ok {
		r.arrived[e.Type] = time.Now()
	}
	r.events = append(r.events, e)
	w.WriteHeader(http.StatusNoContent)
}

func (r *hookReceiver) got() []hookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookEvent(nil), r.events...)
}

func (r *hookReceiver) has(typ string) bool {
	return slices.ContainsFunc(r.got(), func(e hookEvent) bool { return e.Type == typ })
}

// checkCallEvents: exactly the events of a call in which alice and bob
// published audio and video, bob left and the API ended the call, each
// participant's in order, the call's first and last.
func checkCallEvents(t *testing.T, name string, evs []hookEvent, call, node string) {
	t.Helper()
	var lines []string
	for _, e := range evs {
		if e.EventID != call || e.Node != node || len(e.ID) != 32 {
			t.Fatalf("%s: event %+v (want call %s, node %s)", name, e, call, node)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Fatalf("%s: time %q: %v", name, e.Time, err)
		}
		l := e.Type
		for _, f := range []string{e.ParticipantID, e.Reason} {
			if f != "" {
				l += " " + f
			}
		}
		if e.Track != nil {
			l += " " + e.Track.Kind
		}
		lines = append(lines, l)
	}
	all := strings.Join(lines, "\n")
	if len(lines) != 14 || lines[0] != "call.started" || lines[13] != "call.ended ended_by_api" {
		t.Fatalf("%s: %d events:\n%s", name, len(lines), all)
	}
	pos := func(l string) int {
		i := slices.Index(lines, l)
		if i < 0 {
			t.Fatalf("%s: no %q in:\n%s", name, l, all)
		}
		return i
	}
	for who, reason := range map[string]string{"alice": "ended_by_api", "bob": "left"} {
		for _, kind := range []string{"audio", "video"} {
			seq := []string{"participant.joined " + who, "track.published " + who + " " + kind,
				"track.unpublished " + who + " " + kind, "participant.left " + who + " " + reason}
			for i := 1; i < len(seq); i++ {
				if pos(seq[i-1]) > pos(seq[i]) {
					t.Fatalf("%s: %q after %q:\n%s", name, seq[i-1], seq[i], all)
				}
			}
		}
	}
}

// The webhook acceptance test on the binary: one receiver gets every event
// of a real call, signed, in order; another that fails the first two
// attempts of every event gets them all too, after retries (counted).
func TestWebhooksDeliverEveryEventOfACall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	good, flaky := newHookReceiver(t, 0), newHookReceiver(t, 2)
	bin := buildBinary(t)
	p := startProc(t, bin, 44380, "--node-id", "beef", "--webhook-secret", hookSecret,
		"--webhook-url", good.srv.URL+"/orville", "--webhook-url", flaky.srv.URL+"/orville")
	call, clients := p.callWith(t, "alice", "bob")
	_ = clients["bob"].Close() // bob leaves
	deadline := time.Now().Add(10 * time.Second)
	for !good.has("participant.left") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.apic.EndCall(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*hookReceiver{good, flaky} {
		for len(r.got()) < 14 && time.Now().Before(deadline.Add(20*time.Second)) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	checkCallEvents(t, "receiver", good.got(), call, "beef")
	checkCallEvents(t, "receiver failing the first attempts", flaky.got(), call, "beef")
	for _, r := range []*hookReceiver{good, flaky} {
		if len(r.bad) > 0 {
			t.Fatalf("requests that failed verification: %q", r.bad)
		}
	}
	for id, n := range flaky.attempts {
		if n != 3 {
			t.Errorf("event %s: %d attempts at the failing receiver, want 3", id, n)
		}
	}
	host := strings.TrimPrefix(flaky.srv.URL, "http://")
	if v := p.metric(t, `orville_webhook_retries_total{endpoint="`+host+`"}`); v != "28" {
		t.Errorf("retries counted %q, want 28 (2 for each of 14 events)", v)
	}
	if v := p.metric(t, `orville_webhook_delivered_total{endpoint="`+host+`"}`); v != "14" {
		t.Errorf("delivered counted %q, want 14", v)
	}
}

// A receiver that never answers slows neither the call nor its end nor the
// other receiver; its events are dropped once --webhook-retry-for passes,
// and counted; the process still stops promptly.
func TestWebhookReceiverThatNeverAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var heldMu sync.Mutex
	go func() { // accepts, reads, never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		heldMu.Lock()
		for _, c := range held {
			c.Close()
		}
		heldMu.Unlock()
	})
	good := newHookReceiver(t, 0)
	bin := buildBinary(t)
	p := startProc(t, bin, 44400, "--webhook-secret", hookSecret, "--webhook-timeout", "500ms", "--webhook-retry-for", "2s",
		"--webhook-url", "http://"+ln.Addr().String()+"/hang", "--webhook-url", good.srv.URL)
	start := time.Now()
	call, _ := p.callWith(t, "alice", "bob")
	t.Logf("call set up with media both ways in %v", time.Since(start))
	endAt := time.Now()
	if err := p.apic.EndCall(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(endAt); d > time.Second {
		t.Errorf("ending the call took %v", d)
	}
	for !good.has("call.ended") && time.Since(endAt) < 5*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	good.mu.Lock()
	ended := good.arrived["call.ended"]
	good.mu.Unlock()
	if ended.IsZero() || ended.Sub(endAt) > time.Second {
		t.Fatalf("the other receiver got call.ended %v after the call ended", ended.Sub(endAt))
	}
	hang := ln.Addr().String()
	deadline := time.Now().Add(15 * time.Second)
	var dropped int
	for time.Now().Before(deadline) {
		dropped, _ = strconv.Atoi(p.metric(t, `orville_webhook_dropped_total{endpoint="`+hang+`",reason="expired"}`))
		if dropped > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if dropped == 0 {
		t.Fatal("no event to the silent receiver was counted as dropped")
	}
	if v := p.metric(t, `orville_webhook_delivered_total{endpoint="`+hang+`"}`); v != "" && v != "0" {
		t.Fatalf("delivered to a receiver that never answers: %s", v)
	}
	stopAt := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.waitExit(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	t.Logf("%d events dropped for the silent receiver; exit %v after SIGTERM", dropped, time.Since(stopAt))
	if d := time.Since(stopAt); d > 10*time.Second {
		t.Errorf("stopping took %v with a silent webhook receiver", d)
	}
	p.portsFree(t)
}

// Outbound webhook requests go through HTTPS_PROXY (a CONNECT tunnel) and
// verify the receiver's certificate against the system roots.
func TestWebhooksThroughHTTPSProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const host = "hooks.orville.test"
	cert, err := tlsutil.SelfSigned([]string{host}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	recv := newHookReceiver(t, 0)
	recv.srv.Close()
	recv.srv = httptest.NewUnstartedServer(http.HandlerFunc(recv.serve))
	recv.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	recv.srv.StartTLS()

	var connects []string
	var mu sync.Mutex
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		mu.Lock()
		connects = append(connects, r.Host)
		mu.Unlock()
		// Every tunnel leads to the receiver, whatever the name.
		up, err := net.Dial("tcp", recv.srv.Listener.Addr().String())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		down, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		go func() { _, _ = io.Copy(up, bufio.NewReader(buf)); up.Close() }()
		_, _ = io.Copy(down, up)
		down.Close()
	}))
	defer proxy.Close()

	bin := buildBinary(t)
	p := startProcEnv(t, bin, []string{"HTTPS_PROXY=" + proxy.URL, "https_proxy=" + proxy.URL, "NO_PROXY=", "no_proxy=",
		"SSL_CERT_FILE=" + roots}, 44420,
		"--webhook-secret", hookSecret, "--webhook-url", "https://"+host+"/orville")
	sc, err := p.apic.CreateCall(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !recv.has("call.started") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := recv.got()
	if len(got) != 1 || got[0].EventID != sc.State.EventID || len(recv.bad) > 0 {
		t.Fatalf("through the proxy: %+v (bad %q)", got, recv.bad)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(connects) == 0 || connects[0] != host+":443" {
		t.Fatalf("proxy CONNECTs %q, want %s:443", connects, host)
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/internal/etcdtest"
)

const clusterSecret = "cluster-test-api-secret-0123456789"

// clusterTTL is the nodes' lease TTL in the cluster tests: short, so that a
// lost node is noticed quickly.
const clusterTTL = 3 * time.Second

// syncBuffer collects a process's output; the test reads it on failure
// while the process may still be writing.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clusterProc is one `orville serve` node of a test cluster.
type clusterProc struct {
	id, api, signaling  string
	portStart, maxCalls int
	cmd                 *exec.Cmd
	logs                *syncBuffer
	done                chan struct{}
}

var testTLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test nodes' self-signed certificates

var testHTTP = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: testTLS}}

// startClusterNode runs a node with its own ports and media range, joined to
// etcd, and waits until it is ready (registered).
func startClusterNode(t *testing.T, bin, etcd, id string, portStart, maxCalls int, extra ...string) *clusterProc {
	t.Helper()
	apiPort, tcpPort := freeTCPPort(t), freeTCPPort(t)
	p := &clusterProc{id: id, api: fmt.Sprintf("https://127.0.0.1:%d", apiPort),
		signaling: fmt.Sprintf("wss://127.0.0.1:%d/v1/rtc", tcpPort),
		portStart: portStart, maxCalls: maxCalls, logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--dev", "--api-secret", clusterSecret, "--log-format", "json",
		"--api-listen", fmt.Sprintf("127.0.0.1:%d", apiPort), "--tcp-listen", fmt.Sprintf("127.0.0.1:%d", tcpPort),
		"--port-start", fmt.Sprint(portStart), "--max-calls", fmt.Sprint(maxCalls), "--node-id", id,
		"--etcd-endpoints", etcd, "--etcd-lease-ttl", clusterTTL.String(), "--empty-timeout", "5m", "--leave-grace", "5m",
		"--socks-listen", "127.0.0.1:0")
	p.cmd.Args = append(p.cmd.Args, extra...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, _ := p.do("GET", "/readyz", ""); st == http.StatusOK {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not ready; logs:\n%s", id, p.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *clusterProc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("node %s did not stop on SIGINT; logs:\n%s", p.id, p.logs.String())
	}
}

// kill is kill -9.
func (p *clusterProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *clusterProc) do(method, path, body string) (int, []byte) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.api+path, rd)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+clusterSecret)
	resp, err := testHTTP.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (p *clusterProc) apiClient() *client.APIClient {
	return &client.APIClient{BaseURL: p.api, Secret: clusterSecret, HTTPClient: testHTTP}
}

// startAnswer is the start-call JSON as the tests read it.
type startAnswer struct {
	State struct {
		EventID string `json:"eventId"`
		PID     string `json:"pid"`
		RoomURI string `json:"roomURI"`
	} `json:"state"`
	SignalingURL string `json:"signalingUrl"`
	Ports        struct {
		Publish, Subscribe int
	} `json:"ports"`
}

func (p *clusterProc) startCall(t *testing.T) startAnswer {
	t.Helper()
	st, b := p.do("POST", "/v1/calls", "")
	if st != http.StatusCreated {
		t.Fatalf("start call through %s: %d %s", p.id, st, b)
	}
	var a startAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// listed is GET /v1/calls through p: event id → owner pid.
func (p *clusterProc) listed(t *testing.T) (map[string]string, []string) {
	t.Helper()
	st, b := p.do("GET", "/v1/calls", "")
	if st != http.StatusOK {
		t.Fatalf("list through %s: %d %s", p.id, st, b)
	}
	var l struct {
		Calls []struct {
			EventID string `json:"eventId"`
			PID     string `json:"pid"`
		}
		Errors []string
	}
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range l.Calls {
		out[c.EventID] = c.PID
	}
	return out, l.Errors
}

// testCluster is etcd, its nodes and the webhook receiver they all send to.
type testCluster struct {
	etcd  *etcdtest.Etcd
	nodes []*clusterProc
	byID  map[string]*clusterProc
	hooks *clusterHooks
}

// clusterHooks records the webhook events the nodes send.
type clusterHooks struct {
	mu     sync.Mutex
	events []clusterHook
}

type clusterHook struct {
	Type, EventID, Reason, Node string
}

func (h *clusterHooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var e clusterHook
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&e); err == nil {
		h.mu.Lock()
		h.events = append(h.events, e)
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *clusterHooks) dump() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprintf("%d events: %+v", len(h.events), h.events[max(0, len(h.events)-10):])
}

// count is how many events of type typ with reason were received for call.
func (h *clusterHooks) count(typ, reason, call string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if e.Type == typ && e.Reason == reason && e.EventID == call {
			n++
		}
	}
	return n
}

func startTestCluster(t *testing.T, portBase, maxCalls int, ids ...string) *testCluster {
	t.Helper()
	etcdtest.Require(t)
	bin := buildBinary(t)
	c := &testCluster{etcd: etcdtest.Start(t), byID: map[string]*clusterProc{}, hooks: &clusterHooks{}}
	hooks := httptest.NewServer(c.hooks)
	t.Cleanup(hooks.Close)
	for i, id := range ids {
		n := startClusterNode(t, bin, c.etcd.Endpoint, id, portBase+i*2*maxCalls, maxCalls,
			"--webhook-url", hooks.URL+"/hook", "--webhook-secret", "cluster-test-webhook-secret")
		c.nodes = append(c.nodes, n)
		c.byID[id] = n
	}
	// Every node sees every other before the test starts placing.
	for _, n := range c.nodes {
		waitUntil(t, "all nodes registered", 10*time.Second, func() bool {
			st, b := n.do("GET", "/v1/cluster", "")
			var v struct{ Nodes []struct{ ID string } }
			return st == 200 && json.Unmarshal(b, &v) == nil && len(v.Nodes) == len(ids)
		})
	}
	return c
}

func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// mediaPair is a publisher and a subscriber in one call.
type mediaPair struct {
	call     string
	pub, sub *client.Client
}

// joinPair joins an audio publisher and a subscriber to call through api
// (any node) and waits for media.
func joinPair(t *testing.T, api *clusterProc, call string, tag string) (*mediaPair, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ac := api.apiClient()
	mp := &mediaPair{call: call}
	for _, who := range []string{"pub" + tag, "sub" + tag} {
		g, err := ac.AddParticipant(ctx, call, who)
		if err != nil {
			return mp, fmt.Errorf("token for %s: %w", who, err)
		}
		c, err := client.Join(ctx, client.Config{SignalingURL: g.SignalingURL, Token: g.Token, TLSConfig: testTLS,
			ParticipantID: who, PublishAudio: strings.HasPrefix(who, "pub"), UDPOnly: true})
		if err != nil {
			return mp, fmt.Errorf("join %s: %w", who, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if mp.pub == nil {
			mp.pub = c
		} else {
			mp.sub = c
		}
	}
	if err := mp.sub.WaitForMedia(ctx, []string{"pub" + tag}, []string{client.KindAudio}); err != nil {
		return mp, err
	}
	return mp, nil
}

func (mp *mediaPair) close() {
	_ = mp.pub.Close()
	_ = mp.sub.Close()
}

// received is how many audio packets the subscriber has had.
func (mp *mediaPair) received() uint64 {
	var n uint64
	for _, r := range mp.sub.Stats().Received {
		n += r.Packets
	}
	return n
}

// flowWatch samples pairs' receive counters until stopped and records the
// longest time any of them went without a new packet.
type flowWatch struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	maxGap  time.Duration
	samples int
}

func watchFlow(pairs ...*mediaPair) *flowWatch {
	w := &flowWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last := make([]uint64, len(pairs))
		lastAt := make([]time.Time, len(pairs))
		for i := range pairs {
			last[i], lastAt[i] = pairs[i].received(), time.Now()
		}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case now := <-tick.C:
				w.mu.Lock()
				w.samples++
				for i, p := range pairs {
					if n := p.received(); n > last[i] {
						last[i], lastAt[i] = n, now
					}
					if gap := now.Sub(lastAt[i]); gap > w.maxGap {
						w.maxGap = gap
					}
				}
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *flowWatch) finish() (time.Duration, int) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxGap, w.samples
}

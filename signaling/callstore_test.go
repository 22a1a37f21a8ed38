package signaling

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orville/orville/cluster"
	"github.com/orville/orville/roommgr"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// fakeEtcd is the cluster state the fake coordinators share.
type fakeEtcd struct {
	mu    sync.Mutex
	nodes map[string]cluster.Node
	pins  map[string]string
	down  bool
}

func (e *fakeEtcd) set(n cluster.Node) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nodes[n.ID] = n
}

func (e *fakeEtcd) pin(call string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pins[call]
}

type fakeCoord struct {
	e    *fakeEtcd
	self string
}

func (f *fakeCoord) Self() string { return f.self }
func (f *fakeCoord) Ready() error {
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	if f.e.down {
		return errors.New("etcd down")
	}
	return nil
}
func (f *fakeCoord) Nodes(context.Context) ([]cluster.Node, error) {
	if err := f.Ready(); err != nil {
		return nil, err
	}
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	var out []cluster.Node
	for _, n := range f.e.nodes {
		out = append(out, n)
	}
	return out, nil
}
func (f *fakeCoord) Owner(_ context.Context, call string) (cluster.Node, error) {
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	id, ok := f.e.pins[call]
	if !ok {
		return cluster.Node{}, cluster.ErrNoPin
	}
	return f.e.nodes[id], nil
}
func (f *fakeCoord) Pin(_ context.Context, call string) error {
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	if f.e.down {
		return errors.New("etcd down")
	}
	if _, ok := f.e.pins[call]; ok {
		return cluster.ErrPinned
	}
	f.e.pins[call] = f.self
	return nil
}

// peerNode is a second node: its own room manager behind a TLS API server.
type peerNode struct {
	srv   *Server
	rooms *roommgr.Manager
	ts    *httptest.Server
}

func newPeerNode(t *testing.T, portStart int, id string, coord Coordinator) *peerNode {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	rooms, err := roommgr.New(roommgr.Config{PortStart: portStart, MaxCalls: 2, MaxParticipants: 4,
		ListenIP: net.IPv4(127, 0, 0, 1), PublicIP: "127.0.0.1", NodeID: id,
		EmptyTimeout: time.Minute, LeaveGrace: time.Minute, MaxCallDuration: time.Hour, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Rooms: rooms, APISecret: apiTestSecret, Logger: log, Coordinator: coord,
		APIAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, SignalingURL: "wss://" + id + ".example.com/v1/rtc"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.APIHandler())
	ts.Config.ErrorLog = zap.NewStdLog(log) // the refused handshake of the pinning check
	ts.StartTLS()
	return &peerNode{srv: srv, rooms: rooms, ts: ts}
}

func (p *peerNode) close() {
	p.ts.Close()
	p.srv.Close()
	p.rooms.Close()
}

func (p *peerNode) node(id string, free int) cluster.Node {
	sum := sha256.Sum256(p.ts.Certificate().Raw)
	return cluster.Node{NodeInfo: cluster.NodeInfo{ID: id, APIURL: p.ts.URL, CertSHA256: hex.EncodeToString(sum[:]), MaxCalls: 2},
		Load: cluster.Load{PairsFree: free}, UpdatedAt: time.Now()}
}

// Placement on another node, per-call requests proxied to the owner, the hop
// header answered locally only, the pinned certificate enforced, and etcd
// loss refusing new calls.
func TestClusterCallStore(t *testing.T) {
	defer goleak.VerifyNone(t)
	e := &fakeEtcd{nodes: map[string]cluster.Node{}, pins: map[string]string{}}
	f := newAPIFixture(t, 43200, func(c *Config) { c.Coordinator = &fakeCoord{e: e, self: "f985"} })
	defer f.close()
	peer := newPeerNode(t, 43210, "beef", &fakeCoord{e: e, self: "beef"})
	defer peer.close()
	e.set(cluster.Node{NodeInfo: cluster.NodeInfo{ID: "f985", MaxCalls: 2}, Load: cluster.Load{PairsFree: 0}})
	e.set(peer.node("beef", 2))

	// This node is full: the call goes to beef, which pins it.
	r := f.authed("POST", "/v1/calls", `{"metadata":{"k":"v"}}`)
	if r.status != http.StatusCreated || !strings.Contains(string(r.body), `"pid":"beef"`) ||
		!strings.Contains(string(r.body), `"signalingUrl":"wss://beef.example.com/v1/rtc"`) {
		t.Fatalf("placed: %d %s", r.status, r.body)
	}
	var ans startCallResponse
	_ = json.Unmarshal(r.body, &ans)
	id := ans.State.EventID
	if p := e.pin(id); p != "beef" {
		t.Fatalf("pin %q", p)
	}
	if r := f.authed("GET", "/v1/calls/"+id, ""); r.status != 200 || !strings.Contains(string(r.body), `"pid":"beef"`) ||
		!strings.Contains(string(r.body), `"metadata":{"k":"v"}`) {
		t.Fatalf("proxied GET: %d %s", r.status, r.body)
	}
	if r := f.authed("POST", "/v1/calls/"+id+"/participants", `{"id":"ann","name":"Ann"}`); r.status != http.StatusCreated ||
		!strings.Contains(string(r.body), "beef.example.com") {
		t.Fatalf("proxied token: %d %s", r.status, r.body)
	}
	wantError(t, f.authed("POST", "/v1/calls/"+id+"/participants", `{"id":"bad id"}`), http.StatusBadRequest, apiCodeBadRequest)
	if r := f.authed("GET", "/v1/calls", ""); r.status != 200 || !strings.Contains(string(r.body), `"pid":"beef"`) {
		t.Fatalf("cluster listing: %d %s", r.status, r.body)
	}

	// A request from another node is answered from this node's calls only.
	req, _ := http.NewRequest("GET", f.ts.URL+"/v1/calls/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+apiTestSecret)
	req.Header.Set(hopHeader, "beef")
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("hop request for another node's call: %d, want 404 (no second hop)", resp.StatusCode)
	}

	// A peer whose certificate is not the registered one is not trusted.
	n := peer.node("beef", 2)
	good := n.CertSHA256
	n.CertSHA256 = strings.Repeat("00", 32)
	e.set(n)
	msg := wantError(t, f.authed("GET", "/v1/calls/"+id, ""), http.StatusBadGateway, apiCodePeerUnreachable)
	if !strings.Contains(msg, "certificate") {
		t.Fatalf("pin mismatch message: %s", msg)
	}
	n.CertSHA256 = good
	e.set(n)

	if r := f.authed("DELETE", "/v1/calls/"+id, ""); r.status != http.StatusNoContent {
		t.Fatalf("proxied DELETE: %d %s", r.status, r.body)
	}
	if _, err := peer.rooms.Get(id); err == nil {
		t.Fatal("call still on its owner after DELETE through another node")
	}

	// Nobody has room: 503 naming --max-calls.
	e.set(peer.node("beef", 0))
	msg = wantError(t, f.authed("POST", "/v1/calls", ""), http.StatusServiceUnavailable, apiCodeNoCapacity)
	if !strings.Contains(msg, "--max-calls") {
		t.Fatalf("no room: %s", msg)
	}
	// etcd away: no new calls, not ready.
	e.mu.Lock()
	e.down = true
	e.mu.Unlock()
	wantError(t, f.authed("POST", "/v1/calls", ""), http.StatusServiceUnavailable, apiCodeClusterUnavailable)
	wantError(t, f.do("GET", "/readyz", "", nil), http.StatusServiceUnavailable, apiCodeClusterUnavailable)
	if r := f.authed("GET", "/v1/cluster", ""); r.status != 200 || !strings.Contains(string(r.body), `"ready":false`) {
		t.Fatalf("cluster view without etcd: %s", r.body)
	}
}

// A node on its own lists itself at /v1/cluster.
func TestClusterViewSingleNode(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newAPIFixture(t, 43220, nil)
	defer f.close()
	f.startCall()
	r := f.authed("GET", "/v1/cluster", "")
	var v clusterView
	if err := json.Unmarshal(r.body, &v); err != nil || r.status != 200 || v.Mode != "single" || v.Self != "f985" || !v.Ready ||
		len(v.Nodes) != 1 || v.Nodes[0].MaxCalls != 2 || v.Nodes[0].Load.Calls != 1 || v.Nodes[0].Load.PairsFree != 1 {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

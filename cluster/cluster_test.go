package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orville/orville/internal/etcdtest"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

// member is a Cluster with fake load and calls.
type member struct {
	*Cluster
	mu    sync.Mutex
	calls map[string]bool
	load  Load
}

func newMember(t *testing.T, endpoint, id string, mod func(*Config)) *member {
	t.Helper()
	m := &member{calls: map[string]bool{}, load: Load{PairsFree: 10}}
	cfg := Config{
		Endpoints: []string{endpoint}, Prefix: "/test/", LeaseTTL: 2 * time.Second,
		LoadInterval: 200 * time.Millisecond,
		Self:         NodeInfo{ID: id, APIURL: "https://" + id, MaxCalls: 10},
		Load: func() Load {
			m.mu.Lock()
			defer m.mu.Unlock()
			return m.load
		},
		LocalCalls: func() []string {
			m.mu.Lock()
			defer m.mu.Unlock()
			var out []string
			for id := range m.calls {
				out = append(out, id)
			}
			return out
		},
		Logger: zap.NewNop(),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Cluster = c
	t.Cleanup(c.Close)
	return m
}

// abandon stops m without leaving: like kill -9, its lease runs out.
func (m *member) abandon() {
	m.cancel()
	m.wg.Wait()
	_ = m.cli.Close()
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) time.Duration {
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

func nodeIDs(t *testing.T, c *Cluster) string {
	t.Helper()
	nodes, err := c.Nodes(context.Background())
	if err != nil {
		return "error: " + err.Error()
	}
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
	}
	return strings.Join(ids, ",")
}

// Registration, load records, pins, and a dead node's expiry: its record and
// pins vanish within the TTL and its loss is reported once, with its calls.
func TestMembershipAndNodeLoss(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after the members closed
	e := etcdtest.Start(t)
	type report struct {
		by, node string
		calls    []string
	}
	reports := make(chan report, 10)
	lostHook := func(by string) func(*Config) {
		return func(c *Config) {
			c.OnNodeLost = func(node string, calls []string) { reports <- report{by, node, calls} }
		}
	}
	a := newMember(t, e.Endpoint, "a", lostHook("a"))
	b := newMember(t, e.Endpoint, "b", lostHook("b"))
	c := newMember(t, e.Endpoint, "c", lostHook("c"))
	for _, m := range []*member{a, b, c} {
		waitFor(t, "ready", 5*time.Second, func() bool { return m.Ready() == nil })
	}
	if got := nodeIDs(t, a.Cluster); got != "a,b,c" {
		t.Fatalf("nodes %q", got)
	}
	// Load records follow the node's figures.
	b.mu.Lock()
	b.load = Load{PairsFree: 3, Calls: 7, PacketsPerSecond: 1234}
	b.mu.Unlock()
	b.Poke()
	waitFor(t, "load update", 3*time.Second, func() bool {
		n, ok, _ := a.Node(context.Background(), "b")
		return ok && n.Load.Calls == 7 && n.Load.PairsFree == 3 && n.MaxCalls == 10
	})

	ctx := context.Background()
	for _, id := range []string{"call1", "call2"} {
		b.mu.Lock()
		b.calls[id] = true
		b.mu.Unlock()
		if err := b.Pin(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Pin(ctx, "call1"); !errors.Is(err, ErrPinned) {
		t.Fatalf("pinning another node's call: %v", err)
	}
	if owner, err := c.Owner(ctx, "call2"); err != nil || owner.ID != "b" {
		t.Fatalf("owner %v %v", owner.ID, err)
	}
	if _, err := c.Owner(ctx, "nope"); !errors.Is(err, ErrNoPin) {
		t.Fatalf("owner of nothing: %v", err)
	}
	// An ended call's pin goes.
	if err := a.Pin(ctx, "acall"); err != nil {
		t.Fatal(err)
	}
	a.Unpin("acall")
	waitFor(t, "unpin", 3*time.Second, func() bool { _, err := c.Owner(ctx, "acall"); return errors.Is(err, ErrNoPin) })

	b.abandon()
	took := waitFor(t, "dead node gone", 4*time.Second, func() bool { return nodeIDs(t, a.Cluster) == "a,c" })
	t.Logf("dead node's registration gone after %v (TTL 2 s)", took)
	pins, err := a.Pins(ctx)
	if err != nil || len(pins) != 0 {
		t.Fatalf("pins of a dead node remain: %v %v", pins, err)
	}
	var got report
	select {
	case got = <-reports:
	case <-time.After(5 * time.Second):
		t.Fatal("no node-lost report")
	}
	if got.node != "b" || strings.Join(sorted(got.calls), ",") != "call1,call2" {
		t.Fatalf("report %+v", got)
	}
	select {
	case again := <-reports:
		t.Fatalf("the loss was reported twice: %+v then %+v", got, again)
	case <-time.After(time.Second):
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// Two nodes racing to pin the same event ids: every id has exactly one
// owner, and the pins in etcd agree with who was told it won.
func TestPinRaceOneOwner(t *testing.T) {
	e := etcdtest.Start(t)
	// Atomicity is under test, not speed: 400 transactions at once get time.
	slow := func(c *Config) { c.OpTimeout, c.LeaseTTL = 10*time.Second, 10*time.Second }
	a := newMember(t, e.Endpoint, "a", slow)
	b := newMember(t, e.Endpoint, "b", slow)
	for _, m := range []*member{a, b} {
		waitFor(t, "ready", 5*time.Second, func() bool { return m.Ready() == nil })
	}
	const n = 200
	won := make([][2]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		for side, m := range []*member{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := m.Pin(context.Background(), fmt.Sprintf("race%03d", i))
				switch {
				case err == nil:
					won[i][side] = true
				case !errors.Is(err, ErrPinned):
					t.Errorf("pin: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	pins, err := a.Pins(context.Background())
	if err != nil || len(pins) != n {
		t.Fatalf("%d pins, %v", len(pins), err)
	}
	owner := map[string]string{}
	for _, p := range pins {
		owner[p.Call] = p.Node
	}
	wins := [2]int{}
	for i := range n {
		id := fmt.Sprintf("race%03d", i)
		if won[i][0] == won[i][1] {
			t.Fatalf("%s: won by a %v, b %v", id, won[i][0], won[i][1])
		}
		want := "a"
		if won[i][1] {
			want = "b"
			wins[1]++
		} else {
			wins[0]++
		}
		if owner[id] != want {
			t.Fatalf("%s pinned to %q, winner %s", id, owner[id], want)
		}
	}
	t.Logf("wins: a %d, b %d", wins[0], wins[1])
}

// etcd down: the node stops being ready within 2/3 of the TTL; etcd back: it is
// ready again and its calls are pinned, without a restart.
func TestEtcdOutageAndReturn(t *testing.T) {
	e := etcdtest.Start(t)
	a := newMember(t, e.Endpoint, "a", func(c *Config) { c.OpTimeout = 500 * time.Millisecond })
	waitFor(t, "ready", 5*time.Second, func() bool { return a.Ready() == nil })
	a.mu.Lock()
	a.calls["kept"] = true
	a.mu.Unlock()
	if err := a.Pin(context.Background(), "kept"); err != nil {
		t.Fatal(err)
	}
	e.Stop()
	waitFor(t, "not ready without etcd", 3*time.Second, func() bool { return a.Ready() != nil })
	if err := a.Pin(context.Background(), "new"); err == nil {
		t.Fatal("pinned a call without etcd")
	}
	// Long enough for the lease to run out on the client side.
	time.Sleep(3 * time.Second)
	a.mu.Lock()
	a.calls["during"] = true // started locally while etcd was away
	a.mu.Unlock()
	e.Restart()
	waitFor(t, "ready again", 10*time.Second, func() bool { return a.Ready() == nil })
	waitFor(t, "calls pinned again", 5*time.Second, func() bool {
		pins, err := a.Pins(context.Background())
		if err != nil {
			return false
		}
		got := map[string]string{}
		for _, p := range pins {
			got[p.Call] = p.Node
		}
		return len(got) == 2 && got["kept"] == "a" && got["during"] == "a"
	})
	if got := nodeIDs(t, a.Cluster); got != "a" {
		t.Fatalf("nodes %q", got)
	}
}

// A second node with the same id is refused (not ready), and the first keeps
// its registration.
func TestDuplicateNodeID(t *testing.T) {
	e := etcdtest.Start(t)
	a := newMember(t, e.Endpoint, "same", nil)
	waitFor(t, "ready", 5*time.Second, func() bool { return a.Ready() == nil })
	b := newMember(t, e.Endpoint, "same", nil)
	time.Sleep(time.Second)
	if err := b.Ready(); err == nil || !strings.Contains(err.Error(), "another node") {
		t.Fatalf("duplicate id ready: %v", err)
	}
	if err := a.Ready(); err != nil {
		t.Fatal(err)
	}
}

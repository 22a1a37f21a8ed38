package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The cluster acceptance run, on real processes: Debian's etcd and three
// `orville serve` nodes with their own ports and media ranges. The steps
// share the cluster and follow each other: placement and media, requests
// through non-owners, two nodes placing at once, kill -9 of a node, etcd
// stopped and back.
func TestClusterAcceptance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three nodes")
	}
	const maxCalls = 24
	c := startTestCluster(t, 26000, maxCalls, "aa01", "bb02", "cc03")
	a, b, cc := c.byID["aa01"], c.byID["bb02"], c.byID["cc03"]

	// 30 calls through one node land on all three, none with more than 60%,
	// each at its owner's address, with media flowing there.
	answers := make([]startAnswer, 30)
	perNode := map[string]int{}
	placing := time.Now()
	for i := range answers {
		answers[i] = a.startCall(t)
		perNode[answers[i].State.PID]++
	}
	t.Logf("30 calls through aa01 in %v (one after another): %v", time.Since(placing).Round(time.Millisecond), perNode)
	if len(perNode) != 3 {
		t.Fatalf("calls landed on %d nodes: %v", len(perNode), perNode)
	}
	for id, n := range perNode {
		if n > 18 {
			t.Fatalf("node %s got %d of 30 calls (more than 60%%): %v", id, n, perNode)
		}
	}
	for _, ans := range answers {
		owner := c.byID[ans.State.PID]
		if owner == nil {
			t.Fatalf("answer names unknown node %q", ans.State.PID)
		}
		host, port, _ := net.SplitHostPort(ans.State.RoomURI)
		p, _ := strconv.Atoi(port)
		if host != "127.0.0.1" || p < owner.portStart || p >= owner.portStart+2*owner.maxCalls || p != ans.Ports.Publish {
			t.Fatalf("call on %s has roomURI %s outside its media range %d+", owner.id, ans.State.RoomURI, owner.portStart)
		}
		if ans.SignalingURL != owner.signaling {
			t.Fatalf("call on %s: signalingUrl %s, want the owner's %s", owner.id, ans.SignalingURL, owner.signaling)
		}
	}
	t.Run("media at the owner's address", func(t *testing.T) {
		// Batches of ten calls at a time keep the clients' load bounded.
		for start := 0; start < len(answers); start += 10 {
			var wg sync.WaitGroup
			errs := make([]error, 10)
			pairs := make([]*mediaPair, 10)
			for j := range 10 {
				ans := answers[start+j]
				wg.Add(1)
				go func() {
					defer wg.Done()
					pairs[j], errs[j] = joinPair(t, a, ans.State.EventID, fmt.Sprint(start+j))
				}()
			}
			wg.Wait()
			for j, err := range errs {
				ans := answers[start+j]
				if err != nil {
					t.Fatalf("call %s on %s: %v", ans.State.EventID, ans.State.PID, err)
				}
				pub, sub := pairs[j].pub.Stats(), pairs[j].sub.Stats()
				host, _, _ := net.SplitHostPort(ans.State.RoomURI)
				wantSub := net.JoinHostPort(host, strconv.Itoa(ans.Ports.Subscribe))
				if pub.Publish.Pair == nil || pub.Publish.Pair.RemoteAddress != ans.State.RoomURI ||
					sub.Subscribe.Pair == nil || sub.Subscribe.Pair.RemoteAddress != wantSub {
					t.Fatalf("call %s: media went to %+v / %+v, want %s and %s", ans.State.EventID,
						pub.Publish.Pair, sub.Subscribe.Pair, ans.State.RoomURI, wantSub)
				}
				pairs[j].close()
			}
		}
	})

	// GET, tokens, participant removal and DELETE through nodes that do not
	// own the call.
	var onB startAnswer
	for _, ans := range answers {
		if ans.State.PID == "bb02" {
			onB = ans
			break
		}
	}
	t.Run("non-owner serves a call", func(t *testing.T) {
		id := onB.State.EventID
		st, body := cc.do("GET", "/v1/calls/"+id, "")
		var ci struct {
			EventID, PID, RoomURI string
		}
		if err := json.Unmarshal(body, &ci); st != 200 || err != nil || ci.EventID != id || ci.PID != "bb02" || ci.RoomURI != onB.State.RoomURI {
			t.Fatalf("GET through cc03: %d %s", st, body)
		}
		st, body = cc.do("POST", "/v1/calls/"+id+"/participants", `{"id":"zed"}`)
		if st != http.StatusCreated || !strings.Contains(string(body), `"signalingUrl":"`+b.signaling+`"`) {
			t.Fatalf("token through cc03: %d %s (want bb02's signaling URL %s)", st, body, b.signaling)
		}
		// A token issued through cc03 and aa01 joins the call on bb02.
		mp, err := joinPair(t, cc, id, "-via-cc")
		if err != nil {
			t.Fatal(err)
		}
		if st, body := a.do("DELETE", "/v1/calls/"+id+"/participants/sub-via-cc", ""); st != http.StatusNoContent {
			t.Fatalf("remove participant through aa01: %d %s", st, body)
		}
		select {
		case <-mp.sub.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("removed participant still connected")
		}
		mp.close()
		if st, body := cc.do("GET", "/v1/calls/"+strings.Repeat("0", 32), ""); st != http.StatusNotFound || !strings.Contains(string(body), "call_not_found") {
			t.Fatalf("unknown call through cc03: %d %s", st, body)
		}
		if st, body := a.do("DELETE", "/v1/calls/"+id, ""); st != http.StatusNoContent {
			t.Fatalf("DELETE through aa01: %d %s", st, body)
		}
		waitUntil(t, "ended call gone everywhere", 5*time.Second, func() bool {
			st1, _ := b.do("GET", "/v1/calls/"+id, "")
			st2, _ := cc.do("GET", "/v1/calls/"+id, "")
			return st1 == 404 && st2 == 404
		})
		listed, errs := b.listed(t)
		if len(listed) != 29 || len(errs) != 0 {
			t.Fatalf("listing through bb02: %d calls, errors %v", len(listed), errs)
		}
		for _, ans := range answers {
			if ans.State.EventID != id && listed[ans.State.EventID] != ans.State.PID {
				t.Fatalf("call %s listed with owner %q, want %s", ans.State.EventID, listed[ans.State.EventID], ans.State.PID)
			}
		}
	})

	// Two nodes placing at once: every answer is a distinct call, listed once
	// with the owner the answer named.
	t.Run("two nodes placing at once", func(t *testing.T) {
		for _, ans := range answers {
			a.do("DELETE", "/v1/calls/"+ans.State.EventID, "")
		}
		var mu sync.Mutex
		got := map[string]string{}
		var wg sync.WaitGroup
		for i := range 24 {
			via := []*clusterProc{a, b}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, body := via.do("POST", "/v1/calls", "")
				var ans startAnswer
				if st != http.StatusCreated || json.Unmarshal(body, &ans) != nil {
					t.Errorf("concurrent start through %s: %d %s", via.id, st, body)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if _, dup := got[ans.State.EventID]; dup {
					t.Errorf("event id %s answered twice", ans.State.EventID)
				}
				got[ans.State.EventID] = ans.State.PID
			}()
		}
		wg.Wait()
		listed, _ := cc.listed(t)
		if len(listed) != len(got) {
			t.Fatalf("%d calls started, %d listed", len(got), len(listed))
		}
		for id, pid := range got {
			if listed[id] != pid {
				t.Fatalf("call %s listed on %q, answer said %s", id, listed[id], pid)
			}
		}
		for id := range got {
			a.do("DELETE", "/v1/calls/"+id, "")
		}
	})

	// orville loadtest through one node spreads over the cluster and says
	// how many calls each node got.
	t.Run("loadtest reports calls per node", func(t *testing.T) {
		// The media of the step before still shows in the load records for
		// up to one write (2 s); placement would send every call to the one
		// node without it. Start from records without media.
		waitUntil(t, "load records without the earlier media", 10*time.Second, func() bool {
			_, body := b.do("GET", "/v1/cluster", "")
			var st struct {
				Nodes []struct {
					Load struct {
						PacketsPerSecond float64 `json:"packetsPerSecond"`
					} `json:"load"`
				} `json:"nodes"`
			}
			if json.Unmarshal(body, &st) != nil || len(st.Nodes) != 3 {
				return false
			}
			for _, n := range st.Nodes {
				if n.Load.PacketsPerSecond >= 500 { // cluster's ppsStep
					return false
				}
			}
			return true
		})
		var stdout, stderr strings.Builder
		code := run([]string{"loadtest", "--api", b.api, "--insecure", "--api-secret", clusterSecret,
			"--calls", "6", "--participants", "2", "--audio-publishers", "1", "--duration", "1s", "--json"},
			&stdout, &stderr, func(string) string { return "" })
		var rep struct {
			Joined       int            `json:"participantsJoined"`
			CallsPerNode map[string]int `json:"callsPerNode"`
			Loss         struct{ PacketsExpected uint64 }
		}
		if err := json.Unmarshal([]byte(stdout.String()), &rep); code != exitOK || err != nil {
			t.Fatalf("loadtest exit %d, %v\n%s\n%s", code, err, stdout.String(), stderr.String())
		}
		total := 0
		for _, n := range rep.CallsPerNode {
			total += n
		}
		t.Logf("loadtest: calls per node %v", rep.CallsPerNode)
		if rep.Joined != 12 || total != 6 || len(rep.CallsPerNode) < 2 || rep.Loss.PacketsExpected == 0 {
			t.Fatalf("loadtest over the cluster: %d joined, calls per node %v, %d packets", rep.Joined, rep.CallsPerNode, rep.Loss.PacketsExpected)
		}
		for id := range rep.CallsPerNode {
			if c.byID[id] == nil {
				t.Fatalf("calls on unknown node %q", id)
			}
		}
	})

	// kill -9 of cc03 while calls on aa01 and bb02 carry media.
	var keep []*mediaPair
	for _, owner := range []*clusterProc{a, b} {
		// Placement follows the load records, which nodes write every 2 s:
		// a node that just carried the loadtest's calls is avoided until its
		// record shows them gone, so the tries span a few records.
		var ans startAnswer
		for range 60 {
			if ans = cc.startCall(t); ans.State.PID == owner.id {
				break
			}
			cc.do("DELETE", "/v1/calls/"+ans.State.EventID, "")
			time.Sleep(100 * time.Millisecond)
		}
		if ans.State.PID != owner.id {
			t.Fatalf("no call placed on %s in 60 tries over 6 s", owner.id)
		}
		mp, err := joinPair(t, b, ans.State.EventID, "-keep-"+owner.id)
		if err != nil {
			t.Fatal(err)
		}
		keep = append(keep, mp)
	}
	// The nodes' registered load follows their media: participants and
	// packets/s of aa01 and bb02 as any node lists them.
	waitUntil(t, "load records show the media", 8*time.Second, func() bool {
		_, body := cc.do("GET", "/v1/cluster", "")
		var v struct {
			Nodes []struct {
				ID   string
				Load struct {
					Calls, Participants, PairsFree int
					PacketsPerSecond, CPU          float64
				}
			}
		}
		if json.Unmarshal(body, &v) != nil {
			return false
		}
		ok := 0
		for _, n := range v.Nodes {
			l := n.Load
			if (n.ID == "aa01" || n.ID == "bb02") && l.Participants >= 2 && l.PacketsPerSecond > 0 && l.CPU > 0 &&
				l.Calls >= 1 && l.PairsFree == maxCalls-l.Calls {
				ok++
			}
		}
		return ok == 2
	})
	flow := watchFlow(keep...)
	t.Run("kill -9 of a node", func(t *testing.T) {
		var onC []string
		for len(onC) < 2 {
			if ans := a.startCall(t); ans.State.PID == "cc03" {
				onC = append(onC, ans.State.EventID)
			}
		}
		cc.kill()
		killed := time.Now()
		took := waitUntil(t, "dead node's calls leave the listing", clusterTTL+3*time.Second, func() bool {
			for _, via := range []*clusterProc{a, b} {
				listed, _ := via.listed(t)
				for _, id := range onC {
					if _, ok := listed[id]; ok {
						return false
					}
				}
			}
			return true
		})
		t.Logf("cc03's calls left GET /v1/calls %v after kill -9 (lease TTL %v)", took, clusterTTL)
		for i := range 8 {
			via := []*clusterProc{a, b}[i%2]
			if ans := via.startCall(t); ans.State.PID == "cc03" {
				t.Fatalf("a new call went to the dead node %v after it died", time.Since(killed))
			}
		}
		waitUntil(t, "dead node leaves GET /v1/cluster", clusterTTL+3*time.Second, func() bool {
			_, body := a.do("GET", "/v1/cluster", "")
			return !strings.Contains(string(body), `"cc03"`)
		})
		// One survivor publishes call.ended (node_lost) for each lost call,
		// once: the events reach its metrics (and its webhooks).
		lostEvents := func() (n int) {
			for _, via := range []*clusterProc{a, b} {
				_, body := via.do("GET", "/metrics", "")
				for _, l := range strings.Split(string(body), "\n") {
					if v, ok := strings.CutPrefix(l, `orville_calls_ended_total{reason="node_lost"} `); ok {
						f, _ := strconv.ParseFloat(v, 64)
						n += int(f)
					}
				}
			}
			return n
		}
		waitUntil(t, "lost calls reported", 5*time.Second, func() bool { return lostEvents() >= len(onC) })
		time.Sleep(500 * time.Millisecond)
		if n := lostEvents(); n != len(onC) {
			t.Errorf("%d call.ended node_lost events for %d lost calls", n, len(onC))
		}
		logs := a.logs.String() + b.logs.String()
		for _, id := range onC {
			if n := strings.Count(logs, `"call":"`+id+`","node":"cc03","reason":"node_lost"`); n != 1 {
				t.Errorf("call %s reported lost %d times", id, n)
			}
		}
		// …and its webhooks deliver each once.
		deadline := time.Now().Add(10 * time.Second)
		for _, id := range onC {
			for c.hooks.count("call.ended", "node_lost", id) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no node_lost webhook for %s; received %s", id, c.hooks.dump())
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		time.Sleep(500 * time.Millisecond)
		for _, id := range onC {
			if n := c.hooks.count("call.ended", "node_lost", id); n != 1 {
				t.Errorf("call %s: %d call.ended node_lost webhooks, want 1", id, n)
			}
		}
	})

	t.Run("etcd stopped and back", func(t *testing.T) {
		c.etcd.Stop()
		waitUntil(t, "nodes refuse new calls without etcd", clusterTTL+3*time.Second, func() bool {
			st1, body := a.do("POST", "/v1/calls", "")
			st2, _ := b.do("POST", "/v1/calls", "")
			return st1 == http.StatusServiceUnavailable && st2 == http.StatusServiceUnavailable &&
				strings.Contains(string(body), "cluster_unavailable")
		})
		time.Sleep(clusterTTL) // past the lease: the nodes must register anew
		c.etcd.Restart()
		took := waitUntil(t, "placement works again through both nodes", 15*time.Second, func() bool {
			for _, via := range []*clusterProc{a, b} {
				if st, _ := via.do("GET", "/readyz", ""); st != http.StatusOK {
					return false
				}
			}
			return true
		})
		for _, via := range []*clusterProc{a, b} {
			via.startCall(t)
		}
		t.Logf("placement back %v after etcd restarted", took)
		// The calls that kept running are listed again (pinned anew).
		waitUntil(t, "running calls listed again", 10*time.Second, func() bool {
			listed, errs := a.listed(t)
			for _, mp := range keep {
				if _, ok := listed[mp.call]; !ok || len(errs) > 0 {
					return false
				}
			}
			return true
		})
	})
	// A draining node gets no new calls; its calls go on.
	t.Run("drain removes a node from placement", func(t *testing.T) {
		if st, body := b.do("POST", "/v1/drain", ""); st != http.StatusAccepted {
			t.Fatalf("drain bb02: %d %s", st, body)
		}
		waitUntil(t, "bb02 registered as draining", 5*time.Second, func() bool {
			_, body := a.do("GET", "/v1/cluster", "")
			var v struct {
				Nodes []struct {
					ID   string
					Load struct{ Draining bool }
				}
			}
			_ = json.Unmarshal(body, &v)
			for _, n := range v.Nodes {
				if n.ID == "bb02" {
					return n.Load.Draining
				}
			}
			return false
		})
		for i := range 6 {
			via := []*clusterProc{a, b}[i%2]
			if ans := via.startCall(t); ans.State.PID != "aa01" {
				t.Fatalf("a new call went to %s while bb02 drains and cc03 is dead", ans.State.PID)
			}
		}
	})
	gap, samples := flow.finish()
	t.Logf("calls on the surviving nodes: longest pause in media %v over %d samples", gap, samples)
	if gap > 1500*time.Millisecond {
		t.Errorf("media on a surviving node paused for %v during the failures", gap)
	}
}

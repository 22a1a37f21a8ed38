package cluster

import (
	"testing"
	"time"
)

func node(id string, free, maxCalls int, pps float64, draining bool) Node {
	return Node{NodeInfo: NodeInfo{ID: id, MaxCalls: maxCalls},
		Load: Load{PairsFree: free, PacketsPerSecond: pps, Draining: draining}, UpdatedAt: time.Now()}
}

func TestRankLeavesOutDrainingAndFull(t *testing.T) {
	p := NewPlacer(1)
	got := p.Rank([]Node{node("full", 0, 10, 0, false), node("drain", 10, 10, 0, true), node("ok", 1, 10, 9000, false)})
	if len(got) != 1 || got[0].ID != "ok" {
		t.Fatalf("%v", got)
	}
	if got := p.Rank([]Node{node("full", 0, 10, 0, false)}); len(got) != 0 {
		t.Fatalf("a full node ranked: %v", got)
	}
}

// Of two random candidates the less busy wins; the busiest of three nodes
// is never first.
func TestRankPrefersLessLoad(t *testing.T) {
	p := NewPlacer(2)
	nodes := []Node{node("busy", 10, 10, 20000, false), node("idle", 10, 10, 100, false), node("mid", 10, 10, 5000, false)}
	for range 100 {
		r := p.Rank(nodes)
		if len(r) != 3 || r[0].ID == "busy" {
			t.Fatalf("%v", r)
		}
	}
}

// Placements since a node's last load record count against it, so a burst
// of calls spreads evenly before any node reports.
func TestRankCountsRecentPlacements(t *testing.T) {
	p := NewPlacer(3)
	nodes := []Node{node("a", 20, 20, 0, false), node("b", 20, 20, 0, false), node("c", 20, 20, 0, false)}
	count := map[string]int{}
	for range 30 {
		first := p.Rank(nodes)[0].ID
		count[first]++
		p.Placed(first)
	}
	for id, n := range count {
		if n < 8 || n > 12 {
			t.Fatalf("uneven: %v (%s)", count, id)
		}
	}
	// Placements fill a node's free pairs: after 20 on a, it is full.
	p2 := NewPlacer(4)
	for range 20 {
		p2.Placed("a")
	}
	for _, n := range p2.Rank(nodes) {
		if n.ID == "a" {
			t.Fatal("a node filled by recent placements still ranked")
		}
	}
}

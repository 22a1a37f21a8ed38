package cluster

import (
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// ppsStep is the packets/s difference placement treats as real: below it two
// nodes count as equally busy and the fuller port range decides. 500 packets/s
// is about one small video call's forwarding.
const ppsStep = 500

// Placer chooses the node for a new call. The score (lower is better), in
// order: packets/s in steps of ppsStep (the forwarding work, which is what
// runs out first), then the share of port pairs in use (counting calls this
// placer put there since the node last wrote its load), then CPU. Among the
// eligible nodes — not draining, a free pair — it takes two at random and
// keeps the better ("power of two choices": nearly as even as always taking
// the best, without every placer piling onto the same node between load
// updates); the rest follow best first, as fallbacks when the first refuses.
type Placer struct {
	mu     sync.Mutex
	rng    *rand.Rand
	placed map[string][]time.Time // node → when this placer put a call there
}

// NewPlacer returns a placer; seed fixes its random choices (tests).
func NewPlacer(seed uint64) *Placer {
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Placer{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), placed: map[string][]time.Time{}}
}

// Placed records that a call was created on node.
func (p *Placer) Placed(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	list := p.placed[node]
	// Keep only the last minute: load records are far fresher than that.
	for len(list) > 0 && now.Sub(list[0]) > time.Minute {
		list = list[1:]
	}
	p.placed[node] = append(list, now)
}

type scored struct {
	n    Node
	pps  int
	used float64
	cpu  float64
}

func (s scored) less(o scored) bool {
	if s.pps != o.pps {
		return s.pps < o.pps
	}
	if s.used != o.used {
		return s.used < o.used
	}
	return s.cpu < o.cpu
}

// Rank orders the nodes a new call may go to, first choice first; draining
// and full nodes are left out, so an empty result means no node has room.
func (p *Placer) Rank(nodes []Node) []Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	var cands []scored
	for _, n := range nodes {
		free := n.Load.PairsFree
		for _, t := range p.placed[n.ID] {
			if t.After(n.UpdatedAt) {
				free-- // placed after the node sampled its load
			}
		}
		if n.Load.Draining || free <= 0 || n.MaxCalls <= 0 {
			continue
		}
		cands = append(cands, scored{n: n, pps: int(n.Load.PacketsPerSecond) / ppsStep,
			used: float64(n.MaxCalls-free) / float64(n.MaxCalls), cpu: n.Load.CPU})
	}
	if len(cands) == 0 {
		return nil
	}
	p.rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	if len(cands) >= 2 && cands[1].less(cands[0]) {
		cands[0], cands[1] = cands[1], cands[0]
	}
	if len(cands) > 2 {
		rest := cands[1:]
		sort.SliceStable(rest, func(i, j int) bool { return rest[i].less(rest[j]) })
	}
	out := make([]Node, len(cands))
	for i, c := range cands {
		out[i] = c.n
	}
	return out
}

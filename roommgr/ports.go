package roommgr

// pairs hands out port-pair slots: slot N is ports start+2N and start+2N+1.
// The lowest free slot goes first, so a freed pair is the next one reused and a
// firewall only ever sees the bottom of the range in light use.
type pairs struct {
	used []bool
	n    int
}

func newPairs(max int) *pairs { return &pairs{used: make([]bool, max)} }

// take returns the lowest free slot not in skip, or -1.
func (p *pairs) take(skip map[int]bool) int {
	for i, u := range p.used {
		if !u && !skip[i] {
			p.used[i] = true
			p.n++
			return i
		}
	}
	return -1
}

func (p *pairs) free(i int) {
	if p.used[i] {
		p.used[i] = false
		p.n--
	}
}

func (p *pairs) inUse() int { return p.n }

package client

import (
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// DefaultTCPFallbackDelay is the reference client rule: UDP first; a
// transport not connected after 3000 ms also tries TCP — ICE-TCP and TURN
// over TLS and TCP on the server's port 443 — and whichever connects first
// is used.
const DefaultTCPFallbackDelay = 3000 * time.Millisecond

// Paths a transport can connect over, as TransportStats.Path reports them.
const (
	PathUDP     = "udp"      // UDP to the media port
	PathTCP     = "tcp"      // ICE-TCP (RFC 6544) to the client port
	PathTURNTLS = "turn-tls" // relayed by the server's TURN over TLS
	PathTURNTCP = "turn-tcp" // relayed by the server's TURN over TCP
)

// Design. Each of the two peer connections has one ICE agent that knows every
// path from the start but is held back from TCP by a gate:
//
//   - the server's ICE-TCP candidates are taken out of its descriptions and
//     added (trickled, RFC 8838) only when the gate opens;
//   - the TURN over TLS/TCP dials (turnDialer) wait for the gate.
//
// The gate opens DefaultTCPFallbackDelay after the client started joining
// unless the transport connected first, at once with ForceTCP, never with
// UDPOnly, and early when the other transport already connected over TCP
// (UDP evidently does not get through). ICE then picks the first pair that
// works — UDP pairs keep being checked — and nominates it. Once connected,
// the gate stops for good: pending TURN dials give up and the TURN
// connections that lost are closed. (pion offers no way to drop an unused
// ICE-TCP candidate; the server drops its idle connection with the call.)
//
// The alternative, a second pair of peer connections on TCP and a re-join,
// would need the server to keep two sessions per participant and would
// renegotiate every track; one agent per transport is what browsers do.

// gate holds one transport's TCP paths back until the fallback time.
type gate struct {
	name  string
	log   *zap.Logger
	open  chan struct{} // closed when TCP may start
	stop  chan struct{} // closed when the transport connected or closed
	timer *time.Timer

	mu        sync.Mutex
	opened    bool
	stopped   bool
	onOpen    func()                    // adds the held-back candidates
	held      []webrtc.ICECandidateInit // the server's TCP candidates
	turnConns []turnConn                // TURN connections dialed for this transport
	sibling   *gate
	noICETCP  bool // Config.TCPPaths without PathTCP
}

type turnConn struct {
	conn   net.Conn
	secure bool
}

// newGate returns a gate opening after delay; delay < 0 never opens it.
// Without iceTCP the server's ICE-TCP candidates are dropped, not held.
func newGate(name string, delay time.Duration, iceTCP bool, log *zap.Logger) *gate {
	g := &gate{name: name, log: log, open: make(chan struct{}), stop: make(chan struct{}), noICETCP: !iceTCP}
	switch {
	case delay == 0:
		g.openNow("forced")
	case delay > 0:
		g.timer = time.AfterFunc(delay, func() { g.openNow("not connected after the fallback delay") })
	}
	return g
}

// openNow lets TCP start. Idempotent; does nothing once stopped.
func (g *gate) openNow(why string) {
	g.mu.Lock()
	if g.opened || g.stopped {
		g.mu.Unlock()
		return
	}
	g.opened = true
	close(g.open)
	f := g.onOpen
	g.mu.Unlock()
	g.log.Debug("starting TCP paths", zap.String("transport", g.name), zap.String("why", why))
	if f != nil {
		f()
	}
}

// hold keeps a server TCP candidate back until the gate opens; false means
// the gate is open and the candidate may be used now.
func (g *gate) hold(c webrtc.ICECandidateInit) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.noICETCP {
		return true // held forever: never used
	}
	if g.opened {
		return false
	}
	for _, h := range g.held {
		if h.Candidate == c.Candidate {
			return true
		}
	}
	g.held = append(g.held, c)
	return true
}

// takeHeld returns the held candidates once the gate is open.
func (g *gate) takeHeld() []webrtc.ICECandidateInit {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.opened {
		return nil
	}
	h := g.held
	g.held = nil
	return h
}

// track records a TURN connection; false if the race is already over.
func (g *gate) track(c net.Conn, secure bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.turnConns = append(g.turnConns, turnConn{c, secure})
	return true
}

// connected ends the race: path won. TURN connections that did not win are
// closed; a TCP win opens the other transport's gate at once.
func (g *gate) connected(path string) {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return
	}
	g.stopped = true
	close(g.stop)
	if g.timer != nil {
		g.timer.Stop()
	}
	var losers []net.Conn
	for _, tc := range g.turnConns {
		if (path == PathTURNTLS && tc.secure) || (path == PathTURNTCP && !tc.secure) {
			continue
		}
		losers = append(losers, tc.conn)
	}
	g.turnConns = nil
	sib := g.sibling
	g.mu.Unlock()
	for _, c := range losers {
		_ = c.Close()
	}
	if len(losers) > 0 {
		g.log.Debug("closed TURN connections that lost", zap.String("transport", g.name), zap.Int("n", len(losers)))
	}
	if path != PathUDP && sib != nil {
		sib.openNow("the other transport needed TCP")
	}
}

func (g *gate) setSibling(s *gate) {
	g.mu.Lock()
	g.sibling = s
	g.mu.Unlock()
}

// close stops the gate when the transport closes, so no dial stays blocked.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.timer != nil {
		g.timer.Stop()
	}
	if !g.stopped {
		g.stopped = true
		close(g.stop)
	}
}

// stripTCPCandidates removes the ICE-TCP candidates from a server
// description while the gate is closed, holding them for later. The SDP
// stays otherwise byte for byte the same.
func (g *gate) stripTCPCandidates(sdp string) string {
	g.mu.Lock()
	keep := g.opened && !g.noICETCP
	g.mu.Unlock()
	if keep || !strings.Contains(sdp, " tcp ") && !strings.Contains(sdp, " TCP ") {
		return sdp
	}
	lines := strings.SplitAfter(sdp, "\n")
	out := make([]string, 0, len(lines))
	mline := -1
	for _, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		switch {
		case strings.HasPrefix(t, "m="):
			mline++
		case strings.HasPrefix(t, "a=candidate:") && isTCPCandidate(strings.TrimPrefix(t, "a=")):
			// BUNDLE: one transport, so any media section names it.
			idx := uint16(max(mline, 0))
			if g.hold(webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(t, "a="), SDPMLineIndex: &idx}) {
				continue
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

// isTCPCandidate reports whether an RFC 8839 §5.1 candidate attribute
// ("candidate:<foundation> <component> <transport> …") is TCP.
func isTCPCandidate(c string) bool {
	f := strings.Fields(c)
	return len(f) > 2 && strings.EqualFold(f[2], "tcp")
}

// pathOf names the path of a selected candidate pair.
func pathOf(p *CandidatePair) string {
	switch {
	case p == nil:
		return ""
	case p.LocalType == "relay" && p.RelayProtocol == "tls":
		return PathTURNTLS
	case p.LocalType == "relay" && p.RelayProtocol == "tcp":
		return PathTURNTCP
	case p.LocalType == "relay":
		return "turn-" + p.RelayProtocol
	case strings.EqualFold(p.LocalProtocol, "tcp"):
		return PathTCP
	}
	return PathUDP
}

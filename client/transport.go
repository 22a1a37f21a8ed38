package client

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// transport is one of the client's two peer connections (docs/signaling.md,
// "Transports"): publish (the client offers) or subscribe (the server offers).
type transport struct {
	name string
	c    *Client
	pc   *webrtc.PeerConnection
	log  *zap.Logger

	// Trickle ICE ordering: a candidate must not reach the server before
	// the description it belongs to, and a remote candidate cannot be added
	// before the remote description. Both queues are short-lived.
	mu            sync.Mutex
	localSent     bool
	pendingLocal  []webrtc.ICECandidateInit
	pendingRemote []webrtc.ICECandidateInit

	connectedOnce  sync.Once
	connected      chan struct{} // closed when the transport first connects
	connectedAfter atomic.Int64  // nanoseconds from the dial start

	// gate holds the TCP paths back until the fallback time (fallback.go).
	gate *gate
	// restart is the ICE restart watch's state (icerestart.go).
	restart restartState

	// cfgMu serializes SetConfiguration with GetStats: pion writes the
	// configuration there that GetStats reads, without a lock of its own
	// (a race report in TestICEServersRefresh).
	cfgMu sync.Mutex
}

func newTransport(c *Client, api *webrtc.API, name string, iceServers []webrtc.ICEServer) (*transport, error) {
	log := c.log.With(zap.String("transport", name))
	g := newGate(name, c.fallbackDelay(), c.cfg.tcpPathAllowed(PathTCP), log)
	if c.cfg.UDPOnly {
		iceServers = nil // TURN would be TCP too
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		ICEServers: c.turnDialer.iceServers(iceServers, name, g, c.cfg.tcpPathAllowed),
		// One ICE/DTLS transport per peer connection (RFC 8843 BUNDLE),
		// as the server expects one port per transport.
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		g.close()
		return nil, fmt.Errorf("client: %s peer connection: %w", name, err)
	}
	t := &transport{
		name:      name,
		c:         c,
		pc:        pc,
		log:       log,
		connected: make(chan struct{}),
		gate:      g,
	}
	g.mu.Lock()
	g.onOpen = t.addHeldCandidates
	g.mu.Unlock()
	pc.OnICECandidate(t.onLocalCandidate)
	pc.OnConnectionStateChange(t.onState)
	return t, nil
}

// onLocalCandidate trickles a gathered candidate to the server, after the
// offer or answer. The server is ICE-lite and would also learn our address as
// peer-reflexive from our checks (RFC 8445 §7.3.1.3); trickling just helps.
func (t *transport) onLocalCandidate(cand *webrtc.ICECandidate) {
	if cand == nil {
		return // gathering finished; the protocol has no end-of-candidates
	}
	init := cand.ToJSON()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.localSent {
		t.pendingLocal = append(t.pendingLocal, init)
		return
	}
	t.sendCandidate(init)
}

func (t *transport) sendCandidate(init webrtc.ICECandidateInit) {
	if err := t.c.send(message{Type: "candidate", Transport: t.name, Candidate: &init}); err != nil {
		t.log.Debug("candidate not sent", zap.Error(err))
	}
}

// markLocalSent is called after the offer/answer was queued: from now on
// candidates go out directly, and the ones held back go now.
func (t *transport) markLocalSent() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.localSent {
		return
	}
	t.localSent = true
	for _, init := range t.pendingLocal {
		t.sendCandidate(init)
	}
	t.pendingLocal = nil
}

// setRemote applies a remote description and then any remote candidates
// that arrived before it.
func (t *transport) setRemote(desc webrtc.SessionDescription) error {
	desc.SDP = t.gate.stripTCPCandidates(desc.SDP)
	if err := t.pc.SetRemoteDescription(desc); err != nil {
		return fmt.Errorf("client: %s: set remote %s: %w", t.name, desc.Type, err)
	}
	t.addHeldCandidates() // in case the gate opened meanwhile
	t.mu.Lock()
	pending := t.pendingRemote
	t.pendingRemote = nil
	t.mu.Unlock()
	for _, init := range pending {
		t.addCandidate(init)
	}
	return nil
}

// onRemoteCandidate handles a `candidate` message from the server.
func (t *transport) onRemoteCandidate(init webrtc.ICECandidateInit) {
	if isTCPCandidate(init.Candidate) && t.gate.hold(init) {
		return
	}
	t.mu.Lock()
	if t.pc.RemoteDescription() == nil {
		t.pendingRemote = append(t.pendingRemote, init)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.addCandidate(init)
}

// addHeldCandidates adds the server's ICE-TCP candidates once the gate is
// open and a remote description is there to add them to.
func (t *transport) addHeldCandidates() {
	t.mu.Lock()
	ready := t.pc.RemoteDescription() != nil
	t.mu.Unlock()
	if !ready {
		return
	}
	for _, init := range t.gate.takeHeld() {
		t.addCandidate(init)
	}
}

func (t *transport) addCandidate(init webrtc.ICECandidateInit) {
	if err := t.pc.AddICECandidate(init); err != nil {
		t.log.Warn("bad remote candidate", zap.String("candidate", init.Candidate), zap.Error(err))
	}
}

func (t *transport) onState(s webrtc.PeerConnectionState) {
	t.log.Debug("peer connection state", zap.Stringer("state", s))
	switch s {
	case webrtc.PeerConnectionStateConnected:
		t.connectedOnce.Do(func() {
			t.connectedAfter.Store(int64(max(time.Since(t.c.start), 1)))
			close(t.connected)
			// Outside pion's callback: stats read the ICE transport.
			go t.raceWon()
		})
	case webrtc.PeerConnectionStateFailed:
		// Failed is final in pion until an ICE restart: once connected, the
		// watch restarts it (icerestart.go); before, the join has failed.
		select {
		case <-t.connected:
		default:
			t.c.fail(fmt.Errorf("client: %s transport failed (ICE or DTLS)", t.name))
		}
	}
}

// raceWon ends the fallback race once the selected pair is known.
func (t *transport) raceWon() {
	for range 50 {
		if p := t.stats().Pair; p != nil {
			t.log.Debug("connected", zap.String("path", pathOf(p)))
			t.gate.connected(pathOf(p))
			return
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.c.closing:
			return
		}
	}
}

// close tears the peer connection down and waits for pion's goroutines.
func (t *transport) close() {
	t.gate.close() // unblocks TURN dials waiting for the fallback time
	if err := t.pc.GracefulClose(); err != nil {
		t.log.Debug("close peer connection", zap.Error(err))
	}
}

package client

import (
	"context"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// ICE restarts (RFC 8445 §9; docs/signaling.md, "ICE restarts"): a
// transport whose path stopped working gets new ICE credentials and fresh
// connectivity checks, without a new join. The publish transport restarts
// with a new offer of ours (ICERestart); the subscribe transport by asking
// the server (`restartIce`), which offers with new credentials.
//
// When a connected transport goes disconnected, the watch first checks the
// signaling socket with a ping: a socket that does not answer is dead too
// (the network changed), so it is closed and resumed (resume.go), and the
// resume restarts ICE. With the socket alive, a transport that stays
// disconnected for restartAfter, or fails, is restarted; the restart is
// repeated every restartEvery until it connects. The server removes a
// participant whose media stays silent for its grace period.
const (
	iceWatchInterval = 250 * time.Millisecond
	restartAfter     = 3 * time.Second
	restartEvery     = 4 * time.Second
	socketProbe      = 2 * time.Second
	// The client's ICE timeouts (pion's defaults are 5 s, 25 s and 2 s):
	// notice a dead path sooner and check the selected pair every second,
	// which is also what brings a path back once packets flow again.
	iceDisconnectedTimeout = 3 * time.Second
	iceFailedTimeout       = 10 * time.Second
	iceKeepaliveInterval   = time.Second
)

// ICERestarts counts the ICE restarts the client started, both transports.
func (c *Client) ICERestarts() int { return int(c.iceRestarts.Load()) }

// restartState is a transport's share of the watch.
type restartState struct {
	mu          sync.Mutex
	badSince    time.Time // when it stopped being connected; zero while connected
	lastRestart time.Time
	probed      bool // the socket was checked for this outage
}

// isConnected reports whether the transport's peer connection is connected.
func (t *transport) isConnected() bool {
	return t.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
}

// iceWatchLoop watches both transports once they first connected.
func (c *Client) iceWatchLoop() {
	tick := time.NewTicker(iceWatchInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-c.ctx.Done():
			return
		}
		for _, t := range []*transport{c.pub, c.sub} {
			c.watch(t, time.Now())
		}
	}
}

func (c *Client) watch(t *transport, now time.Time) {
	select {
	case <-t.connected:
	default:
		return // still joining: the TCP fallback's business (fallback.go)
	}
	state := t.pc.ConnectionState()
	r := &t.restart
	r.mu.Lock()
	if state == webrtc.PeerConnectionStateConnected {
		r.badSince, r.probed = time.Time{}, false
		r.mu.Unlock()
		return
	}
	if state == webrtc.PeerConnectionStateClosed {
		r.mu.Unlock()
		return
	}
	if r.badSince.IsZero() {
		r.badSince = now
	}
	probe := !r.probed && (state == webrtc.PeerConnectionStateDisconnected || state == webrtc.PeerConnectionStateFailed)
	r.probed = r.probed || probe
	due := (state == webrtc.PeerConnectionStateFailed || now.Sub(r.badSince) >= restartAfter) &&
		now.Sub(r.lastRestart) >= restartEvery
	r.mu.Unlock()
	if probe {
		c.goTracked(c.probeSocket)
	}
	if due && c.socket() != nil {
		c.restartICE(t, "transport "+state.String())
	}
}

// probeSocket closes the signaling socket when it does not answer a ping:
// the reader then resumes the session on a new one.
func (c *Client) probeSocket() {
	conn := c.socket()
	if conn == nil || !c.probing.CompareAndSwap(false, true) {
		return // reconnecting, or the other transport's probe runs
	}
	defer c.probing.Store(false)
	ctx, cancel := context.WithTimeout(c.ctx, socketProbe)
	defer cancel()
	if _, err := c.Ping(ctx); err != nil && c.ctx.Err() == nil && c.socket() == conn {
		c.log.Info("signaling socket silent while media is down; reconnecting", zap.Error(err))
		_ = conn.Close()
	}
}

// restartICE restarts one transport's ICE.
func (c *Client) restartICE(t *transport, why string) {
	t.restart.mu.Lock()
	t.restart.lastRestart = time.Now()
	t.restart.mu.Unlock()
	c.iceRestarts.Add(1)
	c.log.Info("restarting ICE", zap.String("transport", t.name), zap.String("why", why))
	if t == c.sub {
		if err := c.send(message{Type: "restartIce", Transport: TransportSubscribe}); err != nil {
			c.log.Debug("restartIce not sent", zap.Error(err))
		}
		return
	}
	offer, err := t.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err == nil {
		err = t.pc.SetLocalDescription(offer)
	}
	if err != nil {
		c.log.Warn("publish ICE restart offer", zap.Error(err))
		return
	}
	c.pubPending.Store(true)
	if err := c.send(message{Type: "offer", Transport: TransportPublish, SDP: offer.SDP}); err != nil {
		c.log.Debug("restart offer not sent", zap.Error(err))
	}
}

// RestartICE restarts ICE on both transports now, as after a network
// change the application knows of (a new interface, a VPN coming up).
func (c *Client) RestartICE() {
	c.restartICE(c.pub, "asked by the application")
	c.restartICE(c.sub, "asked by the application")
}

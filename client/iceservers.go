package client

import (
	"slices"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// onICEServers applies an iceServers message: fresh TURN credentials (also
// the SOCKS relay's, socks.go) before the ones from `joined` expire. Both
// transports use them from their next gathering on (an ICE restart);
// allocations in use keep working with the credentials they were made with.
func (c *Client) onICEServers(servers []webrtc.ICEServer) {
	c.mu.Lock()
	c.iceServers = slices.Clone(servers)
	c.iceRefreshes++
	c.mu.Unlock()
	if c.socks != nil {
		for _, srv := range servers {
			if pass, ok := srv.Credential.(string); ok && srv.Username != "" {
				c.socks.renew(srv.Username, pass) // the SOCKS relay's credentials too
				break
			}
		}
	}
	for _, t := range []*transport{c.pub, c.sub} {
		t.setICEServers(servers)
	}
	c.log.Debug("fresh ICE servers from the server", zap.Int("servers", len(servers)))
}

// setICEServers replaces the transport's ICE servers (through the TURN
// dialer's routes, as at creation).
func (t *transport) setICEServers(servers []webrtc.ICEServer) {
	if t.c.cfg.UDPOnly {
		servers = nil // TURN would be TCP too
	}
	t.cfgMu.Lock()
	defer t.cfgMu.Unlock()
	cfg := t.pc.GetConfiguration()
	cfg.ICEServers = t.c.turnDialer.iceServers(servers, t.name, t.gate, t.c.cfg.tcpPathAllowed)
	if err := t.pc.SetConfiguration(cfg); err != nil {
		t.log.Warn("could not apply fresh ICE servers", zap.Error(err))
	}
}

// ICEServers returns the ICE servers (TURN credentials) the client holds:
// those of `joined`, or of the latest iceServers message.
func (c *Client) ICEServers() []webrtc.ICEServer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.iceServers)
}

// ICEServerRefreshes counts the iceServers messages received.
func (c *Client) ICEServerRefreshes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.iceRefreshes
}

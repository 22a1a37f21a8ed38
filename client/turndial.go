package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

// turnDialTimeout bounds the TCP connect plus TLS handshake to a TURN server.
const turnDialTimeout = 5 * time.Second

// turnDialer opens the client's TURN over TCP and TLS connections for pion
// (SettingEngine.SetICEProxyDialer). Doing it here, not in pion, gives the
// client three things pion lacks: TLS with the client's own TLSConfig (so a
// self-signed deployment certificate works as it does for signaling), the
// 3-second rule (a dial waits until its transport's gate opens), and the
// connections themselves, so the ones that lost the race can be closed.
//
// pion hands the dialer only "host:port", so every TURN URL given to pion
// names a route of its own: turn-<transport>-<n>.orville.invalid (RFC 6761
// reserves .invalid; the name is never resolved).
type turnDialer struct {
	tlsConf *tls.Config
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex
	routes map[string]*turnRoute // by the pseudo host:port pion dials
}

type turnRoute struct {
	addr       string // the real host:port
	secure     bool   // turns: (TLS)
	serverName string
	gate       *gate
}

// newTURNDialer dials with dial (nil: directly; the SOCKS relay's CONNECT
// with Config.SOCKS).
func newTURNDialer(tlsConf *tls.Config, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *turnDialer {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return &turnDialer{tlsConf: tlsConf, dial: dial, routes: map[string]*turnRoute{}}
}

// iceServers rewrites the server's ICE servers for one transport: TURN over
// TCP and TLS URLs go through this dialer behind g; anything else is kept.
// allowed says which TURN paths may be used (Config.TCPPaths).
func (d *turnDialer) iceServers(servers []webrtc.ICEServer, transportName string, g *gate, allowed func(path string) bool) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(servers))
	n := 0
	for _, s := range servers {
		cp := s
		cp.URLs = nil
		for _, raw := range s.URLs {
			u, err := stun.ParseURI(raw)
			if err != nil || (u.Scheme != stun.SchemeTypeTURN && u.Scheme != stun.SchemeTypeTURNS) ||
				(u.Proto != stun.ProtoTypeTCP && !(u.Scheme == stun.SchemeTypeTURNS && u.Proto == stun.ProtoTypeUnknown)) {
				cp.URLs = append(cp.URLs, raw)
				continue
			}
			secure := u.Scheme == stun.SchemeTypeTURNS
			if (secure && !allowed(PathTURNTLS)) || (!secure && !allowed(PathTURNTCP)) {
				continue
			}
			pseudo := fmt.Sprintf("turn-%s-%d.orville.invalid", transportName, n)
			n++
			addr := net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
			d.mu.Lock()
			d.routes[net.JoinHostPort(pseudo, strconv.Itoa(u.Port))] = &turnRoute{
				addr: addr, secure: secure, serverName: u.Host, gate: g}
			d.mu.Unlock()
			scheme := "turn"
			if secure {
				scheme = "turns"
			}
			cp.URLs = append(cp.URLs, fmt.Sprintf("%s:%s:%d?transport=tcp", scheme, pseudo, u.Port))
		}
		if len(cp.URLs) > 0 {
			out = append(out, cp)
		}
	}
	return out
}

var errNotNeeded = errors.New("client: TCP fallback not needed: the transport is connected or closed")

// Dial implements pion's proxy.Dialer.
func (d *turnDialer) Dial(network, addr string) (net.Conn, error) {
	d.mu.Lock()
	r := d.routes[addr]
	d.mu.Unlock()
	if r == nil {
		return nil, fmt.Errorf("client: no TURN route for %s", addr)
	}
	// The 3-second rule: TURN starts with the rest of TCP.
	select {
	case <-r.gate.open:
	case <-r.gate.stop:
		return nil, errNotNeeded
	}
	ctx, cancel := context.WithTimeout(context.Background(), turnDialTimeout)
	defer cancel()
	go func() {
		select {
		case <-r.gate.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	c, err := d.dial(ctx, network, r.addr)
	if err != nil {
		return nil, err
	}
	if r.secure {
		conf := d.tlsConf.Clone()
		if conf == nil {
			conf = &tls.Config{}
		}
		conf.ServerName = r.serverName
		tc := tls.Client(c, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("client: TURN over TLS to %s: %w", r.addr, err)
		}
		c = tc
	}
	if !r.gate.track(c, r.secure) {
		_ = c.Close()
		return nil, errNotNeeded
	}
	return c, nil
}

package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orville/orville/internal/config"
	"github.com/orville/orville/internal/pionlog"
	"github.com/orville/orville/internal/tcpsniff"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
	"github.com/orville/orville/socks"
	"github.com/orville/orville/turnproxy"
	"github.com/pion/ice/v4"
	"go.uber.org/zap"
)

// tcpFront is everything on --tcp-listen (the 443 role): one TCP listener,
// sniffed (internal/tcpsniff) into HTTPS for signaling and the web client,
// ICE-TCP for every call (one pion TCP mux, demultiplexed by ICE ufrag) and
// TURN over TLS/TCP (turnproxy).
type tcpFront struct {
	cfg      *config.Config
	log      *zap.Logger
	sniff    *tcpsniff.Listener
	iceMux   *ice.TCPMuxDefault
	turn     atomic.Pointer[turnproxy.Server]
	http     *http.Server
	secret   []byte
	turnURLs []string
	rooms    atomic.Pointer[roommgr.Manager]
	socksLn  net.Listener // --socks-listen, nil when off (socksfront.go)
	socks    atomic.Pointer[socks.Server]
	stopOnce sync.Once
}

// ICE-TCP mux limits: a connection must send its first binding request
// within firstBindTimeout; one whose ufrag names no running transport is
// dropped after strayConnLife; each buffers at most tcpWriteBuffer bytes.
const (
	firstBindTimeout = 5 * time.Second
	// clientIdleTimeout closes a kept-alive HTTP connection on the client
	// port that is idle between requests: the web client's assets load in
	// a burst, and WebSockets are hijacked (their own timeouts apply), so an
	// idle HTTP connection only holds one of its address's slots.
	clientIdleTimeout = 10 * time.Second
	strayConnLife     = 10 * time.Second
	tcpWriteBuffer    = 256 << 10
	tcpReadPackets    = 64
)

// newTCPFront listens on --tcp-listen and starts sniffing and the ICE-TCP
// mux. TURN and HTTP start in serve, once the room manager and the
// signaling handler exist.
func newTCPFront(cfg *config.Config, tlsConf *tls.Config, log *zap.Logger) (*tcpFront, error) {
	secret := []byte(cfg.TURNSecret)
	if len(secret) == 0 {
		// A separate key per purpose, like the join-token key: handing out
		// TURN credentials must not reveal anything about the API secret.
		m := hmac.New(sha256.New, []byte(cfg.APISecret))
		m.Write([]byte("orville turn rest secret v1"))
		secret = []byte(hex.EncodeToString(m.Sum(nil)))
	}
	if len(secret) < turnproxy.MinSecretLen {
		return nil, fmt.Errorf("--turn-secret (ORVILLE_TURN_SECRET) must be at least %d characters", turnproxy.MinSecretLen)
	}
	u, err := url.Parse(cfg.SignalingURL())
	if err != nil {
		return nil, fmt.Errorf("signaling URL: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.TCPListen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.TCPListen, err)
	}
	sniff, err := tcpsniff.New(tcpsniff.Config{Listener: ln, TLSConfig: tlsConf, Logger: log,
		MaxConnsPerIP: cfg.TCPMaxConnsPerIP})
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	f := &tcpFront{cfg: cfg, log: log, sniff: sniff, secret: secret,
		// What clients dial: the advertised host and port of the signaling URL
		// (RFC 7065 URIs). TLS first: it passes proxies that only allow TLS.
		turnURLs: []string{"turns:" + u.Host + "?transport=tcp", "turn:" + u.Host + "?transport=tcp"}}
	f.iceMux = ice.NewTCPMuxDefault(ice.TCPMuxParams{
		Listener: sniff.ICETCP(), Logger: pionlog.Factory{Log: log.Named("pion")}.NewLogger("tcpmux"),
		ReadBufferSize: tcpReadPackets, WriteBufferSize: tcpWriteBuffer,
		FirstStunBindTimeout: firstBindTimeout, AliveDurationForConnFromStun: strayConnLife,
	})
	if err := f.listenSOCKS(); err != nil {
		_ = f.iceMux.Close()
		_ = sniff.Close()
		return nil, err
	}
	return f, nil
}

// serve starts TURN (relaying to the calls of rooms) and the HTTPS server.
func (f *tcpFront) serve(rooms *roommgr.Manager, h http.Handler) error {
	f.rooms.Store(rooms)
	first, last := f.cfg.MediaPortRange()
	var public []netip.Addr
	for _, a := range []netip.Addr{f.cfg.PublicIP, f.cfg.PublicIPv6} {
		if a.IsValid() {
			public = append(public, a)
		}
	}
	turn, err := turnproxy.New(turnproxy.Config{
		Listener: f.sniff.TURN(), Secret: f.secret, Call: f.call, Granted: f.granted, PortMin: first, PortMax: last,
		PublicIPs: public, BindIP: f.cfg.ListenIP, Logger: f.log,
	})
	if err != nil {
		return err
	}
	f.turn.Store(turn)
	if err := f.startSOCKS(); err != nil {
		return err
	}
	f.http = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       clientIdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(f.log.Named("http").WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
	}
	go func() {
		if err := f.http.Serve(f.sniff.HTTP()); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.log.Error("client listener stopped", zap.Error(err))
		}
	}()
	return nil
}

// call is turnproxy's view of the room manager: the publish port of a
// running call.
func (f *tcpFront) call(id string) (int, bool) {
	rooms := f.rooms.Load()
	if rooms == nil {
		return 0, false
	}
	r, err := rooms.Get(id)
	if err != nil {
		return 0, false
	}
	if ended, _ := r.Ended(); ended {
		return 0, false
	}
	return r.Port, true
}

// granted is turnproxy's (and the SOCKS relay's) view of the grants: the
// credentials' grant is one the call recorded and no removal revoked.
func (f *tcpFront) granted(callID, participant, grant string) bool {
	rooms := f.rooms.Load()
	if rooms == nil {
		return false
	}
	r, err := rooms.Get(callID)
	return err == nil && r.Granted(participant, grant)
}

// iceServers is signaling.Config.ICEServers: TURN over TLS and TCP on the
// client port with fresh credentials for this call and participant, a new
// grant of the call that allows new allocations for --turn-credential-ttl
// (never past the call's end); the same credentials open the SOCKS relay.
func (f *tcpFront) iceServers(callID, participantID string) []signaling.ICEServer {
	rooms := f.rooms.Load()
	if rooms == nil {
		return []signaling.ICEServer{}
	}
	r, err := rooms.Get(callID)
	if err != nil {
		return []signaling.ICEServer{}
	}
	exp := time.Now().Add(f.cfg.TURNCredentialTTL)
	if exp.After(r.ExpiresAt) {
		exp = r.ExpiresAt
	}
	grant := r.Grant(participantID, exp)
	if grant == "" {
		return []signaling.ICEServer{} // removed, or the call ended
	}
	user, pass := turnproxy.Credentials(f.secret, callID, grant, participantID, exp)
	return []signaling.ICEServer{{URLs: f.turnURLs, Username: user, Credential: pass}}
}

// iceRefresh is signaling.Config.ICERefresh: half the credentials' life, so
// a client always holds credentials good for new allocations (an ICE restart).
func (f *tcpFront) iceRefresh() time.Duration { return f.cfg.TURNCredentialTTL / 2 }

// participantRemoved is roommgr's OnRemove: its grants are revoked already;
// its relays close now.
func (f *tcpFront) participantRemoved(callID, participantID string) {
	if t := f.turn.Load(); t != nil {
		t.EndParticipant(callID, participantID)
	}
	if s := f.socks.Load(); s != nil {
		s.EndParticipant(callID, participantID)
	}
}

// callEnded is roommgr's OnEnd: the call's relays close with it.
func (f *tcpFront) callEnded(id, _ string) {
	if t := f.turn.Load(); t != nil {
		t.EndCall(id)
	}
	if s := f.socks.Load(); s != nil {
		s.EndCall(id)
	}
}

// shutdown stops HTTP gracefully (hijacked WebSockets are the signaling
// server's to close), then TURN, the ICE-TCP mux and the listener.
// Idempotent.
func (f *tcpFront) shutdown(ctx context.Context) {
	f.stopOnce.Do(func() {
		if f.http != nil {
			_ = f.http.Shutdown(ctx)
		}
		if t := f.turn.Load(); t != nil {
			_ = t.Close()
		}
		if s := f.socks.Load(); s != nil {
			_ = s.Close()
		} else if f.socksLn != nil {
			_ = f.socksLn.Close()
		}
		_ = f.iceMux.Close()
		_ = f.sniff.Close()
	})
}

package signaling

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/orville/orville/cluster"
	"github.com/orville/orville/roommgr"
	"go.uber.org/zap"
)

// ICEServer is the WebRTC RTCIceServer shape handed to clients.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Config is the signaling layer's configuration.
type Config struct {
	// Rooms is the room manager calls are created in.
	Rooms *roommgr.Manager
	// APISecret authenticates the messaging server (Authorization: Bearer).
	APISecret string
	// APIAllow lists the source networks allowed to use the API.
	APIAllow []netip.Prefix
	// TokenSecret signs join tokens; empty derives one from APISecret.
	TokenSecret []byte
	// TokenTTL is how long a join token stays valid (default 10 min).
	TokenTTL time.Duration
	// Cluster is the start-call answer's "cluster" (default "enterprise").
	Cluster string
	// SignalingURL is what clients are told to dial (wss://host:443/v1/rtc).
	SignalingURL string
	// ICEServers returns the ICE servers for one participant (TURN credentials
	// are per call and participant); nil means none.
	ICEServers func(callID, participantID string) []ICEServer
	// ICERefresh is how often a joined client gets fresh ICE servers (an
	// iceServers message): less than the credentials' lifetime; 0 never.
	ICERefresh time.Duration
	// SOCKSAddr, if set, is the SOCKS5 relay (host:port) advertised in the
	// join answer, with the participant's TURN credentials as its own.
	SOCKSAddr string
	// Logger is required.
	Logger *zap.Logger
	// Metrics, if set, counts API requests by route and status.
	Metrics APIMetrics
	// MetricsHandler (Prometheus exposition) and LogLevelHandler (zap's
	// AtomicLevel: GET, PUT {"level":"debug"}) are operator routes on the API
	// listener, behind the same source and secret checks; nil leaves them out.
	MetricsHandler, LogLevelHandler http.Handler
	// Coordinator, if set, makes this node one of a cluster (package
	// cluster): new calls are placed on any node, per-call requests reach
	// the call's owner. Nil is a single node, exactly as without a cluster.
	Coordinator Coordinator
	// Load, if set, samples this node's load for GET /v1/cluster on a
	// single node (a cluster lists the load its nodes registered).
	Load func() cluster.Load
	// Web, if set, is served at / on the client listener (the web client,
	// package web); /v1/rtc and /healthz take precedence.
	Web http.Handler
	// ResumeGrace is how long a participant whose WebSocket dropped keeps
	// its place for a resume (default DefaultResumeGrace).
	ResumeGrace time.Duration
}

// DefaultResumeGrace covers a phone moving between networks and a
// WebSocket reconnecting with backoff.
const DefaultResumeGrace = 20 * time.Second

// APIMetrics receives one call per API request.
type APIMetrics interface {
	APIRequest(route string, status int)
}

func (c *Config) validate() error {
	if c.Rooms == nil || c.Logger == nil {
		return errors.New("signaling: Rooms and Logger are required")
	}
	if len(c.APISecret) < 16 {
		return errors.New("signaling: the API secret must be at least 16 characters")
	}
	if len(c.APIAllow) == 0 {
		return errors.New("signaling: --api-allow must list at least one network")
	}
	if c.SignalingURL == "" {
		return errors.New("signaling: SignalingURL is required")
	}
	if len(c.TokenSecret) == 0 {
		// A separate key per purpose: a leaked token key must not open the API.
		m := hmac.New(sha256.New, []byte(c.APISecret))
		m.Write([]byte("orville join-token key v1"))
		c.TokenSecret = m.Sum(nil)
	}
	if len(c.TokenSecret) < 16 {
		return fmt.Errorf("signaling: token secret too short (%d bytes)", len(c.TokenSecret))
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 10 * time.Minute
	}
	if c.Cluster == "" {
		c.Cluster = "enterprise"
	}
	if c.ICEServers == nil {
		c.ICEServers = func(string, string) []ICEServer { return []ICEServer{} }
	}
	if c.Metrics == nil {
		c.Metrics = nopMetrics{}
	}
	if c.ResumeGrace < 0 {
		return fmt.Errorf("signaling: resume grace %v is negative", c.ResumeGrace)
	}
	if c.ResumeGrace == 0 {
		c.ResumeGrace = DefaultResumeGrace
	}
	return nil
}

type nopMetrics struct{}

func (nopMetrics) APIRequest(string, int) {}

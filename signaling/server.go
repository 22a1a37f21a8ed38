// Package signaling is Orville's control plane: the HTTP API the messaging
// server uses (TCP 444) and the WebSocket channel clients join calls over (TCP
// 443). It never sees media or media keys.
package signaling

import (
	"crypto/sha256"
	"net/http"
	"regexp"
	"sync"

	"github.com/orville/orville/cluster"
	"github.com/orville/orville/roommgr"
	"go.uber.org/zap"
)

// participantIDPattern bounds ids the messaging server may choose.
var participantIDPattern = regexp.MustCompile(`^[A-Za-z0-9._@:-]{1,64}$`)

// Server holds both the API and the client channel.
type Server struct {
	cfg    Config
	log    *zap.Logger
	rooms  *roommgr.Manager
	tokens tokens
	// local serves this node's calls; clustered, set with a Coordinator,
	// serves the cluster's (callstore.go).
	local     *localCalls
	clustered *clusterCalls

	mu       sync.Mutex
	sessions map[*session]struct{}
	slots    map[[sha256.Size]byte]*slot // resumable participants, by credential hash
	closed   bool
	wg       sync.WaitGroup
}

// New validates cfg and returns a server.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.Named("signaling"), rooms: cfg.Rooms,
		tokens: tokens{key: cfg.TokenSecret, ttl: cfg.TokenTTL}, sessions: map[*session]struct{}{},
		slots: map[[sha256.Size]byte]*slot{}}
	s.local = &localCalls{s: s}
	if co := cfg.Coordinator; co != nil {
		s.local.pin, s.local.pid = co.Pin, co.Self()
		s.clustered = &clusterCalls{s: s, coord: co, local: s.local, placer: cluster.NewPlacer(0),
			peers: &peers{self: co.Self(), secret: cfg.APISecret}}
	}
	return s, nil
}

// ClientHandler serves the client side (TCP 443): the WebSocket at /v1/rtc,
// the health endpoints and, when Config.Web is set, the web client at /.
func (s *Server) ClientHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/rtc", s.serveWS)
	mux.HandleFunc("GET /healthz", s.healthz)
	if s.cfg.Web != nil {
		mux.Handle("GET /", s.cfg.Web)
	}
	return mux
}

// Close ends every client session. Idempotent; calls themselves belong to the
// room manager.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	list := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	for _, ss := range list {
		ss.shutdown()
	}
	s.wg.Wait()
	if s.clustered != nil {
		s.clustered.peers.close()
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Authorized wraps an operator handler (e.g. the run-time log level) with the
// API's access rule: allow-listed source and the API secret.
func (s *Server) Authorized(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.authorize(w, r, accessBearer) {
			h.ServeHTTP(w, r)
		}
	})
}

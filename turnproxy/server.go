// Package turnproxy is Orville's TURN relay (RFC 8656) for clients that reach
// the server only over TCP 443: TURN over TLS or plain TCP, served on the
// shared client port (see internal/tcpsniff), relaying to UDP.
//
// It is not a general TURN server. Credentials are coturn-compatible TURN
// REST credentials bound to one call and participant (Credentials), and the
// only peers ever allowed are that call's two media ports on this server's
// own addresses: refused in the permission handler (RFC 8656 §9) and again
// in the relay socket's WriteTo. Relayed packets go to the media sockets
// inside the host, also when the advertised address is a NAT address.
//
// pion/turn v5 is the TURN stack pion/webrtc v4 already links; v3 would add
// a second STUN, DTLS and TURN implementation to the binary.
package turnproxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orville/orville/internal/pionlog"
	"github.com/pion/turn/v5"
	"go.uber.org/zap"
)

// Server is the relay. Create it with New.
type Server struct {
	cfg     Config
	log     *zap.Logger
	targets []peerTarget
	turn    *turn.Server

	mu     sync.Mutex
	byCall map[string]map[*relayConn]struct{}
	byUser map[string]int
	total  int

	relayed, refused, authFailed atomic.Uint64
	lastRefusedLog               atomic.Int64

	closeOnce sync.Once
}

// Stats counts what the relay did.
type Stats struct {
	Allocations int
	// Relayed counts packets sent to media ports; Refused relay attempts
	// to anything else (permissions and writes); AuthFailed requests with
	// bad, expired or foreign credentials.
	Relayed, Refused, AuthFailed uint64
}

// New starts serving TURN on cfg.Listener.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.Named("turn"), targets: cfg.targets(),
		byCall: map[string]map[*relayConn]struct{}{}, byUser: map[string]int{}}
	ts, err := turn.NewServer(turn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   s.auth,
		QuotaHandler:  s.quota,
		LoggerFactory: pionlog.Factory{Log: s.log},
		ListenerConfigs: []turn.ListenerConfig{{
			Listener:              idleListener{cfg.Listener, cfg.IdleTimeout},
			RelayAddressGenerator: relayGen{s},
			PermissionHandler:     s.permit,
		}},
	})
	if err != nil {
		return nil, err
	}
	s.turn = ts
	return s, nil
}

// auth checks TURN REST credentials (RFC 8489 §9.2 long-term credentials
// with the password derived from the username): unexpired, for a running
// call. pion calls it for every authenticated request, so refreshes stop
// working once the call is over.
func (s *Server) auth(ra *turn.RequestAttributes) (string, []byte, bool) {
	u, err := parseUsername(ra.Username)
	if err == nil && time.Now().After(u.expires) {
		err = errors.New("credentials expired")
	}
	if err == nil {
		if _, ok := s.cfg.Call(u.callID); !ok {
			err = errors.New("call is not running")
		}
	}
	if err != nil {
		s.authFailed.Add(1)
		s.log.Debug("turn credentials refused", zap.String("username", ra.Username),
			zap.Stringer("from", ra.SrcAddr), zap.Error(err))
		return "", nil, false
	}
	// A wrong password fails pion's MESSAGE-INTEGRITY check with this key.
	return ra.Username, turn.GenerateAuthKey(ra.Username, s.cfg.Realm, restPassword(s.cfg.Secret, ra.Username)), true
}

// quota answers 486 Allocation Quota Reached (RFC 8656 §7.2) past the limits.
func (s *Server) quota(username, _ string, _ net.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total < s.cfg.MaxAllocations && s.byUser[username] < s.cfg.MaxAllocationsPerUser
}

// permit is pion's permission handler (CreatePermission, ChannelBind): only
// this server's own media addresses. The port is checked per packet in
// relayConn.WriteTo, since TURN permissions are per IP address.
func (s *Server) permit(_ net.Addr, peer net.IP) bool {
	for _, t := range s.targets {
		if ipEqual(peer, t.peer) {
			return true
		}
	}
	s.refused.Add(1)
	s.logRefused(user{}, &net.UDPAddr{IP: peer})
	return false
}

// logRefused logs a refused peer at most once a second: a client probing
// addresses must not flood the log.
func (s *Server) logRefused(u user, peer net.Addr) {
	now := time.Now().UnixNano()
	last := s.lastRefusedLog.Load()
	if now-last < int64(time.Second) || !s.lastRefusedLog.CompareAndSwap(last, now) {
		return
	}
	s.log.Info("relay to a non-media address refused", zap.Stringer("peer", peer),
		zap.String("call", u.callID), zap.String("participant", u.participant))
}

func (s *Server) register(rc *relayConn) error {
	key := rc.username
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= s.cfg.MaxAllocations || s.byUser[key] >= s.cfg.MaxAllocationsPerUser {
		return errors.New("turnproxy: allocation quota reached")
	}
	m := s.byCall[rc.user.callID]
	if m == nil {
		m = map[*relayConn]struct{}{}
		s.byCall[rc.user.callID] = m
	}
	m[rc] = struct{}{}
	s.byUser[key]++
	s.total++
	return nil
}

func (s *Server) unregister(rc *relayConn) {
	key := rc.username
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.byCall[rc.user.callID]; m != nil {
		delete(m, rc)
		if len(m) == 0 {
			delete(s.byCall, rc.user.callID)
		}
	}
	if s.byUser[key]--; s.byUser[key] <= 0 {
		delete(s.byUser, key)
	}
	s.total--
}

// EndCall closes every allocation of a call that ended (its relay sockets;
// pion then drops the allocations). Later requests fail authentication.
func (s *Server) EndCall(callID string) {
	s.mu.Lock()
	var list []*relayConn
	for rc := range s.byCall[callID] {
		list = append(list, rc)
	}
	s.mu.Unlock()
	for _, rc := range list {
		_ = rc.Close()
	}
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := s.total
	s.mu.Unlock()
	return Stats{Allocations: n, Relayed: s.relayed.Load(), Refused: s.refused.Load(), AuthFailed: s.authFailed.Load()}
}

// Close stops the relay: the listener, every connection and allocation.
// Idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.turn.Close() })
	return err
}

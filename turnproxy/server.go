// Package turnproxy is Orville's TURN relay (RFC 8656) for clients that reach
// the server only over TCP 443: TURN over TLS or plain TCP, served on the
// shared client port (see internal/tcpsniff), relaying to UDP.
//
// It is not a general TURN server. Credentials are coturn-compatible TURN
// REST credentials bound to one call and participant (Credentials), and the
// only peers ever allowed are that call's two media ports on this server's
// own addresses, checked three times:
//
//   - CreatePermission and ChannelBind naming any other peer are answered
//     403 Forbidden (filter.go). A permission is per IP address (RFC 8656
//     §9.1: the port of XOR-PEER-ADDRESS is ignored), so refusing a request
//     whose port is wrong is policy on top of the RFC; a channel is bound to
//     one transport address (§11.2), so its port is checked exactly;
//   - pion's permission handler allows only this server's media addresses;
//   - the relay socket's WriteTo sends only to the two ports, so Send
//     indications to another port of an allowed address — which the per-IP
//     permission cannot stop — are dropped and counted.
//
// Credentials allow new allocations until they expire (a short TTL; clients
// get fresh ones over signaling); an allocation made with them lives on, and
// may be refreshed, until the participant is removed or the call ends, which
// revokes them (Config.Granted) and closes the allocations at once.
// Relayed packets go to the media sockets inside the host, also when the
// advertised address is a NAT address.
//
// pion/turn v5 is the TURN stack pion/webrtc v4 already links; v3 would add
// a second STUN, DTLS and TURN implementation to the binary.
package turnproxy

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orville/orville/internal/pionlog"
	"github.com/pion/stun/v4"
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
	conns  map[*filterConn]struct{}

	relayed, refused, refusedRequests, authFailed atomic.Uint64
	lastRefusedLog                                atomic.Int64

	closeOnce sync.Once
}

// Stats counts what the relay did.
type Stats struct {
	Allocations int
	// Relayed counts packets sent to media ports; Refused relay attempts
	// to anything else (permissions and writes); RefusedRequests
	// CreatePermission and ChannelBind requests answered 403; AuthFailed
	// requests with bad, expired, revoked or foreign credentials.
	Relayed, Refused, RefusedRequests, AuthFailed uint64
}

// New starts serving TURN on cfg.Listener.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.Named("turn"), targets: cfg.targets(),
		byCall: map[string]map[*relayConn]struct{}{}, byUser: map[string]int{}, conns: map[*filterConn]struct{}{}}
	ts, err := turn.NewServer(turn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   s.auth,
		QuotaHandler:  s.quota,
		LoggerFactory: pionlog.Factory{Log: s.log},
		ListenerConfigs: []turn.ListenerConfig{{
			Listener:              connListener{Listener: cfg.Listener, s: s},
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
// with the password derived from the username): for a running call, not
// revoked, and unexpired — except that an allocation made while they were
// valid may still be refreshed and given permissions and channels with them
// (pion matches the request to the allocation of its connection and
// username). pion calls it for every authenticated request.
func (s *Server) auth(ra *turn.RequestAttributes) (string, []byte, bool) {
	u, err := ParseUsername(ra.Username)
	if err == nil {
		if _, ok := s.cfg.Call(u.CallID); !ok {
			err = errors.New("call is not running")
		} else if !s.cfg.Granted(u.CallID, u.Participant, u.Grant) {
			err = errors.New("credentials revoked: the participant was removed")
		} else if time.Now().After(u.Expires) && (ra.Method == stun.MethodAllocate || !s.hasAllocation(ra.Username)) {
			err = errors.New("credentials expired")
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

func (s *Server) hasAllocation(username string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byUser[username] > 0
}

// quota answers 486 Allocation Quota Reached (RFC 8656 §7.2) past the limits.
func (s *Server) quota(username, _ string, _ net.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total < s.cfg.MaxAllocations && s.byUser[username] < s.cfg.MaxAllocationsPerUser
}

// permit is pion's permission handler (CreatePermission, ChannelBind): only
// this server's own media addresses. Ports are checked before (filter.go)
// and after (relayConn.WriteTo), since TURN permissions are per IP address.
func (s *Server) permit(_ net.Addr, peer net.IP) bool {
	if s.isTarget(peer) {
		return true
	}
	s.refused.Add(1)
	s.logRefused(User{}, &net.UDPAddr{IP: peer})
	return false
}

// isTarget reports whether ip is one of this server's media addresses.
func (s *Server) isTarget(ip net.IP) bool {
	for _, t := range s.targets {
		if ipEqual(ip, t.peer) {
			return true
		}
	}
	return false
}

// logRefused logs a refused peer at most once a second: a client probing
// addresses must not flood the log.
func (s *Server) logRefused(u User, peer net.Addr) {
	now := time.Now().UnixNano()
	last := s.lastRefusedLog.Load()
	if now-last < int64(time.Second) || !s.lastRefusedLog.CompareAndSwap(last, now) {
		return
	}
	s.log.Info("relay to a non-media address refused", zap.Stringer("peer", peer),
		zap.String("call", u.CallID), zap.String("participant", u.Participant))
}

func (s *Server) register(rc *relayConn) error {
	key := rc.username
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= s.cfg.MaxAllocations || s.byUser[key] >= s.cfg.MaxAllocationsPerUser {
		return errors.New("turnproxy: allocation quota reached")
	}
	m := s.byCall[rc.user.CallID]
	if m == nil {
		m = map[*relayConn]struct{}{}
		s.byCall[rc.user.CallID] = m
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
	if m := s.byCall[rc.user.CallID]; m != nil {
		delete(m, rc)
		if len(m) == 0 {
			delete(s.byCall, rc.user.CallID)
		}
	}
	if s.byUser[key]--; s.byUser[key] <= 0 {
		delete(s.byUser, key)
	}
	s.total--
}

// EndCall closes every allocation of a call that ended and the connections
// that carried them. Later requests fail authentication.
func (s *Server) EndCall(callID string) { s.end(callID, "") }

// EndParticipant closes the allocations and connections of a participant
// who was removed (its credentials are revoked already, Config.Granted).
func (s *Server) EndParticipant(callID, participant string) { s.end(callID, participant) }

func (s *Server) end(callID, participant string) {
	s.mu.Lock()
	var relays []*relayConn
	for rc := range s.byCall[callID] {
		if participant == "" || rc.user.Participant == participant {
			relays = append(relays, rc)
		}
	}
	var conns []*filterConn
	for c := range s.conns {
		if c.carries(callID, participant) {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	// Closing a relay socket makes pion delete its allocation; closing the
	// connection ends the client's TURN session.
	for _, rc := range relays {
		_ = rc.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

func (s *Server) track(c *filterConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		return false // closed
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) forget(c *filterConn) {
	s.mu.Lock()
	if s.conns != nil {
		delete(s.conns, c)
	}
	s.mu.Unlock()
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := s.total
	s.mu.Unlock()
	return Stats{Allocations: n, Relayed: s.relayed.Load(), Refused: s.refused.Load(),
		RefusedRequests: s.refusedRequests.Load(), AuthFailed: s.authFailed.Load()}
}

// Close stops the relay: the listener, every connection and allocation.
// Idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		err = s.turn.Close()
		s.mu.Lock()
		conns := s.conns
		s.conns = nil
		s.mu.Unlock()
		for c := range conns {
			_ = c.Conn.Close()
		}
	})
	return err
}

// MediaAddr is one media address clients may name (Peer: an advertised or
// local address) and where the media sockets listen for it inside the host.
type MediaAddr struct{ Peer, Dst netip.Addr }

// MediaAddrs lists the addresses the relay sends to: the same ones other
// relays (SOCKS) must allow, and no more.
func (s *Server) MediaAddrs() []MediaAddr {
	out := make([]MediaAddr, 0, len(s.targets))
	for _, t := range s.targets {
		out = append(out, MediaAddr{Peer: t.peer, Dst: t.dst})
	}
	return out
}

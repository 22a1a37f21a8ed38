// Package roommgr turns start-call requests into calls: it gives each call a
// port pair from the fixed media range, enforces the limits, and ends calls —
// on request, when nobody joins, after the last participant leaves, or at the
// maximum duration — returning their ports.
package roommgr

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/orville/orville/events"
	"github.com/orville/orville/sfu"
	"go.uber.org/zap"
)

// Errors the API maps to status codes.
var (
	ErrNotFound = errors.New("no such call")
	ErrClosed   = errors.New("room manager is shut down")
)

// NoCapacityError says every port pair is taken (HTTP 503).
type NoCapacityError struct{ MaxCalls int }

func (e *NoCapacityError) Error() string {
	return fmt.Sprintf("all %d calls are in use: raise --max-calls (ORVILLE_MAX_CALLS) to allow more concurrent calls", e.MaxCalls)
}

// CreateOptions are the optional fields of a start-call request.
type CreateOptions struct {
	MaxParticipants int             // 0: the server's default
	TTL             time.Duration   // 0: --max-call-duration; never longer
	Metadata        json.RawMessage // opaque, returned as given
}

// Manager owns every room.
type Manager struct {
	cfg Config
	log *zap.Logger

	mu           sync.Mutex
	rooms        map[string]*Room
	pairs        *pairs
	closed       bool
	draining     bool
	drainStarted chan struct{}
	wg           sync.WaitGroup
}

// New validates cfg and returns an empty manager.
func New(cfg Config) (*Manager, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, log: cfg.Logger.Named("roommgr"), rooms: map[string]*Room{}, pairs: newPairs(cfg.MaxCalls),
		drainStarted: make(chan struct{})}, nil
}

// Config returns the manager's configuration.
func (m *Manager) Config() Config { return m.cfg }

// Create starts a call on the lowest free port pair. A pair whose ports turn
// out to be taken by another program is skipped (and logged), never retried
// outside the range.
func (m *Manager) Create(opts CreateOptions) (*Room, error) {
	maxP := m.cfg.MaxParticipants
	if opts.MaxParticipants > 0 && opts.MaxParticipants < maxP {
		maxP = opts.MaxParticipants
	}
	dur := m.cfg.MaxCallDuration
	if opts.TTL > 0 && opts.TTL < dur {
		dur = opts.TTL
	}
	skip := map[int]bool{}
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		if m.draining {
			m.mu.Unlock()
			return nil, ErrDraining
		}
		slot := m.pairs.take(skip)
		m.mu.Unlock()
		if slot < 0 {
			return nil, &NoCapacityError{MaxCalls: m.cfg.MaxCalls}
		}
		r, err := m.open(slot, maxP, dur, opts.Metadata)
		if err == nil {
			return r, nil
		}
		m.log.Warn("port pair unavailable", zap.Int("port", m.cfg.PortStart+2*slot), zap.Error(err))
		m.mu.Lock()
		m.pairs.free(slot)
		m.mu.Unlock()
		skip[slot] = true
	}
}

func (m *Manager) open(slot, maxP int, dur time.Duration, meta json.RawMessage) (*Room, error) {
	id := newEventID()
	port := m.cfg.PortStart + 2*slot
	var adv []string
	for _, ip := range []string{m.cfg.PublicIP, m.cfg.PublicIPv6} {
		if ip != "" {
			adv = append(adv, ip)
		}
	}
	ev := newRoomEvents(m.cfg.Events, id)
	call, err := sfu.NewCall(sfu.Config{
		ID: id, ListenIP: m.cfg.ListenIP, PublishPort: port, SubscribePort: port + 1,
		AdvertiseIPs: adv, Logger: m.cfg.Logger, Observer: m.cfg.Observer, Tap: m.cfg.Tap, AudioTopN: m.cfg.AudioTopN,
		TCPMux: m.cfg.TCPMux, ICEFailedTimeout: m.cfg.ResumeGrace, Net: m.cfg.Net, OnTrack: ev.track,
		LastN: m.cfg.LastN,
	})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	r := &Room{ID: id, Port: port, slot: slot, CreatedAt: now, ExpiresAt: now.Add(dur),
		MaxParticipants: maxP, Metadata: meta, call: call, ev: ev, m: m, done: make(chan struct{})}
	m.mu.Lock()
	m.rooms[id] = r
	m.mu.Unlock()
	r.start(dur)
	m.log.Info("call started", zap.String("call", id), zap.Int("port", port), zap.Int("maxParticipants", maxP))
	m.cfg.Events.Publish(events.Event{Type: events.CallStarted, CallID: id})
	return r, nil
}

// newEventID returns 32 hex digits, like the reference deployment's eventId.
func newEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewNodeID returns a random 4-hex-digit node id ("pid").
func NewNodeID() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Get returns the room with that event id.
func (m *Manager) Get(id string) (*Room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.rooms[id]; r != nil {
		return r, nil
	}
	return nil, ErrNotFound
}

// List returns every room, oldest first.
func (m *Manager) List() []*Room {
	m.mu.Lock()
	out := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		out = append(out, r)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// End ends a call (reason as in the signaling protocol, e.g. "ended_by_api").
func (m *Manager) End(id, reason string) error {
	r, err := m.Get(id)
	if err != nil {
		return err
	}
	r.End(reason)
	return nil
}

// PairsInUse and PairsFree report the port-pair pool (for /metrics and readiness).
func (m *Manager) PairsInUse() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pairs.inUse()
}

// PairsFree is MaxCalls − PairsInUse.
func (m *Manager) PairsFree() int { return m.cfg.MaxCalls - m.PairsInUse() }

// release returns r's pair once its sockets are closed.
func (m *Manager) release(r *Room, reason string) {
	m.mu.Lock()
	if m.rooms[r.ID] == r {
		delete(m.rooms, r.ID)
	}
	m.pairs.free(r.slot)
	m.mu.Unlock()
	m.log.Info("call ended", zap.String("call", r.ID), zap.String("reason", reason),
		zap.Duration("duration", time.Since(r.CreatedAt).Round(time.Second)))
	m.cfg.Events.Publish(events.Event{Type: events.CallEnded, CallID: r.ID, Reason: reason})
	if m.cfg.OnEnd != nil {
		m.cfg.OnEnd(r.ID, reason)
	}
}

// Close ends every call (reason "server_shutdown") and refuses new ones.
// Idempotent.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range m.List() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.End("server_shutdown")
		}()
	}
	wg.Wait()
	m.wg.Wait()
}

// RoomURI is host:port for the advertised (or bound) address, IPv6 in brackets.
func RoomURI(ip string, port int) string {
	if ip == "" {
		return ""
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// ParticipantCount is the number of participants in every call (a load
// figure a cluster node registers).
func (m *Manager) ParticipantCount() int {
	n := 0
	for _, r := range m.List() {
		n += r.call.Count()
	}
	return n
}

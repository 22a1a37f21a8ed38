// Package sfu forwards media among a call's participants. One Call owns one
// port pair: every participant's publish transport shares the socket on P and
// every subscribe transport the socket on P+1 (ICE-lite, demultiplexed by ICE
// username fragment). The packet path is uptrack.go → subscriber.go →
// downtrack.go; everything else is control.
//
// Media is end-to-end encrypted by the clients. This package forwards RTP
// payloads untouched and reads only what the codec leaves in the clear (the VP8
// key-frame bit); it never imports the e2ee package.
package sfu

import (
	"errors"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/orville/orville/internal/pionlog"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// ErrCallClosed is returned by Join once the call has ended.
var ErrCallClosed = errors.New("call has ended")

// Call is one call's media plane.
type Call struct {
	cfg   Config
	log   *zap.Logger
	epoch time.Time

	conns          []*net.UDPConn
	muxes          []*ice.UDPMuxDefault
	pubAPI, subAPI *webrtc.API

	mu           sync.Mutex
	participants map[string]*Participant
	closed       bool
	onLeave      func(remaining int)
	closeOnce    sync.Once
}

// NewCall opens the call's two sockets. It fails if either port is taken.
func NewCall(cfg Config) (*Call, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Call{cfg: cfg, epoch: time.Now(), participants: map[string]*Participant{},
		log: cfg.Logger.With(zap.String("call", cfg.ID))}
	for i, port := range []int{cfg.PublishPort, cfg.SubscribePort} {
		conn, err := listenUDP(cfg.ListenIP, port)
		if err != nil {
			c.closeSockets()
			return nil, err
		}
		c.conns = append(c.conns, conn)
		mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{
			// Batched egress (batchconn.go): one sendmmsg for what every
			// writer queued meanwhile.
			UDPConn: newBatchConn(conn, func(error) { c.cfg.Observer.PacketDropped("write") }),
			Logger:  pionlog.Factory{Log: cfg.Logger.Named("pion"), Demote: true}.NewLogger("udpmux"),
		})
		c.muxes = append(c.muxes, mux)
		api, err := newAPI(&c.cfg, mux, i == 0)
		if err != nil {
			c.closeSockets()
			return nil, err
		}
		if i == 0 {
			c.pubAPI = api
		} else {
			c.subAPI = api
		}
	}
	return c, nil
}

// OnLeave registers f to run after a participant has left, with the number
// still in the call (the room manager ends empty calls).
func (c *Call) OnLeave(f func(remaining int)) {
	c.mu.Lock()
	c.onLeave = f
	c.mu.Unlock()
}

// Join adds a participant. A participant id already in the call replaces the
// earlier session (a reconnecting client), which ends with reason "replaced".
func (c *Call) Join(id string, h Handler) (*Participant, error) { return c.JoinNamed(id, "", h) }

// JoinNamed is Join with a display name, carried in ParticipantInfo.
func (c *Call) JoinNamed(id, name string, h Handler) (*Participant, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrCallClosed
	}
	old := c.participants[id]
	c.mu.Unlock()
	if old != nil {
		old.close("replaced")
	}

	p, err := newParticipant(c, id, h)
	if err != nil {
		return nil, err
	}
	p.name = name
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		p.close("ended_by_api")
		return nil, ErrCallClosed
	}
	others := c.othersLocked(p)
	c.participants[id] = p
	c.mu.Unlock()

	info := p.Info()
	for _, o := range others {
		o.handler.ParticipantJoined(info)
		o.mu.Lock()
		ups := make([]*upTrack, 0, len(o.tracks))
		for _, t := range o.tracks {
			ups = append(ups, t)
		}
		o.mu.Unlock()
		for _, up := range ups {
			p.subscribe(up)
		}
	}
	c.log.Info("participant joined", zap.String("participant", id), zap.Int("participants", len(others)+1))
	return p, nil
}

// Participant returns the participant with that id, or nil.
func (c *Call) Participant(id string) *Participant {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.participants[id]
}

// Participants describes everyone in the call, sorted by id.
func (c *Call) Participants() []ParticipantInfo {
	c.mu.Lock()
	list := c.othersLocked(nil)
	c.mu.Unlock()
	out := make([]ParticipantInfo, 0, len(list))
	for _, p := range list {
		out = append(out, p.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Count is the number of participants.
func (c *Call) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.participants)
}

// Remove ends one participant's session with the given reason.
func (c *Call) Remove(id, reason string) bool {
	p := c.Participant(id)
	if p == nil {
		return false
	}
	p.close(reason)
	return true
}

func (c *Call) othersLocked(p *Participant) []*Participant {
	out := make([]*Participant, 0, len(c.participants))
	for _, o := range c.participants {
		if o != p {
			out = append(out, o)
		}
	}
	return out
}

// broadcast runs f for every participant but from.
func (c *Call) broadcast(from *Participant, f func(Handler)) {
	c.mu.Lock()
	others := c.othersLocked(from)
	c.mu.Unlock()
	for _, o := range others {
		f(o.handler)
	}
}

// publish makes a new track available to everybody else.
func (c *Call) publish(p *Participant, up *upTrack) {
	c.mu.Lock()
	others := c.othersLocked(p)
	c.mu.Unlock()
	info := up.info()
	for _, o := range others {
		o.handler.TrackPublished(p.id, info)
		o.subscribe(up)
	}
}

// unpublish removes a track from every subscriber. Safe to call twice.
func (c *Call) unpublish(p *Participant, up *upTrack) {
	up.mu.Lock()
	if up.unpublished {
		up.mu.Unlock()
		return
	}
	up.unpublished = true
	up.mu.Unlock()
	c.mu.Lock()
	others := c.othersLocked(p)
	c.mu.Unlock()
	for _, o := range others {
		o.unsubscribe(up)
		o.handler.TrackUnpublished(p.id, up.id)
	}
}

// leave unregisters p and tells the others.
func (c *Call) leave(p *Participant) {
	c.mu.Lock()
	if c.participants[p.id] == p {
		delete(c.participants, p.id)
	}
	others := c.othersLocked(nil)
	remaining := len(c.participants)
	onLeave := c.onLeave
	c.mu.Unlock()
	for _, o := range others {
		o.handler.ParticipantLeft(p.id)
	}
	if onLeave != nil {
		go onLeave(remaining)
	}
}

// Close ends the call: every participant is closed with reason, then both
// sockets. Idempotent.
func (c *Call) Close(reason string) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.onLeave = nil
		list := c.othersLocked(nil)
		c.mu.Unlock()
		var wg sync.WaitGroup
		for _, p := range list {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.close(reason)
			}()
		}
		wg.Wait()
		c.closeSockets()
		c.log.Info("call closed", zap.String("reason", reason))
	})
}

func (c *Call) closeSockets() {
	for _, m := range c.muxes {
		_ = m.Close()
	}
	for _, conn := range c.conns {
		_ = conn.Close()
	}
}

// Package sfu forwards media among a call's participants. One Call owns one
// port pair: every participant's publish transport shares the socket on P and
// every subscribe transport the socket on P+1 (ICE-lite, demultiplexed by ICE
// username fragment, then by the client's address).
//
// The packet path, top to bottom: socket.go (read, classify) → transport.go
// (SRTP decrypt) → participant_media.go (which stream) → uptrack.go (cache,
// fan out) → downtrack.go (rewrite, SRTP encrypt) → pump.go (one sendmmsg
// per batch). One goroutine per call socket runs it to completion; only
// ICE-TCP transports have a queue. Everything else is control.
//
// Media is end-to-end encrypted by the clients. This package forwards RTP
// payloads untouched and reads only what the codec leaves in the clear (the VP8
// key-frame bit) and header extensions; it never imports the e2ee package.
package sfu

import (
	"errors"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ErrCallClosed is returned by Join once the call has ended.
var ErrCallClosed = errors.New("call has ended")

// Call is one call's media plane.
type Call struct {
	cfg   Config
	log   *zap.Logger
	epoch time.Time
	cert  *certificate

	pubSock, subSock *callSocket

	mu           sync.Mutex
	participants map[string]*Participant
	closed       bool
	onLeave      func(remaining int)
	video        callVideo // the video allocator's (allocator.go)
	closeOnce    sync.Once
	stop         chan struct{}
	wg           sync.WaitGroup
}

// NewCall opens the call's two sockets. It fails if either port is taken.
func NewCall(cfg Config) (*Call, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Call{cfg: cfg, epoch: time.Now(), participants: map[string]*Participant{},
		log: cfg.Logger.With(zap.String("call", cfg.ID)), stop: make(chan struct{}),
		video: callVideo{kick: make(chan struct{}, 1)}}
	var err error
	if c.cert, err = newCertificate(cfg.Certificate); err != nil {
		return nil, err
	}
	if c.pubSock, err = listenSocket(&c.cfg, "publish", cfg.PublishPort); err != nil {
		return nil, err
	}
	if c.subSock, err = listenSocket(&c.cfg, "subscribe", cfg.SubscribePort); err != nil {
		c.pubSock.close()
		return nil, err
	}
	for _, s := range []*callSocket{c.pubSock, c.subSock} {
		p := c.newPump()
		go s.run(p)
	}
	c.wg.Add(3)
	go c.reportLoop()
	go c.speakerLoop()
	go c.videoLoop()
	return c, nil
}

// newPump returns an egress batch toward the subscribe socket for one
// goroutine.
func (c *Call) newPump() *pump {
	return newPump(newBatchWriter(c.subSock.conn, func(error) { c.cfg.Observer.PacketDropped("write") }), c.epoch, c.cfg.Observer)
}

// now is the packet path's clock: nanoseconds since the call began.
func (c *Call) now() int64 { return int64(time.Since(c.epoch)) }

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
		for _, up := range o.publishedTracks() {
			c.subscribeTo(p, up, false)
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

// subscribeTo subscribes p to up unless up is already unpublished; with
// announce, p hears trackPublished first. up.mu orders this against
// unpublish: a subscriber either gets the track and later its removal, or
// neither.
func (c *Call) subscribeTo(p *Participant, up *upTrack, announce bool) {
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.unpublished {
		return
	}
	if announce {
		p.handler.TrackPublished(up.owner.id, up.info())
	}
	p.subscribe(up)
}

// publish makes a new track available to everybody else.
func (c *Call) publish(p *Participant, up *upTrack) {
	if c.cfg.OnTrack != nil {
		up.mu.Lock() // ordered against unpublish, like subscribeTo
		if !up.unpublished {
			c.cfg.OnTrack(p.id, up.info(), true)
		}
		up.mu.Unlock()
	}
	c.mu.Lock()
	others := c.othersLocked(p)
	c.mu.Unlock()
	for _, o := range others {
		c.subscribeTo(o, up, true)
	}
}

// unpublish removes a track from every subscriber. Safe to call twice.
func (c *Call) unpublish(p *Participant, up *upTrack) {
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.unpublished {
		return
	}
	up.unpublished = true
	c.mu.Lock()
	others := c.othersLocked(p)
	c.mu.Unlock()
	for _, o := range others {
		o.unsubscribe(up)
		o.handler.TrackUnpublished(p.id, up.id)
	}
	if c.cfg.OnTrack != nil {
		c.cfg.OnTrack(p.id, up.info(), false)
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
		close(c.stop)
		c.wg.Wait()
		c.pubSock.close()
		c.subSock.close()
		c.pubSock.wait()
		c.subSock.wait()
		c.log.Info("call closed", zap.String("reason", reason))
	})
}

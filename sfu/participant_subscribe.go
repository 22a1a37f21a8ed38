package sfu

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// The subscribe transport: the server offers one m-section per track the
// participant receives (RFC 8829 §5.2) and re-offers when tracks come and go,
// one offer at a time (RFC 8829 §4.1.8: no new offer while one is pending).
// An m-section whose track went away goes inactive and, once the client has
// answered that, carries the next track of its kind: the SDP stays as long
// as the most tracks the participant ever received at once.

type subscribeState struct {
	cands    []string
	slots    []*subSlot
	downs    map[*upTrack]*downTrack
	bySSRC   map[uint32]*downTrack                 // primary and RTX SSRCs, for RTCP
	lookup   atomic.Pointer[map[uint32]*downTrack] // a copy of bySSRC for the packet path
	version  int
	pending  *subOffer // the offer awaiting its answer
	needs    bool      // tracks changed while an offer was pending
	answered bool      // at least one answer applied (the transport started)
}

func (s *subscribeState) init() {
	s.downs = map[*upTrack]*downTrack{}
	s.bySSRC = map[uint32]*downTrack{}
	s.publish()
}

// publish copies bySSRC for lock-free lookups.
func (s *subscribeState) publish() {
	m := make(map[uint32]*downTrack, len(s.bySSRC))
	for k, v := range s.bySSRC {
		m[k] = v
	}
	s.lookup.Store(&m)
}

// subSlot is one m-section of the subscribe transport.
type subSlot struct {
	mid      string
	kind     string
	down     *downTrack // nil: inactive
	state    slotState
	rejected bool // the client answered with port 0: never reused
}

type slotState int

const (
	slotFree      slotState = iota // inactive, and the client knows it
	slotAssigned                   // carries down
	slotReleasing                  // inactive in the next offer, free after its answer
	slotReserved                   // the first offer's placeholder: inactive for good
)

// subOffer remembers what an offer said, to apply its answer.
type subOffer struct {
	version int
	slots   []subSlot // copies, in m-section order
	sent    time.Time
}

// subscribe makes up available to this participant (up.mu held by the
// caller, so an unpublish cannot slip in between).
func (p *Participant) subscribe(up *upTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() || p.sub.downs[up] != nil {
		return
	}
	d := &downTrack{up: up, sub: p, ssrc: p.newSSRC()}
	d.pt = ptOpus
	if up.kind.String() == "video" {
		d.pt, d.rtxSSRC, d.history = ptVP8, p.newSSRC(), &history{}
	}
	p.sub.downs[up] = d
	p.sub.bySSRC[d.ssrc] = d
	if d.rtxSSRC != 0 {
		p.sub.bySSRC[d.rtxSSRC] = d
	}
	p.sub.publish()
	up.addSubscriber(d)
	p.changed()
}

// unsubscribe stops up toward this participant (up.mu held by the caller).
func (p *Participant) unsubscribe(up *upTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.sub.downs[up]
	if d == nil {
		return
	}
	p.removeDownLocked(d)
	p.changed()
}

func (p *Participant) removeDownLocked(d *downTrack) {
	d.active.Store(false)
	d.up.removeSubscriber(d)
	delete(p.sub.downs, d.up)
	delete(p.sub.bySSRC, d.ssrc)
	delete(p.sub.bySSRC, d.rtxSSRC)
	p.sub.publish()
	for _, s := range p.sub.slots {
		if s.down == d {
			s.down, s.state = nil, slotReleasing
		}
	}
}

// dropAllDowns removes every subscription (the participant is leaving).
func (p *Participant) dropAllDowns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.sub.downs {
		p.removeDownLocked(d)
	}
}

func (p *Participant) newSSRC() uint32 {
	for {
		s := randomSSRC()
		if p.sub.bySSRC[s] == nil && s != p.rtcpSSRC {
			return s
		}
	}
}

func randomSSRC() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:]) | 1 // never 0
}

// changed records (p.mu held) that the next subscribe offer must differ
// from the last one, and wakes the negotiation goroutine.
func (p *Participant) changed() {
	p.sub.needs = true
	p.kick()
	if p.video != nil { // the allocator looks at the new set of tracks
		p.video.dirty.Store(true)
		p.call.kickVideo()
	}
}

// kick wakes the negotiation goroutine.
func (p *Participant) kick() {
	select {
	case p.negotiate <- struct{}{}:
	default:
	}
}

// negotiateLoop makes subscribe offers one at a time. An offer the client
// never answers is given up after OfferTimeout, once there is something new
// to offer, so one lost answer cannot stop every later subscription (and a
// silent client gets no more offers than changes).
func (p *Participant) negotiateLoop() {
	defer p.wg.Done()
	p.mu.Lock()
	p.sub.needs = true // the first offer opens the transport before anything is published
	p.mu.Unlock()
	for {
		p.restartICEIfAsked()
		offer, wait := p.nextOffer()
		if offer != "" {
			if p.isClosed() {
				return
			}
			p.handler.SubscribeOffer(offer)
			continue
		}
		select {
		case <-p.negotiate:
		case <-wait:
		case <-p.closed:
			return
		}
	}
}

// nextOffer returns the offer to send now, or what to wait for.
func (p *Participant) nextOffer() (string, <-chan time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.sub.needs {
		return "", nil
	}
	if pend := p.sub.pending; pend != nil {
		if left := time.Until(pend.sent.Add(p.cfg.OfferTimeout)); left > 0 {
			return "", time.After(left)
		}
		p.log.Warn("subscribe offer unanswered: offering again", zap.Int("version", pend.version))
		p.sub.pending = nil
	}
	p.sub.needs = false
	return p.buildOfferLocked(), nil
}

// buildOfferLocked assigns slots to subscriptions and writes the offer.
func (p *Participant) buildOfferLocked() string {
	st := &p.sub
	assigned := map[*downTrack]bool{}
	for _, s := range st.slots {
		if s.down != nil {
			assigned[s.down] = true
		}
	}
	for _, d := range sortedDowns(st.downs) {
		if assigned[d] {
			continue
		}
		kind := d.up.kind.String()
		var slot *subSlot
		for _, s := range st.slots {
			if s.state == slotFree && !s.rejected && s.kind == kind {
				slot = s
				break
			}
		}
		if slot == nil {
			slot = &subSlot{mid: strconv.Itoa(len(st.slots)), kind: kind}
			st.slots = append(st.slots, slot)
		}
		slot.down, slot.state = d, slotAssigned
		d.mid = slot.mid
	}
	if len(st.slots) == 0 {
		// Nothing to receive yet: one inactive section still brings up ICE and
		// DTLS now, so the first track later costs one offer/answer only.
		st.slots = append(st.slots, &subSlot{mid: "0", kind: "audio", state: slotReserved})
	}
	st.version++
	pend := &subOffer{version: st.version, sent: time.Now()}
	for _, s := range st.slots {
		pend.slots = append(pend.slots, *s)
	}
	st.pending = pend
	ufrag, pwd := p.subT.localCredentials()
	return subscribeOffer(pend.slots, ufrag, pwd, p.call.cert.fingerprint, st.cands, p.sessionID, st.version)
}

// SubscribeAnswer applies the client's answer to the latest subscribe offer.
func (p *Participant) SubscribeAnswer(answer string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return ErrClosed
	}
	pend := p.sub.pending
	if pend == nil {
		return ErrNoOffer
	}
	a, err := parseSubscribeAnswer(answer, pend.slots)
	if err != nil {
		return err
	}
	if err := p.subT.start(a.remote); err != nil {
		return fmt.Errorf("sfu: subscribe transport: %w", err)
	}
	p.sub.pending = nil
	p.sub.answered = true
	for i, s := range p.sub.slots {
		if i >= len(pend.slots) {
			break // added after this offer
		}
		sent := pend.slots[i]
		if a.sections[i].rejected {
			s.rejected = true
		}
		if sent.state == slotReleasing && s.state == slotReleasing {
			s.state = slotFree
		}
		if sent.down != nil && s.down == sent.down {
			ans := a.sections[i]
			ext := ans.ext
			sent.down.ext.Store(&ext)
			// rtxPT is read by the retransmitter once active: it is set by
			// the first answer only, before activation publishes it.
			if ans.rtx && !sent.down.answered {
				sent.down.rtxPT = ptRTX
			}
			sent.down.answered = true
		}
	}
	p.activateDownsLocked()
	p.kick() // changes made while the offer was pending go out now
	return nil
}

// activateDowns starts forwarding every answered subscription once the
// subscribe transport has its keys.
func (p *Participant) activateDowns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.activateDownsLocked()
}

func (p *Participant) activateDownsLocked() {
	if !p.subT.ready.Load() {
		return
	}
	for _, d := range p.sub.downs {
		if !d.answered || d.active.Load() {
			continue
		}
		var err error
		if d.ctx == nil {
			d.ctx, err = p.subT.newSendContext()
		}
		if err == nil && d.rtxPT != 0 && d.rtxCtx == nil {
			d.rtxCtx, err = p.subT.newSendContext()
		}
		if err != nil {
			p.log.Warn("srtp context", zap.Error(err))
			continue
		}
		d.active.Store(true)
		d.up.requestKeyframes()
	}
}

// downBySSRC finds the subscription an RTCP packet from the client is about.
func (p *Participant) downBySSRC(ssrc uint32) *downTrack {
	return (*p.sub.lookup.Load())[ssrc]
}

func sortedDowns(m map[*upTrack]*downTrack) []*downTrack {
	out := make([]*downTrack, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].up, out[j].up
		if a.owner.id != b.owner.id {
			return a.owner.id < b.owner.id
		}
		return a.id < b.id
	})
	return out
}

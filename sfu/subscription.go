package sfu

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// What a subscriber chose to see (the `subscription` message of
// docs/signaling.md) and the state the allocator keeps for it.

// VideoSelection is one video a subscriber shows.
type VideoSelection struct {
	ParticipantID string
	// TrackID picks one of the participant's video tracks; "" is all of
	// them (a camera and a screen share).
	TrackID string
	// MaxHeight in pixels: the tallest layer worth sending for the tile;
	// 0 is no limit.
	MaxHeight int
	// Pinned videos come first when bandwidth is short.
	Pinned bool
}

// Bounds on one subscription.
const (
	MaxVideoSelections = 100 // 50 participants with a camera and a screen share each
	MaxVideoHeight     = 4320
)

// ErrInvalidSubscription is returned for a subscription out of bounds.
var ErrInvalidSubscription = errors.New("invalid subscription")

// VideoHandler is implemented by a Handler that also carries the video
// messages (the signaling layer's; test handlers need not). Like Handler,
// its methods must not block.
type VideoHandler interface {
	// VideoPaused says a video this participant would receive is paused
	// (reason "bandwidth": even its lowest layer does not fit the
	// estimate; "not_selected": outside the subscription or last-N) or
	// flows again.
	VideoPaused(participantID, trackID string, paused bool, reason string)
	// LayersWanted tells a publisher which simulcast layers (rids) of one
	// of its tracks anybody receives; the others need not be encoded.
	LayersWanted(trackID string, rids []string)
}

// Pause reasons of VideoHandler.VideoPaused.
const (
	PauseBandwidth   = "bandwidth"
	PauseNotSelected = "not_selected"
)

// SetVideoSubscription replaces the videos the participant receives. With
// explicit false the list is ignored and the default applies: the videos
// of the last-N most relevant speakers (Config.LastN). An explicit empty
// list receives no video at all.
func (p *Participant) SetVideoSubscription(list []VideoSelection, explicit bool) error {
	if len(list) > MaxVideoSelections {
		return fmt.Errorf("%w: %d videos, at most %d", ErrInvalidSubscription, len(list), MaxVideoSelections)
	}
	for _, s := range list {
		if s.ParticipantID == "" || len(s.ParticipantID) > 64 || len(s.TrackID) > 64 {
			return fmt.Errorf("%w: a video needs a participantId (and trackId) of at most 64 bytes", ErrInvalidSubscription)
		}
		if s.MaxHeight < 0 || s.MaxHeight > MaxVideoHeight {
			return fmt.Errorf("%w: maxHeight %d is not within 0–%d", ErrInvalidSubscription, s.MaxHeight, MaxVideoHeight)
		}
	}
	if p.isClosed() {
		return ErrClosed
	}
	v := p.video
	v.mu.Lock()
	v.explicit = explicit
	v.selection = append([]VideoSelection(nil), list...)
	if !explicit {
		v.selection = nil
	}
	v.mu.Unlock()
	v.dirty.Store(true)
	p.call.kickVideo()
	return nil
}

// subscriberVideo is one participant's receive side of video: the
// bandwidth estimate toward it and what the allocator gave it.
type subscriberVideo struct {
	bwe  *bandwidthEstimator // fed where the subscriber's RTCP arrives
	sent sentRecord          // what went out on its subscribe transport
	// lastNotified is the estimate the allocator last ran on; dirty asks
	// for a run (the subscription or the tracks changed).
	lastNotified atomic.Int64
	dirty        atomic.Bool

	mu            sync.Mutex // the subscription and the allocator's state below
	explicit      bool
	selection     []VideoSelection
	lastAlloc     int64 // ns since the call's epoch
	lastEstimate  int64
	lastDowngrade int64
	tracks        map[*downTrack]*allocState
}

// allocState is what the allocator remembers of one down track.
type allocState struct {
	target       int // layer; -1 paused
	pausedBW     bool
	told         bool // the client was told it is paused
	toldReason   string
	maxHeight    int
	selected     bool
	allocatedBps int64
	noFitSince   int64 // its lowest layer stopped fitting (ns); 0: it fits
}

func newSubscriberVideo() *subscriberVideo {
	v := &subscriberVideo{bwe: newBandwidthEstimator(), tracks: map[*downTrack]*allocState{}}
	v.lastNotified.Store(bweInitial)
	v.dirty.Store(true)
	return v
}

// onTransportFeedback runs the estimator on one transport-wide feedback
// from the subscriber, sends a probe train when one is due, and wakes the
// allocator when the estimate moved by more than allocThreshold.
func (p *Participant) onTransportFeedback(pkt []byte, pm *pump) {
	v := p.video
	e := v.bwe
	e.onFeedback(pkt, &v.sent, pm.now)
	if target, ok := e.probeDue(pm.now); ok {
		p.sendProbe(target, pm)
	}
	est, last := e.estimate.Load(), v.lastNotified.Load()
	if float64(est) > float64(last)*(1+allocThreshold) || float64(est) < float64(last)*(1-allocThreshold) {
		v.lastNotified.Store(est)
		v.dirty.Store(true)
		p.call.kickVideo()
	}
}

// sendProbe sends a train of RTX copies of the newest packets of one of
// the subscriber's video tracks (bwe_probe.go). It runs on the goroutine
// that reads the subscriber's RTCP, which owns every down track's RTX
// state.
func (p *Participant) sendProbe(target float64, pm *pump) {
	e := p.video.bwe
	for _, d := range *p.sub.lookup.Load() {
		if !d.active.Load() || d.rtxPT == 0 || d.rtxCtx == nil || d.ssrc == 0 {
			continue
		}
		last := d.sel.lastSent.Load()
		if last>>16 == 0 {
			continue
		}
		ids := d.ext.Load()
		if ids == nil || ids.twcc == 0 {
			continue
		}
		first, lastSeq, sent, bytes := int64(-1), int64(0), 0, 0
		want := probeBytes(target)
		for k := 0; sent < probeMaxPackets && (sent < probeMinPackets || bytes < want) && k < 4*probeMaxPackets; k++ {
			outSeq := uint16(last) - uint16(k)
			entry, ok := d.history.lookup(outSeq)
			if !ok {
				continue
			}
			n := d.sendRTX(entry, outSeq, pm.now, true, pm)
			if n == 0 {
				continue
			}
			bytes += n
			seq, ok := twccOf(pm.scratch, ids.twcc) // what build stamped on it
			if !ok {
				continue
			}
			ext := e.highest + int64(seq-uint16(e.highest))
			if first < 0 {
				first = ext
			}
			lastSeq = ext
			sent++
		}
		if sent > 0 {
			e.probe.started(first, lastSeq, sent, target, e.current(), pm.now)
			return
		}
	}
	// No video to probe with (an audio-only subscriber, or nothing sent
	// yet): look again after the shortest interval, not at every feedback
	// (every 100 ms, a walk over every down track: 2 % of the CPU in a
	// 50-person audio call).
	e.probe.next = pm.now + probeIntervalMin
}

package sfu

import (
	"sync/atomic"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Layers nobody receives. When no down track forwards (or is about to
// forward) a simulcast layer of a track, its publisher is told (the
// `layers` message) so that it stops encoding and sending it: uplink and
// ingest saved. A layer is turned off only after nobody wanted it for
// layerOffGrace, so a subscriber moving between layers does not make the
// publisher's encoders flap; it is turned on again at once.

const (
	layerOffGrace = 3e9 // ns
	// layerRestart: a layer just turned on again is counted as available
	// for this long although nothing arrived yet (its encoder restarts).
	layerRestart = 3e9
)

// publishedLayers is one simulcast track's on/off state at its publisher.
type publishedLayers struct {
	off  atomic.Uint32 // bit i: layer i was turned off
	onAt [maxLayers]atomic.Int64

	since [maxLayers]int64 // the video loop's own: when layer i stopped being wanted
}

func (p *publishedLayers) isOff(layer int) bool { return p.off.Load()&(1<<layer) != 0 }

// restarting reports whether a layer was turned on again moments ago.
func (p *publishedLayers) restarting(layer int, now int64) bool {
	at := p.onAt[layer].Load()
	return at != 0 && now-at < layerRestart
}

// update applies this round's wanted layers (of n) and returns the rids to
// keep when that changed what the publisher was told.
func (p *publishedLayers) update(want [maxLayers]bool, rids []string, now int64) ([]string, bool) {
	off := p.off.Load()
	next := off
	for i := range rids {
		if want[i] {
			p.since[i] = 0
			if next&(1<<i) != 0 {
				next &^= 1 << i
				p.onAt[i].Store(now)
			}
			continue
		}
		if p.since[i] == 0 {
			p.since[i] = now
		}
		if now-p.since[i] >= layerOffGrace {
			next |= 1 << i
		}
	}
	if next == off {
		return nil, false
	}
	p.off.Store(next)
	keep := []string{}
	for i, r := range rids {
		if next&(1<<i) == 0 {
			keep = append(keep, r)
		}
	}
	return keep, true
}

// updateWantedLayers runs on the video loop: every layer a down track
// targets, or still forwards while it waits for the target's key frame, is
// wanted.
func (t *upTrack) updateWantedLayers(now int64) {
	if t.kind != webrtc.RTPCodecTypeVideo || len(t.rids) == 0 {
		return
	}
	var want [maxLayers]bool
	for i := range t.rids {
		// A layer the publisher never sent is left alone: nobody can have
		// asked for it, and its encoder may start when the publisher's own
		// bandwidth allows (a browser adds its top layers as it ramps up).
		want[i] = t.stream(i) == nil
	}
	for _, d := range *t.subs.Load() {
		tg := int(d.sel.target.Load())
		if tg < 0 || tg >= maxLayers {
			continue
		}
		want[tg] = true
		if c := int(d.sel.current.Load()) - 1; c >= 0 && c < maxLayers {
			want[c] = true
		}
	}
	rids, changed := t.pub.update(want, t.rids, now)
	if !changed {
		return
	}
	t.log.Debug("layers wanted", zap.Strings("rids", rids))
	if vh, ok := t.owner.handler.(VideoHandler); ok {
		vh.LayersWanted(t.id, rids)
	}
}

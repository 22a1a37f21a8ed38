package sfu

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"
)

// The active-speaker detector of one call, and top-N audio forwarding.
//
// Every selectInterval it reads each audio track's level counters
// (audiolevel.go) and picks the tracks to forward: the N loudest that are
// speaking, plus the dominant speaker; every other audio track is gated at
// ingest (uptrack.go), so the packet path skips it entirely. A challenger
// displaces a selected track only when it is clearly louder, and a selected
// track keeps its place for a while after it falls quiet, so the set does
// not churn on every syllable. A track that starts speaking is forwarded
// within one selection tick (≤ 50 ms, well inside the 100 ms budget).
//
// On every tick the dominant speaker is re-evaluated on slower levels, with
// an adaptive noise floor per track and hysteresis: a challenger replaces a
// dominant speaker that fell silent (for dominantSilence) at once, and one
// that still speaks only after leading it by dominantLead for dominantHold.
// The call hears a `speakers` event when the set of speakers or the
// dominant one changed, at most once per minEventGap.
const (
	selectInterval  = 50 * time.Millisecond
	speakingWindow  = 300 * time.Millisecond // spoke this recently: listed in `speakers`
	dominantSilence = 200 * time.Millisecond
	dominantHold    = 600 * time.Millisecond
	minEventGap     = 340 * time.Millisecond // ≤ 3 events per second
	// selectMargin (dB) is how much louder a challenger must be than the
	// quietest selected track to take its place.
	selectMargin = 6
	// selectHold keeps a quiet selected track selected (it may speak again).
	selectHold = 1500 * time.Millisecond
	// dominantLead is how much louder (dB) than a speaking dominant speaker
	// a challenger must be, for dominantHold, to take over.
	dominantLead = 3
	// floorRise (dB/s) and maxFloor (loudness, i.e. -67 dBov) bound the
	// noise floor's adaptation.
	floorRise = 0.5
	maxFloor  = 60
)

// trackLevel is the detector's view of one audio track.
type trackLevel struct {
	t                   *upTrack
	lastSum, lastPkts   uint64
	instant, fast, slow float64 // loudness: this tick's, and exponentially smoothed
	floor               float64 // adaptive noise floor
	speakingAt          time.Time
	selected            bool
	leadingSince        time.Time // when it began to lead the dominant speaker
	everLoud            bool
}

type speakerDetector struct {
	c        *Call
	topN     int
	tracks   map[*upTrack]*trackLevel
	dominant *trackLevel

	lastEvent   time.Time
	sentSet     string // the speakers and dominant last announced
	pendingSend bool
}

func newSpeakerDetector(c *Call) *speakerDetector {
	// Nobody speaking is the state everyone starts from: no event for it.
	return &speakerDetector{c: c, topN: c.cfg.AudioTopN, tracks: map[*upTrack]*trackLevel{}, sentSet: "|"}
}

func (c *Call) speakerLoop() {
	defer c.wg.Done()
	d := newSpeakerDetector(c)
	tick := time.NewTicker(selectInterval)
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			d.tick(now)
		case <-c.stop:
			return
		}
	}
}

// audioTracks lists the call's published audio tracks.
func (c *Call) audioTracks() (tracks []*upTrack, participants int) {
	c.mu.Lock()
	list := c.othersLocked(nil)
	c.mu.Unlock()
	for _, p := range list {
		for _, t := range p.publishedTracks() {
			if t.kind.String() == "audio" {
				tracks = append(tracks, t)
			}
		}
	}
	return tracks, len(list)
}

func (d *speakerDetector) tick(now time.Time) {
	tracks, participants := d.c.audioTracks()
	seen := make(map[*upTrack]bool, len(tracks))
	for _, t := range tracks {
		seen[t] = true
		tl := d.tracks[t]
		if tl == nil {
			tl = &trackLevel{t: t}
			d.tracks[t] = tl
		}
		tl.sample(now)
	}
	for t, tl := range d.tracks {
		if !seen[t] {
			delete(d.tracks, t)
			if d.dominant == tl {
				d.dominant = nil
			}
		}
	}
	d.evaluateDominant(now)
	d.selectForwarded(now, participants)
	if d.pendingSend {
		d.announce(now)
	}
}

// sample reads the track's counters since the last tick.
func (tl *trackLevel) sample(now time.Time) {
	m := &tl.t.meter
	sum, pkts := m.sum.Load(), m.packets.Load()
	dp := pkts - tl.lastPkts
	level := 0.0
	if dp > 0 {
		level = float64(sum-tl.lastSum) / float64(dp)
	}
	tl.lastSum, tl.lastPkts = sum, pkts
	if tl.t.muted.Load() {
		level = 0
	}
	// fast follows within ~100 ms (two ticks), slow within ~300 ms.
	tl.instant = level
	tl.fast = 0.5*tl.fast + 0.5*level
	tl.slow = 0.8*tl.slow + 0.2*level
	// Adaptive noise floor: starts at silence, follows the level down at
	// once and drifts up slowly (floorRise), so steady background noise
	// becomes floor and speech, with its pauses, stands out above it. It
	// never rises above maxFloor: anything louder than that is speech.
	if level < tl.floor {
		tl.floor = level
	} else if dp > 0 {
		tl.floor = math.Min(tl.floor+floorRise*selectInterval.Seconds(), maxFloor)
	}
	m.floor.Store(int32(tl.floor))
	if tl.fast >= tl.floor+speechMargin {
		tl.speakingAt = now
		tl.everLoud = true
	}
}

func (tl *trackLevel) speaking(now time.Time, within time.Duration) bool {
	return tl.everLoud && now.Sub(tl.speakingAt) <= within
}

// selectForwarded sets which tracks are forwarded. With top-N off, or a
// call small enough that nobody would receive more than N streams anyway,
// everything goes through (silence included).
func (d *speakerDetector) selectForwarded(now time.Time, participants int) {
	if d.topN <= 0 || participants <= d.topN+1 {
		for _, tl := range d.tracks {
			tl.t.setForwarded(true, false)
		}
		return
	}
	var cands []*trackLevel
	for _, tl := range d.tracks {
		if tl.speaking(now, selectInterval) {
			cands = append(cands, tl)
		}
	}
	slices.SortFunc(cands, func(a, b *trackLevel) int { return cmp.Compare(b.fast, a.fast) })
	// Drop selections that have been quiet longer than the hold.
	count := 0
	for _, tl := range d.tracks {
		if tl.selected && !tl.speaking(now, selectHold) {
			tl.selected = false
		}
		if tl.selected {
			count++
		}
	}
	// The N loudest (with hysteresis); the dominant speaker is forwarded
	// besides, if it is not among them.
	for _, c := range cands {
		if c.selected {
			continue
		}
		if count < d.topN {
			c.selected = true
			count++
			continue
		}
		// Full: displace a selected track that has gone quiet, or else the
		// quietest one if the challenger is clearly louder (judged on this
		// tick's level, so that a new talker gets in at once).
		var weakest *trackLevel
		for _, tl := range d.tracks {
			if !tl.selected {
				continue
			}
			quiet := !tl.speaking(now, selectInterval)
			if weakest == nil || quiet && weakest.speaking(now, selectInterval) || tl.fast < weakest.fast {
				weakest = tl
			}
		}
		if weakest != nil && (!weakest.speaking(now, selectInterval) || math.Max(c.instant, c.fast) > weakest.fast+selectMargin) {
			weakest.selected = false
			c.selected = true
		}
	}
	for _, tl := range d.tracks {
		tl.t.setForwarded(tl.selected || tl == d.dominant, true)
	}
}

// evaluateDominant updates the dominant speaker with hysteresis.
func (d *speakerDetector) evaluateDominant(now time.Time) {
	// The challenger is the loudest speaking track by the slow level; a
	// dominant speaker that fell silent is replaced by the loudest by the
	// fast one (whoever speaks now, not whoever spoke most lately).
	var best, loudest *trackLevel
	for _, tl := range d.tracks {
		if !tl.speaking(now, selectInterval) {
			continue
		}
		if best == nil || tl.slow > best.slow {
			best = tl
		}
		if loudest == nil || tl.fast > loudest.fast {
			loudest = tl
		}
	}
	cur := d.dominant
	switch {
	case best == nil:
	case cur == nil || !cur.speaking(now, dominantSilence):
		if loudest != cur {
			d.setDominant(loudest)
		}
	case best == cur:
	case best.slow > cur.slow+dominantLead:
		if best.leadingSince.IsZero() {
			best.leadingSince = now
		} else if now.Sub(best.leadingSince) >= dominantHold {
			d.setDominant(best)
		}
	}
	for _, tl := range d.tracks {
		if tl != best || cur == nil || best.slow <= cur.slow+dominantLead {
			tl.leadingSince = time.Time{}
		}
	}
	if d.speakersKey(now) != d.sentSet {
		d.pendingSend = true
	}
}

func (d *speakerDetector) setDominant(tl *trackLevel) {
	d.dominant = tl
	d.c.cfg.Observer.DominantSpeakerChanged()
}

// speaking returns who speaks now, loudest first, with levels 0..1.
func (d *speakerDetector) speakers(now time.Time) []SpeakerInfo {
	var out []SpeakerInfo
	best := map[string]float64{}
	for _, tl := range d.tracks {
		if !tl.speaking(now, speakingWindow) {
			continue
		}
		id := tl.t.owner.id
		best[id] = math.Max(best[id], tl.slow)
	}
	for id, l := range best {
		out = append(out, SpeakerInfo{ParticipantID: id, Level: math.Round(l/127*100) / 100})
	}
	slices.SortFunc(out, func(a, b SpeakerInfo) int {
		if c := cmp.Compare(b.Level, a.Level); c != 0 {
			return c
		}
		return cmp.Compare(a.ParticipantID, b.ParticipantID)
	})
	return out
}

func (d *speakerDetector) dominantID() string {
	if d.dominant == nil {
		return ""
	}
	return d.dominant.t.owner.id
}

// speakersKey names the announced state: who speaks and who dominates
// (levels alone changing is not news).
func (d *speakerDetector) speakersKey(now time.Time) string {
	list := d.speakers(now)
	ids := make([]string, 0, len(list)+1)
	for _, s := range list {
		ids = append(ids, s.ParticipantID)
	}
	slices.Sort(ids)
	ids = append(ids, "|"+d.dominantID())
	return strings.Join(ids, ",")
}

func (d *speakerDetector) announce(now time.Time) {
	if now.Sub(d.lastEvent) < minEventGap {
		return // sent soon after the gap: pendingSend stays set
	}
	key := d.speakersKey(now)
	d.pendingSend = false
	if key == d.sentSet {
		return
	}
	d.sentSet, d.lastEvent = key, now
	list, dom := d.speakers(now), d.dominantID()
	d.c.mu.Lock()
	targets := d.c.othersLocked(nil)
	d.c.mu.Unlock()
	for _, p := range targets {
		p.handler.Speakers(list, dom)
	}
	d.c.noteSpeakers(list, dom) // the video allocator's last-N (allocator.go)
}

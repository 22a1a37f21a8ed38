package sfu

import (
	"math"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// The allocator decides, per subscriber, which layer of each video it
// receives. It runs on one goroutine per call (videoLoop): when a
// subscriber's estimate moved by more than allocThreshold, when its
// subscription or its tracks changed, and at least every allocInterval.
// Every visible video first gets its lowest layer, in priority order
// (pinned, the dominant speaker, larger tiles, then the speaker ranking);
// what is left upgrades them in the same order, each as far as its tile
// needs. Upgrades need a margin above the cost and wait a little after a
// downgrade; a paused video needs a margin to resume: layers do not
// oscillate around the estimate. A video whose lowest layer does not fit
// is paused, and its subscriber told.

const (
	allocThreshold  = 0.15 // relative estimate change that reallocates at once
	allocInterval   = 3e9  // ns: reallocate at least this often
	videoTickPeriod = 250 * time.Millisecond
	rateWindow      = 500e6 // ns between layer rate samples
	upMargin        = 1.2   // an upgrade must fit with this much to spare
	resumeMargin    = 1.25  // so must the lowest layer of a paused video
	upgradeHold     = 2e9   // ns after a downgrade without upgrades
	pauseAfter      = 2e9   // ns a flowing video's lowest layer may not fit before it is paused
	audioReserveMax = 4     // audio streams a receiver gets at most (top-N + the dominant speaker)
	// packetOverhead: what a forwarded packet adds on the wire to the bytes
	// ingested (IPv4/UDP, the SRTP tag, the subscriber's extensions).
	packetOverhead = udpOverhead + 16 + 8
)

// nominalLayerRates are the costs assumed for a layer before it was
// measured (the rates browsers use for q, h, f at 360p-720p).
var nominalLayerRates = [maxLayers]float64{150_000, 500_000, 1_500_000}

// callVideo is a call's allocator state.
type callVideo struct {
	kick    chan struct{}
	ranking atomic.Pointer[[]string]
}

func (c *Call) kickVideo() {
	select {
	case c.video.kick <- struct{}{}:
	default:
	}
}

// setSpeakerRanking is the active-speaker detector's hook (issue 9):
// participant ids, the dominant speaker first, then the others by how
// recently they spoke. The default last-N follows it; participants it does
// not name come after it, in the order they joined.
func (c *Call) setSpeakerRanking(ids []string) {
	list := slices.Clone(ids)
	c.video.ranking.Store(&list)
	c.kickVideo()
}

// noteSpeakers turns the detector's announcements into the ranking: the
// dominant speaker, then who speaks now, loudest first, then whoever spoke
// before, most recent first.
func (c *Call) noteSpeakers(speakers []SpeakerInfo, dominant string) {
	var prev []string
	if r := c.video.ranking.Load(); r != nil {
		prev = *r
	}
	next := make([]string, 0, len(prev)+len(speakers)+1)
	if dominant != "" {
		next = append(next, dominant)
	}
	for _, s := range speakers {
		next = append(next, s.ParticipantID)
	}
	next = append(next, prev...)
	seen := make(map[string]bool, len(next))
	next = slices.DeleteFunc(next, func(id string) bool {
		dup := seen[id]
		seen[id] = true
		return dup
	})
	if len(next) > maxRanking {
		next = next[:maxRanking]
	}
	if slices.Equal(next, prev) {
		return
	}
	c.setSpeakerRanking(next)
}

// maxRanking bounds the speaker ranking (more than any call holds).
const maxRanking = 256

// dominantSpeaker is the detector's current dominant speaker, or "".
func (c *Call) dominantSpeaker() string {
	if r := c.video.ranking.Load(); r != nil && len(*r) > 0 {
		return (*r)[0]
	}
	return ""
}

// videoLoop runs the allocators of a call's subscribers and the layer
// hints of its publishers.
func (c *Call) videoLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(videoTickPeriod)
	defer tick.Stop()
	var lastRates int64
	var lastRanking *[]string
	for {
		select {
		case <-tick.C:
		case <-c.video.kick:
		case <-c.stop:
			return
		}
		now := c.now()
		c.mu.Lock()
		parts := c.othersLocked(nil)
		c.mu.Unlock()
		sort.Slice(parts, func(i, j int) bool { return parts[i].joinedAt.Before(parts[j].joinedAt) })
		if now-lastRates >= rateWindow {
			for _, p := range parts {
				for _, up := range p.publishedTracks() {
					for i := range up.layers {
						if s := up.layers[i].Load(); s != nil {
							s.stats.sample(now)
						}
					}
				}
			}
			lastRates = now
		}
		rk := c.video.ranking.Load()
		force := rk != lastRanking
		lastRanking = rk
		order := speakerOrder(parts, rk)
		for _, p := range parts {
			p.maybeAllocate(now, order, force)
		}
		for _, p := range parts {
			for _, up := range p.publishedTracks() {
				up.updateWantedLayers(now)
			}
		}
	}
}

// sample turns the counts since the last sample into the layer's rate.
func (l *layerStats) sample(now int64) {
	b, n := l.bytes.Load(), l.packets.Load()
	if l.prevAt != 0 && now > l.prevAt {
		bits := float64(b-l.prevBytes+(n-l.prevPackets)*packetOverhead) * 8
		r := bits * 1e9 / float64(now-l.prevAt)
		live := l.live(now)
		if old := l.rate.Load(); old > 0 && live {
			r = 0.6*float64(old) + 0.4*r
		}
		if !live {
			r = 0
		}
		l.rate.Store(int64(r))
		// Remembered for when the layer is off: the upper envelope of
		// the rates of windows it was sending all along (not one that saw
		// it stop), decaying slowly: what it will cost once turned on.
		if live && l.prevLive && r > 0 && now-l.lastAt.Load() < 100e6 {
			l.lastRate.Store(int64(max(r, 0.98*float64(l.lastRate.Load()))))
		}
	}
	l.prevBytes, l.prevPackets, l.prevAt = b, n, now
	l.prevLive = l.live(now)
}

// speakerOrder ranks participant ids: the detector's ranking, then
// everybody else by join time (parts is sorted so).
func speakerOrder(parts []*Participant, ranking *[]string) map[string]int {
	order := make(map[string]int, len(parts))
	if ranking != nil {
		for _, id := range *ranking {
			if _, ok := order[id]; !ok {
				order[id] = len(order)
			}
		}
	}
	for _, p := range parts {
		if _, ok := order[p.id]; !ok {
			order[p.id] = len(order)
		}
	}
	return order
}

func (p *Participant) maybeAllocate(now int64, order map[string]int, force bool) {
	v := p.video
	dirty := v.dirty.Swap(false)
	est := v.bwe.estimate.Load()
	v.mu.Lock()
	last := v.lastEstimate
	due := dirty || force || now-v.lastAlloc >= allocInterval ||
		math.Abs(float64(est-last)) > allocThreshold*float64(last)
	v.mu.Unlock()
	if due {
		p.allocateVideo(now, order)
	}
}

// layerChoice is one layer a down track could forward.
type layerChoice struct {
	layer  int
	cost   float64 // bits per second on the wire
	height int     // 0: not known yet
}

// candidate is one video down track in one allocation.
type candidate struct {
	d         *downTrack
	st        *allocState
	layers    []layerChoice // lowest first
	maxPos    int           // the highest layer the tile needs
	pos       int           // chosen; -1 paused
	selected  bool
	pinned    bool
	dominant  bool
	maxHeight int
	rank      int
}

// layerChoices lists the layers of d's track that can be forwarded: being
// sent, or turned off at the publisher by us (it can be turned on again),
// lowest first.
func (d *downTrack) layerChoices(now int64) []layerChoice {
	up := d.up
	simulcast := len(up.rids) > 0
	var out []layerChoice
	known := true
	for i := range maxLayers {
		s := up.stream(i)
		if s == nil {
			continue
		}
		st := &s.stats
		live := st.live(now)
		if !live && !(simulcast && (up.pub.isOff(i) || up.pub.restarting(i, now))) {
			continue
		}
		cost := float64(st.rate.Load())
		if !live || cost <= 0 {
			if cost = float64(st.lastRate.Load()); cost <= 0 {
				cost = nominalLayerRates[i]
				if !simulcast {
					cost = nominalLayerRates[maxLayers-1]
				}
			}
		}
		h := int(st.height.Load())
		known = known && h > 0
		out = append(out, layerChoice{layer: i, cost: cost, height: h})
	}
	if known { // rids need not come lowest first; picture sizes tell
		sort.SliceStable(out, func(i, j int) bool { return out[i].height < out[j].height })
	}
	return out
}

// allocateVideo runs one allocation for this subscriber.
func (p *Participant) allocateVideo(now int64, order map[string]int) {
	v := p.video
	videos, audioCost := p.receivedTracks()
	est := v.bwe.estimate.Load()
	dominant := p.call.dominantSpeaker()

	v.mu.Lock()
	v.lastAlloc, v.lastEstimate = now, est
	cands := make([]*candidate, 0, len(videos))
	for _, d := range videos {
		st := v.tracks[d]
		if st == nil {
			st = &allocState{}
			v.tracks[d] = st
		}
		cands = append(cands, &candidate{d: d, st: st, pos: -1, rank: order[d.up.owner.id],
			dominant: d.up.owner.id == dominant && dominant != ""})
	}
	p.selectVideos(cands, order)
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].before(cands[j]) })

	budget := float64(est) - audioCost
	wanted := audioCost
	// Until the estimate rests on a measurement (the first probe), it is
	// only a starting guess: nothing is paused on its account.
	verified := v.bwe.verified.Load()
	for _, c := range cands {
		if !c.selected {
			continue
		}
		c.layers = c.d.layerChoices(now)
		if len(c.layers) == 0 {
			// Nothing arrives yet: what it will cost is a guess, but the
			// first probe should already look for room for it.
			wanted += nominalLayerRates[maxLayers-1] * upMargin
			continue
		}
		c.maxPos = len(c.layers) - 1
		if c.maxHeight > 0 {
			c.maxPos = 0
			for i, l := range c.layers {
				if l.height > 0 && l.height <= c.maxHeight {
					c.maxPos = i
				}
			}
		}
		wanted += c.layers[c.maxPos].cost * upMargin
		need := c.layers[0].cost
		if c.st.pausedBW {
			need *= resumeMargin
		}
		fits := need <= budget || !verified
		if fits {
			c.st.noFitSince = 0
		} else if !c.st.pausedBW && c.st.target >= 0 {
			// A flowing video keeps its lowest layer for a while: the
			// estimate dips below what is sent after every congestion
			// signal (gcc-02 §5.5: beta times the received rate) and
			// recovers within a second or two.
			if c.st.noFitSince == 0 {
				c.st.noFitSince = now
			}
			fits = now-c.st.noFitSince < pauseAfter
			v.dirty.Store(true) // decide again at the next tick
		}
		if fits {
			c.pos = 0
			budget -= c.layers[0].cost
		}
	}
	holdUpgrades := v.lastDowngrade != 0 && now-v.lastDowngrade < upgradeHold
	for _, c := range cands {
		if c.pos < 0 {
			continue
		}
		for q := c.maxPos; q > c.pos; q-- {
			cost := c.layers[q].cost
			if c.layers[q].layer > c.st.target { // an upgrade
				if holdUpgrades {
					continue
				}
				cost *= upMargin
			}
			if cost-c.layers[c.pos].cost <= budget {
				budget -= c.layers[q].cost - c.layers[c.pos].cost
				c.pos = q
				break
			}
		}
	}
	v.bwe.wanted.Store(int64(wanted))

	type note struct {
		owner, track, reason string
		paused               bool
	}
	var notes []note
	seen := make(map[*downTrack]bool, len(cands))
	downgraded := false
	for _, c := range cands {
		seen[c.d] = true
		target, reason := 0, ""
		switch {
		case !c.selected:
			target, reason = -1, PauseNotSelected
		case len(c.layers) == 0:
			// Nothing is being sent: forward whatever starts first.
		case c.pos < 0:
			target, reason = -1, PauseBandwidth
		default:
			target = c.layers[c.pos].layer
			c.st.allocatedBps = int64(c.layers[c.pos].cost)
		}
		// A downgrade for bandwidth (not a smaller tile) holds upgrades a while.
		if c.selected && c.st.target >= 0 && (target < c.st.target && target >= 0 && c.pos < c.maxPos || reason == PauseBandwidth) {
			downgraded = true
		}
		if target < 0 {
			c.st.allocatedBps = 0
		}
		c.st.target, c.st.pausedBW, c.st.selected, c.st.maxHeight = target, reason == PauseBandwidth, c.selected, c.maxHeight
		c.d.sel.target.Store(int32(target))
		if paused := target < 0; paused != c.st.told || paused && reason != c.st.toldReason {
			c.st.told, c.st.toldReason = paused, reason
			notes = append(notes, note{c.d.up.owner.id, c.d.up.id, reason, paused})
		}
	}
	if downgraded {
		v.lastDowngrade = now
	}
	for d := range v.tracks {
		if !seen[d] {
			delete(v.tracks, d)
		}
	}
	v.mu.Unlock()

	if vh, ok := p.handler.(VideoHandler); ok {
		for _, n := range notes {
			vh.VideoPaused(n.owner, n.track, n.paused, n.reason)
		}
	}
}

// before orders candidates: selected first, then pinned, the dominant
// speaker, larger tiles (no limit is the largest), the speaker ranking.
func (c *candidate) before(o *candidate) bool {
	if c.selected != o.selected {
		return c.selected
	}
	if c.pinned != o.pinned {
		return c.pinned
	}
	if c.dominant != o.dominant {
		return c.dominant
	}
	ch, oh := c.maxHeight, o.maxHeight
	if ch == 0 {
		ch = math.MaxInt
	}
	if oh == 0 {
		oh = math.MaxInt
	}
	if ch != oh {
		return ch > oh
	}
	return c.rank < o.rank
}

// selectVideos marks what the subscriber shows (v.mu held): its explicit
// subscription, or the videos of the first Config.LastN participants of
// the speaker order.
func (p *Participant) selectVideos(cands []*candidate, order map[string]int) {
	v := p.video
	if v.explicit {
		for _, c := range cands {
			for i, s := range v.selection {
				if s.ParticipantID != c.d.up.owner.id || s.TrackID != "" && s.TrackID != c.d.up.id {
					continue
				}
				if !c.selected || s.TrackID != "" { // a track's own entry beats its participant's
					c.selected, c.maxHeight, c.pinned, c.rank = true, s.MaxHeight, s.Pinned, i
				}
			}
		}
		return
	}
	owners := map[string]bool{}
	for _, c := range cands {
		owners[c.d.up.owner.id] = true
	}
	ranked := make([]string, 0, len(owners))
	for id := range owners {
		ranked = append(ranked, id)
	}
	sort.Slice(ranked, func(i, j int) bool { return order[ranked[i]] < order[ranked[j]] })
	if n := p.cfg.LastN; n > 0 && len(ranked) > n {
		ranked = ranked[:n]
	}
	shown := map[string]bool{}
	for _, id := range ranked {
		shown[id] = true
	}
	for _, c := range cands {
		c.selected = shown[c.d.up.owner.id]
	}
}

// receivedTracks returns the subscriber's video down tracks and what its
// audio costs (the measured rate of the audio it may receive at once).
func (p *Participant) receivedTracks() ([]*downTrack, float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	videos := make([]*downTrack, 0, len(p.sub.downs))
	var audio float64
	n := 0
	for up, d := range p.sub.downs {
		if up.kind == webrtc.RTPCodecTypeVideo {
			videos = append(videos, d)
			continue
		}
		if s := up.stream(0); s != nil {
			audio += float64(s.stats.rate.Load())
			n++
		}
	}
	if n > audioReserveMax {
		audio = audio * audioReserveMax / float64(n)
	}
	return videos, audio
}

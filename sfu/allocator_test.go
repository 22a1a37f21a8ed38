package sfu

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The allocator on made-up calls: publishers whose layers have known
// rates and sizes, one subscriber whose estimate the test sets.

type allocWorld struct {
	c    *Call
	sub  *Participant
	pubs []*Participant
	ups  []*upTrack
	h    *recordingHandler
	now  int64
	// silent layers are not refreshed by allocate: the publisher does not
	// send them.
	silent map[*upStream]bool
}

type recordingHandler struct {
	nopHandler
	mu     sync.Mutex
	paused map[string]string // "participant/track" → reason, for paused videos
	layers map[string][]string
}

func (h *recordingHandler) VideoPaused(pid, tid string, paused bool, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if paused {
		h.paused[pid+"/"+tid] = reason
	} else {
		delete(h.paused, pid+"/"+tid)
	}
}

func (h *recordingHandler) LayersWanted(tid string, rids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.layers[tid] = rids
}

type nopHandler struct{}

func (nopHandler) SubscribeOffer(string)                    {}
func (nopHandler) ParticipantJoined(ParticipantInfo)        {}
func (nopHandler) ParticipantLeft(string)                   {}
func (nopHandler) TrackPublished(string, TrackInfo)         {}
func (nopHandler) TrackUnpublished(string, string)          {}
func (nopHandler) TrackMuted(string, string, bool)          {}
func (nopHandler) Closed(string)                            {}
func (nopHandler) Speakers([]SpeakerInfo, string)           {}
func (nopHandler) VideoPaused(string, string, bool, string) {}
func (nopHandler) LayersWanted(string, []string)            {}

// rates of the made-up layers and their heights.
var testLayerRates = [maxLayers]int64{150_000, 500_000, 1_500_000}

func newAllocWorld(t *testing.T, publishers, lastN int) *allocWorld {
	cfg := Config{Logger: zap.NewNop(), Observer: nopObserver{}, PLIInterval: time.Hour, LastN: lastN}
	w := &allocWorld{c: &Call{cfg: cfg, epoch: time.Now(), log: zap.NewNop(), participants: map[string]*Participant{},
		video: callVideo{kick: make(chan struct{}, 1)}}, now: 10e9,
		h: &recordingHandler{paused: map[string]string{}, layers: map[string][]string{}}, silent: map[*upStream]bool{}}
	newPart := func(id string, h Handler, joined time.Time) *Participant {
		p := &Participant{id: id, call: w.c, cfg: &w.c.cfg, handler: h, log: zap.NewNop(), joinedAt: joined,
			tracks: map[string]*upTrack{}, video: newSubscriberVideo()}
		p.sub.init()
		w.c.participants[id] = p
		return p
	}
	base := time.Now()
	w.sub = newPart("sub", w.h, base)
	w.sub.video.bwe.verified.Store(true)
	for i := range publishers {
		p := newPart(fmt.Sprintf("p%d", i), w.h, base.Add(time.Duration(i+1)*time.Second))
		up := newUpTrack(p, &pubSection{mid: "1", kind: "video", trackID: p.id + "-video", rids: []string{"q", "h", "f"}})
		for l := range maxLayers {
			s := newUpStream(up, uint32(100*i+l+1), l)
			s.stats.rate.Store(testLayerRates[l])
			s.stats.lastAt.Store(w.now)
			s.stats.height.Store(uint32(90 << l))
			up.layers[l].Store(s)
		}
		p.tracks["1"] = up
		w.pubs, w.ups = append(w.pubs, p), append(w.ups, up)
		d := &downTrack{up: up, sub: w.sub, ssrc: uint32(5000 + i)}
		w.sub.sub.downs[up] = d
		up.addSubscriber(d)
	}
	return w
}

// allocate runs the allocator at estimate est.
func (w *allocWorld) allocate(est int64) {
	w.now += 500e6
	for _, up := range w.ups {
		for l := range maxLayers {
			if s := up.stream(l); !w.silent[s] {
				s.stats.lastAt.Store(w.now)
			}
		}
	}
	w.sub.video.bwe.estimate.Store(est)
	w.c.mu.Lock()
	parts := w.c.othersLocked(nil)
	w.c.mu.Unlock()
	order := speakerOrder(sortedByJoin(parts), w.c.video.ranking.Load())
	w.sub.allocateVideo(w.now, order)
}

func sortedByJoin(ps []*Participant) []*Participant {
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			if ps[j].joinedAt.Before(ps[i].joinedAt) {
				ps[i], ps[j] = ps[j], ps[i]
			}
		}
	}
	return ps
}

// targets lists each publisher's target layer for the subscriber.
func (w *allocWorld) targets() []int {
	var out []int
	for _, up := range w.ups {
		out = append(out, int(w.sub.sub.downs[up].sel.target.Load()))
	}
	return out
}

func (w *allocWorld) expect(t *testing.T, what string, want ...int) {
	t.Helper()
	got := w.targets()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: targets %v, want %v", what, got, want)
	}
}

func TestAllocatorLowestFirstThenUpgradeByPriority(t *testing.T) {
	w := newAllocWorld(t, 3, 0)
	w.allocate(10_000_000) // plenty: everybody gets f
	w.expect(t, "10 Mb/s", 2, 2, 2)
	// 2.5 Mb/s: all three get q (450k), then the first in join order f
	// (1.35 M more, 1.65 M with the upgrade margin), the next h (350k
	// more, 450k with the margin); the last stays on q.
	w = newAllocWorld(t, 3, 0)
	w.allocate(2_500_000)
	w.expect(t, "2.5 Mb/s", 2, 1, 0)
	if wanted := w.sub.video.bwe.wanted.Load(); wanted < 3*1_500_000 {
		t.Errorf("wanted %d b/s, want at least 3 full layers", wanted)
	}
	// The dominant speaker goes first.
	w = newAllocWorld(t, 3, 0)
	w.c.setSpeakerRanking([]string{"p2"})
	w.allocate(2_500_000)
	w.expect(t, "2.5 Mb/s, p2 speaking", 1, 0, 2)
	// So does a pinned video.
	w = newAllocWorld(t, 3, 0)
	if err := w.sub.SetVideoSubscription([]VideoSelection{{ParticipantID: "p0"}, {ParticipantID: "p1", Pinned: true}, {ParticipantID: "p2"}}, true); err != nil {
		t.Fatal(err)
	}
	w.allocate(2_500_000)
	w.expect(t, "2.5 Mb/s, p1 pinned", 1, 2, 0)
}

func TestAllocatorPausesWhatDoesNotFit(t *testing.T) {
	w := newAllocWorld(t, 3, 0)
	w.allocate(10_000_000)
	w.allocate(320_000) // two q layers fit, the third does not: it keeps q a while
	w.expect(t, "320 kb/s at first", 0, 0, 0)
	if len(w.h.paused) != 0 {
		t.Errorf("paused at once: %v", w.h.paused)
	}
	w.now += pauseAfter
	w.allocate(320_000)
	w.expect(t, "320 kb/s for longer", 0, 0, -1)
	if r := w.h.paused["p2/p2-video"]; r != PauseBandwidth {
		t.Errorf("p2's video paused for %q, want %q; paused: %v", r, PauseBandwidth, w.h.paused)
	}
	// Back above the lowest layer but within the resume margin: still paused.
	w.allocate(460_000)
	w.expect(t, "460 kb/s", 0, 0, -1)
	w.allocate(520_000)
	w.expect(t, "520 kb/s", 0, 0, 0)
	if len(w.h.paused) != 0 {
		t.Errorf("still paused: %v", w.h.paused)
	}
}

// Upgrades need the margin and wait after a downgrade; downgrades do not
// wait.
func TestAllocatorHysteresis(t *testing.T) {
	w := newAllocWorld(t, 1, 0)
	w.allocate(1_000_000)
	w.expect(t, "1 Mb/s", 1)
	w.allocate(1_700_000) // f costs 1.5 M: no margin
	w.expect(t, "1.7 Mb/s", 1)
	w.allocate(1_900_000)
	w.expect(t, "1.9 Mb/s", 2)
	w.allocate(1_500_000) // f still fits without the margin: kept
	w.expect(t, "1.5 Mb/s", 2)
	w.allocate(1_000_000)
	w.expect(t, "1 Mb/s", 1)
	w.allocate(5_000_000) // within upgradeHold of the downgrade
	w.expect(t, "5 Mb/s right after a downgrade", 1)
	w.now += upgradeHold
	w.allocate(5_000_000)
	w.expect(t, "5 Mb/s later", 2)
}

func TestAllocatorMaxHeight(t *testing.T) {
	w := newAllocWorld(t, 2, 0)
	if err := w.sub.SetVideoSubscription([]VideoSelection{{ParticipantID: "p0", MaxHeight: 180}, {ParticipantID: "p1", MaxHeight: 100}}, true); err != nil {
		t.Fatal(err)
	}
	w.allocate(10_000_000)
	w.expect(t, "tiles of 180 and 100 pixels", 1, 0)
}

func TestAllocatorSubscriptionAndLastN(t *testing.T) {
	w := newAllocWorld(t, 4, 2)
	w.allocate(10_000_000)
	w.expect(t, "last-2 by join order", 2, 2, -1, -1)
	if r := w.h.paused["p3/p3-video"]; r != PauseNotSelected {
		t.Errorf("p3 paused for %q, want %q", r, PauseNotSelected)
	}
	w.c.setSpeakerRanking([]string{"p3", "p2"})
	w.allocate(10_000_000)
	w.expect(t, "last-2 by speaker", -1, -1, 2, 2)
	if err := w.sub.SetVideoSubscription([]VideoSelection{{ParticipantID: "p1"}}, true); err != nil {
		t.Fatal(err)
	}
	w.allocate(10_000_000)
	w.expect(t, "subscribed to p1", -1, 2, -1, -1)
	if err := w.sub.SetVideoSubscription(nil, true); err != nil {
		t.Fatal(err)
	}
	w.allocate(10_000_000)
	w.expect(t, "subscribed to nothing", -1, -1, -1, -1)
	if err := w.sub.SetVideoSubscription(nil, false); err != nil {
		t.Fatal(err)
	}
	w.allocate(10_000_000)
	w.expect(t, "back to last-N", -1, -1, 2, 2)
	for _, bad := range [][]VideoSelection{{{ParticipantID: ""}}, {{ParticipantID: "x", MaxHeight: -1}},
		make([]VideoSelection, MaxVideoSelections+1)} {
		if err := w.sub.SetVideoSubscription(bad, true); err == nil {
			t.Errorf("accepted %d selections starting %+v", len(bad), bad[0])
		}
	}
}

// Publishers hear which layers anybody receives: a layer nobody forwards
// is turned off after the grace, and on again at once when wanted.
func TestLayersWanted(t *testing.T) {
	w := newAllocWorld(t, 1, 0)
	up := w.ups[0]
	d := w.sub.sub.downs[up]
	if err := w.sub.SetVideoSubscription([]VideoSelection{{ParticipantID: "p0", MaxHeight: 180}}, true); err != nil {
		t.Fatal(err)
	}
	w.allocate(10_000_000)
	d.sel.current.Store(2) // forwarding h
	up.updateWantedLayers(w.now)
	if got := w.h.layers[up.id]; got != nil {
		t.Fatalf("told %v at once", got)
	}
	w.now += layerOffGrace
	up.updateWantedLayers(w.now)
	if got := fmt.Sprint(w.h.layers[up.id]); got != "[h]" {
		t.Fatalf("after the grace: told %s, want [h]", got)
	}
	// f is off: it still counts for the allocator (it can come back),
	// so a bigger tile gets it and the publisher is told at once.
	if err := w.sub.SetVideoSubscription([]VideoSelection{{ParticipantID: "p0"}}, true); err != nil {
		t.Fatal(err)
	}
	f := up.stream(2)
	f.stats.lastAt.Store(1) // not sending
	w.silent[f] = true
	w.allocate(10_000_000)
	w.expect(t, "f turned off at the publisher", 2)
	up.updateWantedLayers(w.now)
	if got := fmt.Sprint(w.h.layers[up.id]); got != "[h f]" {
		t.Fatalf("told %s, want [h f]", got)
	}
	// Nobody at all: everything off after the grace.
	if err := w.sub.SetVideoSubscription([]VideoSelection{}, true); err != nil {
		t.Fatal(err)
	}
	w.allocate(10_000_000)
	d.sel.current.Store(0)
	up.updateWantedLayers(w.now)
	w.now += layerOffGrace
	up.updateWantedLayers(w.now)
	if got := fmt.Sprint(w.h.layers[up.id]); got != "[]" {
		t.Fatalf("nobody watching: told %s, want []", got)
	}
}

// Before the estimate was verified (the first probe), it is a guess: no
// video is paused on its account.
func TestAllocatorDoesNotPauseOnTheStartGuess(t *testing.T) {
	w := newAllocWorld(t, 3, 0)
	w.sub.video.bwe.verified.Store(false)
	w.allocate(300_000)
	w.expect(t, "300 kb/s, unverified", 0, 0, 0)
	w.sub.video.bwe.verified.Store(true)
	w.allocate(300_000)
	w.now += pauseAfter
	w.allocate(300_000)
	w.expect(t, "300 kb/s, verified", 0, 0, -1)
}

// The speaker announcements become the last-N ranking: the dominant
// speaker, who speaks now, then who spoke before, most recent first.
func TestSpeakerRanking(t *testing.T) {
	w := newAllocWorld(t, 4, 2)
	w.c.noteSpeakers([]SpeakerInfo{{ParticipantID: "p1"}}, "p1")
	w.c.noteSpeakers([]SpeakerInfo{{ParticipantID: "p3"}, {ParticipantID: "p2"}}, "p3")
	if got := fmt.Sprint(*w.c.video.ranking.Load()); got != "[p3 p2 p1]" {
		t.Fatalf("ranking %s", got)
	}
	w.c.noteSpeakers(nil, "")
	if got := fmt.Sprint(*w.c.video.ranking.Load()); got != "[p3 p2 p1]" {
		t.Fatalf("ranking after silence %s, want the same: most recent first", got)
	}
	w.allocate(10_000_000)
	w.expect(t, "last-2 by ranking", -1, -1, 2, 2)
	w.c.noteSpeakers([]SpeakerInfo{{ParticipantID: "p0"}}, "p0")
	w.allocate(10_000_000)
	w.expect(t, "p0 speaks", 2, -1, -1, 2)
}

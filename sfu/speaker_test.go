package sfu

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// The detector on a synthetic clock: tracks get levels, tick runs.

type speakerRecorder struct {
	silentPeer
	mu     sync.Mutex
	events []string // dominant of each event
}

func (s *speakerRecorder) Speakers(_ []SpeakerInfo, dominant string) {
	s.mu.Lock()
	s.events = append(s.events, dominant)
	s.mu.Unlock()
}

type detectorRig struct {
	c      *Call
	d      *speakerDetector
	tracks map[string]*upTrack
	rec    *speakerRecorder
	now    time.Time
}

func newDetectorRig(n, topN int) *detectorRig {
	c := &Call{cfg: Config{AudioTopN: topN, Observer: nopObserver{}, Logger: zap.NewNop()},
		participants: map[string]*Participant{}, log: zap.NewNop()}
	r := &detectorRig{c: c, tracks: map[string]*upTrack{}, rec: &speakerRecorder{}, now: time.Unix(1000, 0)}
	for i := range n {
		id := fmt.Sprintf("p%d", i)
		p := &Participant{id: id, handler: r.rec, tracks: map[string]*upTrack{}}
		t := &upTrack{id: id + "-audio", kind: webrtc.RTPCodecTypeAudio, owner: p, cfg: &c.cfg}
		t.forward.Store(true)
		p.tracks["0"] = t
		c.participants[id] = p
		r.tracks[id] = t
	}
	r.d = newSpeakerDetector(c)
	return r
}

// run advances d with each track at its level (-dBov; 127 silence), 2.5
// packets per 50 ms tick as Opus sends.
func (r *detectorRig) run(d time.Duration, levels func(id string, tick int) uint8) {
	for i := 0; i < int(d/selectInterval); i++ {
		for id, t := range r.tracks {
			for k := 0; k < 2+i%2; k++ {
				t.meter.add(&ingestExt{audioLevel: levels(id, i), hasLevel: true})
			}
		}
		r.now = r.now.Add(selectInterval)
		r.d.tick(r.now)
	}
}

func (r *detectorRig) forwarded() map[string]bool {
	out := map[string]bool{}
	for id, t := range r.tracks {
		if !t.gate.Load() || t.forward.Load() {
			out[id] = true
		}
	}
	return out
}

func TestDetectorForwardsTheLoudestAndTheDominant(t *testing.T) {
	r := newDetectorRig(10, 3)
	loud := map[string]uint8{"p0": 20, "p1": 26, "p2": 32, "p3": 38}
	level := func(id string, _ int) uint8 {
		if l, ok := loud[id]; ok {
			return l
		}
		return 127
	}
	r.run(2*time.Second, level)
	got := r.forwarded()
	if len(got) != 3 || !got["p0"] || !got["p1"] || !got["p2"] {
		t.Fatalf("forwarded %v, want p0 p1 p2 (the 3 loudest; p0 is also dominant)", got)
	}
	if d := r.d.dominantID(); d != "p0" {
		t.Fatalf("dominant %q, want p0", d)
	}

	// Levels jitter by ±3 dB every tick for 6 s: the dominant speaker and
	// the forwarded set hold, and events stay under 3 a second.
	before := len(r.rec.events)
	r.run(6*time.Second, func(id string, i int) uint8 {
		l := level(id, i)
		if l < 127 {
			l = uint8(int(l) + (i%3-1)*3)
		}
		return l
	})
	if d := r.d.dominantID(); d != "p0" {
		t.Errorf("dominant flapped to %q under jitter", d)
	}
	if n := len(r.rec.events) - before; n > 18 {
		t.Errorf("%d speakers events in 6 s of jitter", n)
	}
	// A silent participant starts talking loudest as p0 stops: forwarded at
	// the next tick, dominant within 500 ms.
	loud["p5"] = 10
	delete(loud, "p0")
	start := r.now
	for !r.forwarded()["p5"] {
		r.run(selectInterval, level)
		if r.now.Sub(start) > time.Second {
			t.Fatal("p5 never forwarded")
		}
	}
	if took := r.now.Sub(start); took > 100*time.Millisecond {
		t.Errorf("p5 forwarded after %v, want ≤ 100 ms", took)
	}
	for r.d.dominantID() != "p5" {
		r.run(selectInterval, level)
		if r.now.Sub(start) > 500*time.Millisecond {
			t.Fatalf("p5 not dominant 500 ms after it started: %q", r.d.dominantID())
		}
	}
}

func TestDetectorSmallCallForwardsEverything(t *testing.T) {
	r := newDetectorRig(4, 3) // 4 ≤ N+1: nobody would receive more than 3 anyway
	r.run(time.Second, func(id string, _ int) uint8 { return 127 })
	if got := r.forwarded(); len(got) != 4 {
		t.Fatalf("forwarded %v in a call of 4 with top-3", got)
	}
	r = newDetectorRig(10, 0) // --audio-top-n 0
	r.run(time.Second, func(id string, _ int) uint8 { return 127 })
	if got := r.forwarded(); len(got) != 10 {
		t.Fatalf("forwarded %v with top-N off", got)
	}
}

func TestLevelMeterHoldsWordEndings(t *testing.T) {
	var m levelMeter
	speech, silence := &ingestExt{audioLevel: 30, hasLevel: true}, &ingestExt{audioLevel: 127, hasLevel: true}
	m.add(speech)
	for i := 1; i <= silenceHold; i++ {
		if m.add(silence) {
			t.Fatalf("silent packet %d after speech already cut", i)
		}
	}
	if !m.add(silence) {
		t.Fatal("silence past the hold still forwarded")
	}
	if m.add(speech) {
		t.Fatal("speech after silence not forwarded at once")
	}
	if m.add(&ingestExt{}) {
		t.Fatal("a packet without a level counted as silence")
	}
}

package sfu

import (
	"math/rand/v2"
	"testing"
)

// The estimator against a simulated path: a sender that sends what the
// estimate allows (up to what its application has), a bottleneck with a
// drop-tail queue, random loss, and a receiver that sends the server's own
// transport-wide feedback every 50 ms — the same recorder and parser the
// real path uses, only the clock is simulated.

type bweSim struct {
	t         *testing.T
	e         *bandwidthEstimator
	sent      sentRecord
	recv      twccRecorder
	rng       *rand.Rand
	now       int64 // ns
	seq       uint16
	capacity  float64 // bits/s of the bottleneck
	maxQueue  int64   // ns of queue before drops
	lossPct   int
	appRate   float64 // what the application would send, bits/s
	layered   bool    // the application picks a layer as the allocator would
	linkFree  int64
	nextSend  int64
	nextFB    int64
	inFlight  []simArrival // arrivals not yet reached the receiver (in order)
	fbQueue   []simFeedback
	delivered int
	dropped   int
	buf       []byte
}

type simArrival struct {
	seq uint16
	at  int64
}

type simFeedback struct {
	at  int64
	pkt []byte
}

const simOneWay = 20e6 // ns of propagation each way

func newBWESim(t *testing.T, capacity, app float64) *bweSim {
	return &bweSim{t: t, e: newBandwidthEstimator(), rng: rand.New(rand.NewPCG(1, 2)), now: 1e9,
		capacity: capacity, maxQueue: 300e6, appRate: app, buf: make([]byte, 1500)}
}

// send puts one packet of size bytes on the path at the current time.
func (s *bweSim) send(size int, probe bool) uint16 {
	s.seq++
	s.sent.note(s.seq, size, s.now, probe)
	if s.lossPct > 0 && s.rng.IntN(100) < s.lossPct {
		s.dropped++
		return s.seq
	}
	start := max(s.now, s.linkFree)
	if start-s.now > s.maxQueue {
		s.dropped++ // the queue is full
		return s.seq
	}
	done := start + int64(float64(size*8)*1e9/s.capacity)
	s.linkFree = done
	s.inFlight = append(s.inFlight, simArrival{s.seq, done + simOneWay})
	return s.seq
}

// run advances the simulation by d ns, 1 ms at a time.
func (s *bweSim) run(d int64) {
	end := s.now + d
	for ; s.now < end; s.now += 1e6 {
		// The receiver gets what arrived by now.
		i := 0
		for ; i < len(s.inFlight) && s.inFlight[i].at <= s.now; i++ {
			s.recv.record(s.inFlight[i].seq, s.inFlight[i].at)
			s.delivered++
		}
		s.inFlight = s.inFlight[i:]
		if s.now >= s.nextFB {
			s.nextFB = s.now + 50e6
			if n := s.recv.build(s.buf, 1, 2); n > 0 {
				s.fbQueue = append(s.fbQueue, simFeedback{s.now + simOneWay, append([]byte(nil), s.buf[:n]...)})
			}
		}
		for len(s.fbQueue) > 0 && s.fbQueue[0].at <= s.now {
			s.e.onFeedback(s.fbQueue[0].pkt, &s.sent, s.now)
			s.fbQueue = s.fbQueue[1:]
			if target, ok := s.e.probeDue(s.now); ok {
				s.probe(target)
			}
		}
		// The sender: 1200-byte packets at min(estimate, application).
		rate := min(float64(s.e.estimate.Load()), s.appRate)
		if s.layered {
			rate = simLayer(s.estimate())
		}
		for s.nextSend <= s.now {
			s.send(1200, false)
			s.nextSend += int64(1200 * 8 * 1e9 / rate)
		}
	}
}

// probe sends a train as Participant.sendProbe does.
func (s *bweSim) probe(target float64) {
	n := max(probeMinPackets, min(probeBytes(target)/1200, probeMaxPackets))
	var first, last int64
	for k := range n {
		seq := s.send(1200, true)
		ext := s.e.highest + int64(seq-uint16(s.e.highest))
		if k == 0 {
			first = ext
		}
		last = ext
	}
	s.e.probe.started(first, last, n, target, s.e.current(), s.now)
}

func (s *bweSim) estimate() float64 { return float64(s.e.estimate.Load()) }

// simLayer is the allocator's choice among 150 k, 500 k and 1.5 Mb/s layers
// (with audio, 40 kb/s), with its margin.
func simLayer(est float64) float64 {
	for _, l := range []float64{1_500_000, 500_000} {
		if (l+40_000)*upMargin <= est {
			return l + 40_000
		}
	}
	return 190_000
}

func TestBWEConvergesBelowABottleneck(t *testing.T) {
	s := newBWESim(t, 600_000, 3_000_000)
	s.e.wanted.Store(3_000_000)
	s.run(10e9)
	if est := s.estimate(); est > 660_000 || est < 300_000 {
		t.Errorf("estimate %.0f b/s after 10 s on a 600 kb/s path", est)
	}
	// Settled: the estimate stays under the capacity, and the queue (what
	// the path drops) stays small.
	s.dropped, s.delivered = 0, 0
	var peak float64
	for range 20 {
		s.run(500e6)
		peak = max(peak, s.estimate())
	}
	loss := float64(s.dropped) / float64(s.dropped+s.delivered)
	t.Logf("after settling: peak estimate %.0f b/s, loss %.2f%%", peak, 100*loss)
	if peak > 720_000 {
		t.Errorf("estimate peaked at %.0f b/s on a 600 kb/s path", peak)
	}
	if loss > 0.02 {
		t.Errorf("%.1f%% of packets lost on the bottleneck once settled", 100*loss)
	}
}

func TestBWEStartsAt800k(t *testing.T) {
	e := newBandwidthEstimator()
	if got := e.estimate.Load(); got != bweInitial || bweInitial != 800_000 {
		t.Fatalf("initial estimate %d", got)
	}
}

// A receiver held on a low layer (the application sends 200 kb/s) on a fast
// path: probes find the room the allocator wants.
func TestBWEProbesFindRoom(t *testing.T) {
	s := newBWESim(t, 50_000_000, 200_000)
	s.e.wanted.Store(2_500_000)
	s.run(5e9)
	if est := s.estimate(); est < 2_500_000 {
		t.Errorf("estimate %.0f b/s after 5 s of probing for 2.5 Mb/s on a 50 Mb/s path", est)
	}
	if s.e.probe.interval == 0 {
		t.Error("no probe")
	}
}

// Without anything wanted beyond the estimate, nothing is probed, and an
// application-limited sender does not inflate the estimate past 1.5× what
// it sends.
func TestBWENoProbeWhenNothingWanted(t *testing.T) {
	s := newBWESim(t, 50_000_000, 200_000)
	s.e.probe.initialDone = true // no start probe either
	s.run(5e9)
	if est := s.estimate(); est > 900_000 {
		t.Errorf("estimate %.0f b/s grew past the start without probes", est)
	}
}

// Random loss above 10% brings the estimate down even without a queue.
func TestBWELossBased(t *testing.T) {
	s := newBWESim(t, 50_000_000, 3_000_000)
	s.run(2e9)
	before := s.estimate()
	s.lossPct = 25
	s.run(6e9)
	if est := s.estimate(); est > 0.35*before {
		t.Errorf("estimate %.0f b/s after 6 s of 25%% loss, %.0f before", est, before)
	}
}

// The path's capacity goes from 600 kb/s to 10 Mb/s: probes find it.
func TestBWERecoversWhenTheLimitLifts(t *testing.T) {
	s := newBWESim(t, 600_000, 0)
	s.layered = true
	s.e.wanted.Store(2_200_000)
	s.run(10e9)
	if est := s.estimate(); est > 660_000 {
		t.Fatalf("estimate %.0f b/s on the 600 kb/s path", est)
	}
	if r := simLayer(s.estimate()); r != 190_000 {
		t.Fatalf("the 600 kb/s path gets %.0f b/s, want the low layer", r)
	}
	s.capacity = 10_000_000
	lifted := s.now
	for s.estimate() < 2_000_000 && s.now-lifted < 15e9 {
		s.run(100e6)
	}
	took := float64(s.now-lifted) / 1e9
	t.Logf("estimate %.0f b/s %.1f s after the limit lifted", s.estimate(), took)
	if s.estimate() < 2_000_000 {
		t.Errorf("estimate %.0f b/s 15 s after the limit lifted", s.estimate())
	}
}

func TestBWEFeedbackDoesNotAllocate(t *testing.T) {
	s := newBWESim(t, 5_000_000, 1_000_000)
	s.run(2e9) // warm up
	var fbs [][]byte
	for range 50 {
		for range 20 {
			s.seq++
			s.now += 1e6
			s.sent.note(s.seq, 1200, s.now, false)
			s.recv.record(s.seq, s.now+20e6)
		}
		n := s.recv.build(s.buf, 1, 2)
		fbs = append(fbs, append([]byte(nil), s.buf[:n]...))
	}
	i := 0
	if a := testing.AllocsPerRun(40, func() {
		s.e.onFeedback(fbs[i], &s.sent, s.now)
		i++
	}); a != 0 {
		t.Errorf("%.1f allocations per feedback", a)
	}
}

package sfu

import (
	"math"
	"sync/atomic"
)

// Send-side bandwidth estimation toward one subscriber, from its
// transport-wide feedback: Google congestion control
// (draft-ietf-rmcat-gcc-02) — a delay-based estimate (bwe_delay.go: trendline
// and overuse detector driving an AIMD rate controller, §5.5) and a
// loss-based one (§6), the smaller of the two being the estimate — plus
// probe clusters (bwe_probe.go) that let the estimate grow beyond what is
// being sent, which a receiver held on a low layer needs to ever get back
// up.
//
// It is Orville's own rather than pion/interceptor's gcc package: that one
// only learns what was sent through its own pacer and RTP writer chain
// (a lock and a list element per packet, goroutines of its own), and its
// estimators are unexported, so they cannot be fed from the forwarder's
// atomic send record and the feedback parsed here. Everything below runs on
// the goroutine that reads the subscriber's RTCP; the estimate is published
// through an atomic for the allocator.

// Rates in bits per second.
const (
	bweInitial = 800_000    // the start; pion's gcc starts at 10 kb/s
	bweMin     = 30_000     // below this nothing useful flows anyway
	bweMax     = 20_000_000 // far above any allocation

	aimdBeta        = 0.85 // gcc-02 §5.5: A = beta * R_hat on overuse
	aimdIncrease    = 1.08 // multiplicative increase per second (eta)
	aimdAdditive    = 40_000
	aimdDecreaseGap = 200e6 // ns between two decreases: one round trip or so
	throughputCap   = 1.5   // the estimate grows to at most 1.5× what arrives (+10 kb/s)

	lossWindow   = 500e6 // ns of feedback per loss-based update
	lossMinCount = 10
	lossHigh     = 0.10 // gcc-02 §6: above, decrease by half the loss
	lossLow      = 0.02 // below, increase

	ackedWindow = 500e6 // ns of arrivals per received-rate sample
)

type aimdState int8

const (
	aimdHold aimdState = iota
	aimdIncreasing
	aimdDecreasing
)

// bandwidthEstimator is one subscriber transport's estimator.
type bandwidthEstimator struct {
	delay delayDetector
	probe probeState

	rate, lossRate float64 // delay-based (AIMD) and loss-based estimates
	state          aimdState
	lastUpdate     int64 // ns, server clock
	lastDecrease   int64
	capacity       float64 // average rate at past decreases; 0: unknown
	capacityVar    float64

	// received rate (what the path delivers), from arrival times
	ackedRate                float64
	ackedAt                  int64 // server clock of the last sample
	ackedBytes               int
	ackedStart, ackedLastArr int64
	ackedOpen                bool

	lossTotal, lossLost int
	lossSince           int64

	started bool
	highest int64 // extended transport-wide sequence number processed

	statuses [maxFeedbackStatuses]twccStatus

	// Published for the allocator and the API.
	estimate atomic.Int64
	lossPct  atomic.Int32 // last loss-based window, in 1/10 %
	// wanted is what the allocator would send with no limit (set by it):
	// when it is above the estimate, probing finds out whether it fits.
	wanted atomic.Int64
	// verified: the estimate rests on the path's answer (the first probe
	// train reported, or the controllers reacted to congestion), not on
	// the starting guess.
	verified atomic.Bool
}

func newBandwidthEstimator() *bandwidthEstimator {
	e := &bandwidthEstimator{delay: newDelayDetector(), rate: bweInitial, lossRate: bweInitial}
	e.estimate.Store(bweInitial)
	e.probe.interval = probeIntervalMin
	return e
}

// onFeedback takes one transport-wide feedback packet, at now (ns since the
// call's epoch). sent is the transport's send record.
func (e *bandwidthEstimator) onFeedback(pkt []byte, sent *sentRecord, now int64) {
	n, _, ok := parseTWCC(pkt, e.statuses[:])
	if !ok {
		return
	}
	usage, any := e.delay.state, false
	for i := range n {
		st := &e.statuses[i]
		ext := int64(st.seq)
		if e.started {
			ext = e.highest + int64(int16(st.seq-uint16(e.highest)))
			if ext <= e.highest {
				continue // reported already
			}
		}
		at, size, probe, ok := sent.lookup(st.seq, now)
		if !ok {
			continue
		}
		e.started, e.highest = true, ext
		if probe {
			// Probes measure capacity (their loss says "no room" there);
			// they are not the stream's delay or loss.
			e.probe.ack(ext, st.received, st.arrival, size)
			continue
		}
		e.lossTotal++
		if !st.received {
			e.lossLost++
			continue
		}
		e.addAcked(size, st.arrival, now)
		usage, any = e.delay.add(at, st.arrival, size, now), true
	}
	initial := e.probe.initial && e.probe.active
	r, done := e.probe.result(e.highest, now)
	if initial && !e.probe.active {
		e.verified.Store(true) // a result, or a train too lossy to give one
	}
	if done && (r > e.current() || initial) {
		e.rate, e.lossRate, e.state = r, max(e.lossRate, r), aimdHold
		if initial {
			e.lossRate = r
		}
		e.capacity = 0 // the path changed: relearn where it saturates
	}
	if any {
		if now < e.probe.guardUntil && usage == usageOver {
			usage = usageNormal // the delay our own probe caused
		}
		e.updateAIMD(usage, now)
	}
	e.updateLoss(now)
	e.estimate.Store(int64(e.current()))
}

// current is the estimate: the smaller of the delay- and loss-based ones.
func (e *bandwidthEstimator) current() float64 {
	return max(bweMin, min(e.rate, e.lossRate, bweMax))
}

// addAcked accumulates received bytes into a rate sample per ackedWindow of
// arrival time.
func (e *bandwidthEstimator) addAcked(size int, arrival, now int64) {
	if !e.ackedOpen || arrival < e.ackedStart {
		e.ackedOpen, e.ackedStart, e.ackedBytes = true, arrival, 0
	}
	e.ackedBytes += size
	e.ackedLastArr = max(e.ackedLastArr, arrival)
	if span := e.ackedLastArr - e.ackedStart; span >= ackedWindow {
		sample := float64(e.ackedBytes) * 8e9 / float64(span)
		if e.ackedAt == 0 || now-e.ackedAt > 2e9 {
			e.ackedRate = sample
		} else {
			e.ackedRate = 0.5*e.ackedRate + 0.5*sample
		}
		e.ackedAt = now
		e.ackedOpen = false
	}
}

// acked is the received rate, or 0 when there is no recent sample.
func (e *bandwidthEstimator) acked(now int64) float64 {
	if e.ackedAt == 0 || now-e.ackedAt > 2e9 {
		return 0
	}
	return e.ackedRate
}

// updateAIMD is the rate controller (gcc-02 §5.5): overuse decreases to
// beta times the received rate, normal use increases — multiplicatively
// far from the last congestion point, additively near it — and underuse
// holds, letting queues drain.
func (e *bandwidthEstimator) updateAIMD(usage bandwidthUsage, now int64) {
	dt := 0.0
	if e.lastUpdate != 0 {
		dt = min(float64(now-e.lastUpdate)/1e9, 1)
	}
	e.lastUpdate = now
	switch usage {
	case usageOver:
		e.state = aimdDecreasing
	case usageUnder:
		e.state = aimdHold
	default:
		if e.state == aimdHold {
			e.state = aimdIncreasing
		}
	}
	acked := e.acked(now)
	switch e.state {
	case aimdIncreasing:
		next := e.rate * math.Pow(aimdIncrease, dt)
		if e.nearCapacity() {
			next = e.rate + aimdAdditive*dt
		}
		if acked > 0 {
			// Never past what the path has shown it carries, but never
			// lowered by it either (an application-limited sender).
			next = min(next, max(e.rate, throughputCap*acked+10_000))
		}
		e.rate = max(e.rate, next)
	case aimdDecreasing:
		if now-e.lastDecrease < aimdDecreaseGap {
			return
		}
		next := aimdBeta * e.rate
		if acked > 0 {
			next = aimdBeta * acked
			e.learnCapacity(acked)
		}
		e.rate = max(bweMin, min(e.rate, next))
		e.lastDecrease = now
		e.state = aimdHold
		e.verified.Store(true)
	}
}

// nearCapacity: the rate is within three deviations of where the path
// saturated before, so increases go slowly.
func (e *bandwidthEstimator) nearCapacity() bool {
	if e.capacity == 0 {
		return false
	}
	sd := math.Sqrt(e.capacityVar * e.capacity)
	return e.rate > e.capacity-3*sd && e.rate < e.capacity+3*sd
}

// learnCapacity averages the received rate at decreases (libwebrtc's
// link capacity estimate), in normalized variance.
func (e *bandwidthEstimator) learnCapacity(acked float64) {
	if e.capacity == 0 {
		e.capacity, e.capacityVar = acked, 0.4
		return
	}
	sd := math.Sqrt(e.capacityVar * e.capacity)
	if acked > e.capacity+3*sd || acked < e.capacity-3*sd {
		e.capacity, e.capacityVar = acked, 0.4 // the path changed
		return
	}
	e.capacity = 0.95*e.capacity + 0.05*acked
	d := (e.capacity - acked) / e.capacity
	e.capacityVar = max(0.4, min(0.95*e.capacityVar+0.05*d*d, 2.5))
}

// updateLoss is the loss-based controller (gcc-02 §6) over windows of
// feedback: heavy loss cuts the estimate by half the loss fraction, little
// loss lets it grow, in between it holds.
func (e *bandwidthEstimator) updateLoss(now int64) {
	if e.lossSince == 0 {
		e.lossSince = now
	}
	if now-e.lossSince < lossWindow || e.lossTotal < lossMinCount {
		return
	}
	p := float64(e.lossLost) / float64(e.lossTotal)
	e.lossPct.Store(int32(p * 1000))
	switch {
	case p > lossHigh:
		e.lossRate = e.current() * (1 - 0.5*p)
		e.verified.Store(true)
	case p < lossLow:
		e.lossRate = min(e.lossRate*aimdIncrease, bweMax)
		if e.lossRate < e.rate {
			e.lossRate = max(e.lossRate, min(e.rate, e.lossRate*1.5)) // catch up after a loss episode
		}
	}
	e.lossTotal, e.lossLost, e.lossSince = 0, 0, now
}

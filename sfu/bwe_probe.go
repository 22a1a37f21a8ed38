package sfu

// Probe clusters. A receiver held on a low layer sends little, and a
// delay-based estimate grows only to 1.5× what arrives: without probing it
// would never learn that the path has room for more. So when the allocator
// wants more than the estimate, the server sends a short train of packets
// back to back — retransmissions, on the RTX stream, of packets the
// subscriber already has, so the train carries nothing new and the
// receiver discards it — and measures from the feedback how fast the path
// delivered it: the train's dispersion at the bottleneck is the path's
// capacity (libwebrtc's probe controller and ProbeBitrateEstimator work the
// same way). Trains are sent where the subscriber's feedback arrives, on
// the goroutine that owns its RTX state: no timer, no hand-off.

const (
	probeIntervalMin   = 1e9  // ns between probes while they keep finding room
	probeIntervalMax   = 5e9  // ns between probes that keep failing
	probeTrainTime     = 40e6 // ns of the target rate one train carries
	probeMinPackets    = 6
	probeMaxPackets    = 24
	probeMinReceived   = 5
	probeTimeout       = 1e9   // ns: a train not fully reported by then is forgotten
	probeGuard         = 500e6 // ns of overuse after a train that is the train's own queue
	probeUtilization   = 0.9   // of the measured rate, as the new estimate
	probeMaxRate       = 8_000_000
	probeWantedMargin  = 1.25 // probe a little beyond what the allocator wants
	probeInitialFactor = 3    // the first train probes for 3× the start estimate
	probeStep          = 2    // later ones for at most 2× the estimate
)

// probeState is one subscriber transport's probing; the estimator's
// goroutine owns it.
type probeState struct {
	active         bool
	first, last    int64 // extended transport-wide sequence numbers of the train
	target         float64
	sentAt         int64
	sent, received int
	arrivals       [probeMaxPackets]probeArrival
	next           int64 // earliest next train
	interval       int64
	guardUntil     int64
	estimateBefore float64
	seqsKnown      bool
	// initial: the first train has not reported yet. Its result replaces
	// the start estimate, up or down: 800 kb/s is a guess, and a receiver
	// on a thinner path should not first be given layers it cannot take.
	initialDone, initial bool
}

type probeArrival struct {
	at   int64
	size int
}

// ack notes one train packet's status.
func (s *probeState) ack(ext int64, received bool, arrival int64, size int) {
	if !s.active || !s.seqsKnown || ext < s.first || ext > s.last || !received || s.received == len(s.arrivals) {
		return
	}
	s.arrivals[s.received] = probeArrival{arrival, size}
	s.received++
}

// dispersion is the rate at which the path delivered the train: the lower
// of the whole train's (but its first packet) and its later half's. The
// first packets of a back-to-back train may pass a bottleneck's burst
// allowance (a token bucket's) at line rate, after which they come out at
// the bottleneck's rate: the later half shows that rate. A receiver that
// reads late timestamps packets late, in a bunch: then the whole train's
// span is the better one. ok is false when the whole train arrived within a
// millisecond: no bottleneck to speak of.
func (s *probeState) dispersion() (rate float64, ok bool) {
	a := s.arrivals[:s.received]
	for i := 1; i < len(a); i++ { // by arrival; a few dozen at most
		for j := i; j > 0 && a[j].at < a[j-1].at; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
	over := func(from int) (float64, bool) {
		bytes := 0
		for _, p := range a[from+1:] {
			bytes += p.size
		}
		span := a[len(a)-1].at - a[from].at
		if span <= 1e6 {
			return 0, false
		}
		return float64(bytes) * 8e9 / float64(span), true
	}
	rate, ok = over(0)
	if late, lok := over(len(a) / 2); lok && (!ok || late < rate) {
		rate, ok = late, true
	}
	return rate, ok
}

// result finishes a train once the feedback reported all of it (highest is
// the newest sequence number reported) and returns the estimate it
// supports; done is false while it is still out or when there was none.
func (s *probeState) result(highest, now int64) (rate float64, done bool) {
	if !s.active || !s.seqsKnown {
		return 0, false
	}
	if highest < s.last && now-s.sentAt < probeTimeout {
		return 0, false
	}
	s.active = false
	if s.received < probeMinReceived || s.received*10 < s.sent*8 {
		s.backOff()
		return 0, false // too much of it was lost to say anything but "no room"
	}
	rate = s.target
	if r, ok := s.dispersion(); ok {
		rate = min(rate, r)
	}
	rate *= probeUtilization
	if s.initial {
		s.next = now + s.interval
		return rate, true
	}
	if rate < s.estimateBefore*1.1 {
		s.backOff()
	} else {
		s.interval = probeIntervalMin
	}
	s.next = now + s.interval
	return rate, true
}

func (s *probeState) backOff() {
	s.interval = min(max(2*s.interval, 2*probeIntervalMin), probeIntervalMax)
	s.next = s.sentAt + s.interval
}

// due decides whether to send a train now and at what rate: the allocator
// wants more than the estimate, nothing is in flight, the path is not
// congested, and the interval since the last train has passed.
func (e *bandwidthEstimator) probeDue(now int64) (target float64, ok bool) {
	s := &e.probe
	if !e.started || s.active || now < s.next || e.delay.state == usageOver || e.lossPct.Load() > 50 {
		return 0, false
	}
	est := e.current()
	wanted := float64(e.wanted.Load())
	if !s.initialDone {
		return min(max(wanted*probeWantedMargin, probeInitialFactor*bweInitial), probeMaxRate), true
	}
	if wanted <= est*1.05 {
		return 0, false
	}
	// At most twice the estimate per train: a receiver that timestamps a
	// train late can make it look faster than the path, and a step at a
	// time bounds what such a reading costs.
	return min(wanted*probeWantedMargin, probeStep*est, probeMaxRate), true
}

// probeBytes is what a train at target carries.
func probeBytes(target float64) int { return int(target * probeTrainTime / 8e9) }

// started records a train sent at now: its sequence numbers first..last.
func (s *probeState) started(first, last int64, sent int, target, estimate float64, now int64) {
	initial := !s.initialDone
	*s = probeState{active: true, first: first, last: last, target: target, sentAt: now, sent: sent,
		interval: s.interval, guardUntil: now + probeGuard, estimateBefore: estimate, seqsKnown: true,
		next: now + s.interval, initialDone: true, initial: initial}
}

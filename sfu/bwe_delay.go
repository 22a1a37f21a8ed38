package sfu

// The delay-based half of the bandwidth estimator (draft-ietf-rmcat-gcc-02
// §5, with the trendline filter libwebrtc replaced the Kalman filter with):
// packets are grouped by send time, the change of one-way delay between
// consecutive groups is accumulated, smoothed, and the slope of its trend
// over the last groups is compared with an adaptive threshold. A rising
// trend means a queue is building on the path: overuse.

// bandwidthUsage is the detector's verdict (gcc-02 §5.4).
type bandwidthUsage int8

const (
	usageNormal bandwidthUsage = iota
	usageOver
	usageUnder
)

// Parameters from gcc-02 §5.4 and libwebrtc's trendline estimator.
const (
	groupSpan          = 5e6   // ns: packets sent within 5 ms form one group (gcc-02 §5.2)
	burstMaxDuration   = 100e6 // ns: a burst of arrivals joins one group for at most this long
	trendWindow        = 20    // groups in the linear regression
	trendSmoothing     = 0.9   // of the accumulated delay
	trendGain          = 4.0   // scales the slope into milliseconds
	trendMaxDeltas     = 60    // caps the gain's growth with the group count
	overuseTime        = 10.0  // ms above the threshold before overuse is declared
	thresholdInitial   = 12.5  // ms (gcc-02 §5.4: del_var_th)
	thresholdMin       = 6.0   // ms
	thresholdMax       = 600.0 // ms
	thresholdUp        = 0.0087
	thresholdDown      = 0.039
	thresholdMaxOffset = 15.0 // ms: larger excursions do not adapt the threshold
)

// packetGroup is a group of packets sent close together (gcc-02 §5.2).
type packetGroup struct {
	firstSend, lastSend int64 // ns, server clock
	firstArr, lastArr   int64 // ns, subscriber clock
	size                int
	valid               bool
}

// delayDetector holds the grouping, trendline and overuse detector state of
// one subscriber transport. It runs where the subscriber's feedback arrives.
type delayDetector struct {
	cur, prev packetGroup

	accumulated, smoothed float64
	firstArr              int64
	haveFirst             bool
	xs, ys                [trendWindow]float64 // ring: arrival (ms), smoothed delay (ms)
	n, next               int
	deltas                int

	threshold      float64
	timeOver       float64 // ms; -1 when not over the threshold
	overCount      int
	prevTrend      float64
	lastThreshTime int64 // ns, server clock
	state          bandwidthUsage
}

func newDelayDetector() delayDetector {
	return delayDetector{threshold: thresholdInitial, timeOver: -1}
}

// add takes one received packet, in transport-wide sequence order; it
// returns the detector's state, updated whenever a group completed.
func (d *delayDetector) add(send, arrival int64, size int, now int64) bandwidthUsage {
	g := &d.cur
	if !g.valid {
		*g = packetGroup{firstSend: send, lastSend: send, firstArr: arrival, lastArr: arrival, size: size, valid: true}
		return d.state
	}
	if send < g.firstSend { // reordered from an earlier group: ignore
		return d.state
	}
	if send-g.firstSend <= groupSpan || d.inBurst(send, arrival) {
		g.lastSend = max(g.lastSend, send)
		g.lastArr = max(g.lastArr, arrival)
		g.size += size
		return d.state
	}
	// A new group starts: the completed one is compared with the one before.
	if d.prev.valid {
		sendDelta := float64(g.lastSend-d.prev.lastSend) / 1e6
		arrDelta := float64(g.lastArr-d.prev.lastArr) / 1e6
		d.update(arrDelta-sendDelta, sendDelta, g.lastArr, now)
	}
	d.prev = *g
	*g = packetGroup{firstSend: send, lastSend: send, firstArr: arrival, lastArr: arrival, size: size, valid: true}
	return d.state
}

// inBurst: a packet that arrives within 5 ms of the group's last arrival
// while its send gap is larger came through a queue that was draining; it
// belongs to the group (libwebrtc's InterArrival::BelongsToBurst).
func (d *delayDetector) inBurst(send, arrival int64) bool {
	g := &d.cur
	arrDelta := arrival - g.lastArr
	sendDelta := send - g.lastSend
	return arrDelta >= 0 && arrDelta-sendDelta < 0 && arrDelta <= groupSpan && arrival-g.firstArr < burstMaxDuration
}

// update runs the trendline filter on one group delay variation (ms).
func (d *delayDetector) update(variation, sendDelta float64, arrival, now int64) {
	d.deltas = min(d.deltas+1, 1000)
	if !d.haveFirst {
		d.firstArr, d.haveFirst = arrival, true
	}
	d.accumulated += variation
	d.smoothed = trendSmoothing*d.smoothed + (1-trendSmoothing)*d.accumulated
	d.xs[d.next], d.ys[d.next] = float64(arrival-d.firstArr)/1e6, d.smoothed
	d.next = (d.next + 1) % trendWindow
	d.n = min(d.n+1, trendWindow)
	trend := d.prevTrend
	if d.n == trendWindow {
		if s, ok := slope(d.xs[:], d.ys[:]); ok {
			trend = s
		}
	}
	d.detect(trend, sendDelta, now)
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) (float64, bool) {
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/float64(len(xs)), sy/float64(len(ys))
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0, false
	}
	return num / den, true
}

// detect is the overuse detector (gcc-02 §5.4) on the trend's slope.
func (d *delayDetector) detect(trend, sendDelta float64, now int64) {
	if d.deltas < 2 {
		d.state = usageNormal
		return
	}
	t := float64(min(d.deltas, trendMaxDeltas)) * trend * trendGain
	switch {
	case t > d.threshold:
		if d.timeOver == -1 {
			d.timeOver = sendDelta / 2 // a guess: half of this group was over
		} else {
			d.timeOver += sendDelta
		}
		d.overCount++
		if d.timeOver > overuseTime && d.overCount > 1 && trend >= d.prevTrend {
			d.timeOver, d.overCount = 0, 0
			d.state = usageOver
		}
	case t < -d.threshold:
		d.timeOver, d.overCount = -1, 0
		d.state = usageUnder
	default:
		d.timeOver, d.overCount = -1, 0
		d.state = usageNormal
	}
	d.prevTrend = trend
	d.adaptThreshold(t, now)
}

// adaptThreshold moves the threshold toward |t| (gcc-02 §5.4, eq. 7): up
// slowly, down fast, so that a competing TCP flow does not starve us and
// a real queue is still seen.
func (d *delayDetector) adaptThreshold(t float64, now int64) {
	if d.lastThreshTime == 0 {
		d.lastThreshTime = now
	}
	abs := t
	if abs < 0 {
		abs = -abs
	}
	if abs > d.threshold+thresholdMaxOffset {
		d.lastThreshTime = now
		return
	}
	k := thresholdUp
	if abs < d.threshold {
		k = thresholdDown
	}
	dt := min(float64(now-d.lastThreshTime)/1e6, 100)
	d.threshold += k * (abs - d.threshold) * dt
	d.threshold = max(thresholdMin, min(d.threshold, thresholdMax))
	d.lastThreshTime = now
}

package sfu

import (
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// pump is the egress of one goroutine that handles packets (a call socket's
// loop, or an ICE-TCP reader): datagrams for subscribers are built straight
// into its batch, and flush sends the batch with one sendmmsg(2) on the
// subscribe socket. It also holds that goroutine's scratch state, so that
// the packet path allocates nothing.
type pump struct {
	w   batchWriter
	out []datagram
	n   int

	hdr     rtp.Header // the packet being handled, as SRTP parsed it
	ehdr    rtp.Header // SRTP's scratch when encrypting
	scratch []byte     // one plaintext packet being rewritten
	cached  []byte     // one packet copied out of a cache
	touched []*Participant
	stamp   uint64 // this pump's current batch, for touched
	now     int64  // when the current batch was read, ns since the call's epoch
	epoch   time.Time
	obs     Observer
	counts  batchCounts
}

// batchCounts are the packet counters of one batch, handed to the Observer
// at flush: no shared counter is touched per packet.
type batchCounts struct {
	inPackets, inBytes, outPackets, outBytes [3]int // by webrtc.RTPCodecType
}

func (c *batchCounts) in(kind webrtc.RTPCodecType, bytes int) {
	c.inPackets[kind%3]++
	c.inBytes[kind%3] += bytes
}

func (c *batchCounts) out(kind webrtc.RTPCodecType, bytes int) {
	c.outPackets[kind%3]++
	c.outBytes[kind%3] += bytes
}

// pumpBatch is how many datagrams a pump holds before it must flush: one
// packet fanned out to a full call fits.
const pumpBatch = 256

func newPump(w batchWriter, epoch time.Time, obs Observer) *pump {
	return &pump{w: w, epoch: epoch, obs: obs, out: newDatagrams(pumpBatch), scratch: make([]byte, maxDatagram),
		cached: make([]byte, maxPacketSize), touched: make([]*Participant, 0, 16)}
}

// tick reads the clock for a new batch.
func (p *pump) tick() { p.now = int64(time.Since(p.epoch)) }

// slot returns the buffer of the next datagram, flushing first if full.
func (p *pump) slot() []byte {
	if p.n == len(p.out) {
		p.flush()
	}
	return p.out[p.n].buf
}

// commit queues the n bytes built in the current slot toward t.
func (p *pump) commit(t *transport, n int) {
	switch t.path.Load() {
	case pathUDP:
		a := t.remote.Load()
		if a == nil {
			return
		}
		p.out[p.n].n = n
		p.out[p.n].addr = *a
		p.n++
	case pathTCP:
		t.tcp.Load().enqueue(p.out[p.n].buf[:n])
	}
}

// send sends what the batch holds: called after each packet that fanned
// out, so that a burst of incoming packets read together does not hold the
// first one's copies back until the last is handled (one sendmmsg per
// incoming packet still carries its whole fan-out).
func (p *pump) send() {
	if p.n > 0 {
		p.w.writeBatch(p.out[:p.n])
		p.n = 0
	}
	p.report()
}

// flush sends what the batch holds, then lets every publisher whose
// packets were in it send the feedback that is due (NACKs, transport-wide
// feedback): once per read batch, not once per packet.
func (p *pump) flush() {
	p.send()
	if len(p.touched) > 0 {
		for i, pt := range p.touched {
			pt.afterIngest(p)
			p.touched[i] = nil
		}
		p.touched = p.touched[:0]
	}
	p.stamp++
}

// report hands the batch's counters to the Observer.
func (p *pump) report() {
	c := &p.counts
	var latency time.Duration
	for k := range c.inPackets {
		if c.inPackets[k] > 0 {
			p.obs.PacketsIn(webrtc.RTPCodecType(k), c.inPackets[k], c.inBytes[k])
		}
		if c.outPackets[k] > 0 {
			if latency == 0 {
				latency = time.Since(p.epoch) - time.Duration(p.now)
			}
			p.obs.PacketsOut(webrtc.RTPCodecType(k), c.outPackets[k], c.outBytes[k], latency)
		}
	}
	*c = batchCounts{}
}

// touch notes that pt's packets were handled in this batch.
func (p *pump) touch(pt *Participant) {
	if pt.touchPump == p && pt.touchStamp == p.stamp {
		return
	}
	pt.touchPump, pt.touchStamp = p, p.stamp
	p.touched = append(p.touched, pt)
}

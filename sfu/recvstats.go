package sfu

import (
	"sync/atomic"
)

// recvStats is the reception state of one upStream (RFC 3550 §6.4.1 and
// Appendix A.1, A.8): written by the ingest goroutine, read by the control
// loop that builds receiver reports.
type recvStats struct {
	started  bool
	maxSeq   uint16
	cycles   uint32
	transit  int64
	jitterQ4 int64 // jitter in timestamp units, ×16 (RFC 3550 A.8)

	highest  atomic.Uint32 // extended highest sequence number
	received atomic.Uint32
	base     atomic.Uint32 // extended sequence number of the first packet
	jitter   atomic.Uint32
	lastAt   atomic.Int64 // arrival of the newest packet, ns since the epoch
}

func (r *recvStats) update(seq uint16, ts uint32, now int64, clock uint32) {
	if !r.started {
		r.started = true
		r.maxSeq = seq
		r.base.Store(uint32(seq))
	} else if seqNewer(seq, r.maxSeq) {
		if seq < r.maxSeq {
			r.cycles += 1 << 16
		}
		r.maxSeq = seq
	}
	r.highest.Store(r.cycles | uint32(r.maxSeq))
	r.received.Store(r.received.Load() + 1) // one writer: no locked add
	r.lastAt.Store(now)
	// Interarrival jitter (RFC 3550 A.8), in the stream's clock units.
	arrival := now * int64(clock) / 1e9
	transit := arrival - int64(ts)
	if r.transit != 0 {
		d := transit - r.transit
		if d < 0 {
			d = -d
		}
		r.jitterQ4 += d - (r.jitterQ4+8)>>4
		r.jitter.Store(uint32(r.jitterQ4 >> 4))
	}
	r.transit = transit
}

// rrState is what the control loop keeps between two receiver reports of
// one stream (RFC 3550 A.3).
type rrState struct {
	expectedPrior, receivedPrior uint32
}

func (r *recvStats) block(ssrc uint32, st *rrState, sr *senderInfo, now int64) reportBlock {
	highest, received, base := r.highest.Load(), r.received.Load(), r.base.Load()
	expected := highest - base + 1
	lost := int64(expected) - int64(received)
	lost = max(min(lost, 0x7fffff), -0x800000)
	expInterval := expected - st.expectedPrior
	recvInterval := received - st.receivedPrior
	st.expectedPrior, st.receivedPrior = expected, received
	var fraction uint8
	if expInterval > 0 && recvInterval < expInterval {
		fraction = uint8((expInterval - recvInterval) << 8 / expInterval)
	}
	b := reportBlock{ssrc: ssrc, fractionLost: fraction, totalLost: uint32(lost) & 0xffffff,
		highest: highest, jitter: r.jitter.Load()}
	if sr != nil {
		b.lsr = uint32(sr.ntp >> 16)
		b.dlsr = uint32((now - sr.at) * 65536 / 1e9) // RFC 3550 §6.4.1: units of 1/65536 s
	}
	return b
}

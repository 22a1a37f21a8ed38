package sfu

import "sync/atomic"

// The audio level of a published track, from the RFC 6464 header extension
// (outside the E2EE payload, so readable without keys). The ingest goroutine
// is the only writer: per packet it adds to running counters (plain stores
// to atomics, no locked instruction) and decides whether the packet is
// silence; the speaker detector reads the counters on its timer.
type levelMeter struct {
	// loudness is 127 - level: 0 is silence (-127 dBov), 127 full scale.
	sum     atomic.Uint64 // Σ loudness over all packets with a level
	packets atomic.Uint64
	voice   atomic.Uint64 // packets whose V flag (RFC 6464 §3) was set

	// silentRun counts consecutive silent packets (ingest only).
	silentRun int
	// floor is the detector's noise floor for this track, in loudness units:
	// a packet less than speechMargin above it is silence.
	floor atomic.Int32
}

// speechMargin is how far above its noise floor a track must be to count as
// speaking (10 dB, RFC 6464 levels are in dB).
const speechMargin = 10

// silenceHold is how many consecutive silent packets still go out after
// speech (100 ms of Opus): word endings are not clipped.
const silenceHold = 5

// add records one packet's level and reports whether it is silence past
// the hold. Packets without the extension are never silence.
func (m *levelMeter) add(ex *ingestExt) (silent bool) {
	if !ex.hasLevel {
		m.silentRun = 0
		return false
	}
	loud := uint64(127 - ex.audioLevel)
	m.sum.Store(m.sum.Load() + loud)
	m.packets.Store(m.packets.Load() + 1)
	if ex.voice {
		m.voice.Store(m.voice.Load() + 1)
	}
	if int32(loud) < m.floor.Load()+speechMargin {
		m.silentRun++
	} else {
		m.silentRun = 0
	}
	return m.silentRun > silenceHold
}

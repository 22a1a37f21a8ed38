package client

import (
	"math"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// RFC 3550 Appendix A.1 constants for sequence number validation.
const (
	seqMod      = 1 << 16
	maxDropout  = 3000 // a jump forward of up to this many is loss, not a restart
	maxMisorder = 100  // a jump backward of up to this many is reordering
)

// seqCounter keeps the extended highest sequence number and the received
// count of one RTP source (RFC 3550 A.1) so loss can be derived as in A.3.
// Unlike A.1 it accepts a source from its first packet (no probation): the
// SSRC comes from signaled SDP, not from a guess.
type seqCounter struct {
	started  bool
	maxSeq   uint16
	cycles   uint64 // count of sequence number wraps, times 2^16
	baseSeq  uint64
	badSeq   uint64 // seqMod+1 when no restart is suspected
	received uint64
	// dups counts packets received twice among the last dupWindow
	// (retransmissions that crossed the original, the server's bandwidth
	// probes): received includes them, as RFC 3550 A.3 counts.
	dups uint64
	seen [dupWindow / 64]uint64 // bit ext%dupWindow: that packet arrived
}

// dupWindow is how far back duplicates are recognized.
const dupWindow = 1024

// note marks extended sequence number ext as received; it reports whether
// it already was. advanced says ext is the new highest.
func (s *seqCounter) note(ext, prevMax uint64, advanced bool) bool {
	if advanced {
		for q := prevMax + 1; q < ext && q-prevMax < dupWindow; q++ {
			s.seen[q/64%(dupWindow/64)] &^= 1 << (q % 64)
		}
	} else if ext+dupWindow <= s.extendedMax() {
		return false // too old to tell
	}
	w, bit := &s.seen[ext/64%(dupWindow/64)], uint64(1)<<(ext%64)
	dup := !advanced && *w&bit != 0
	*w |= bit
	return dup
}

func (s *seqCounter) init(seq uint16) {
	s.seen = [dupWindow / 64]uint64{}
	s.seen[uint64(seq)/64%(dupWindow/64)] = 1 << (uint64(seq) % 64)
	s.started = true
	s.baseSeq = uint64(seq)
	s.maxSeq = seq
	s.badSeq = seqMod + 1
	s.cycles = 0
	s.received = 0
}

// update takes one packet's sequence number. It returns false for a packet
// that is ignored because it jumped too far (a possible source restart, RFC
// 3550 A.1: two sequential such packets resynchronise the counter).
func (s *seqCounter) update(seq uint16) bool {
	if !s.started {
		s.init(seq)
		s.received++
		return true
	}
	udelta := seq - s.maxSeq // modulo 2^16
	switch {
	case udelta == 0:
		if s.note(s.extendedMax(), 0, false) {
			s.dups++
		}
	case udelta < maxDropout:
		// In order, with a permissible gap.
		prev := s.extendedMax()
		if seq < s.maxSeq {
			s.cycles += seqMod // wrapped around
		}
		s.maxSeq = seq
		s.note(s.extendedMax(), prev, true)
	case int(udelta) <= seqMod-maxMisorder:
		// A very large jump: accept it only when the next packet follows it.
		if uint64(seq) == s.badSeq {
			s.init(seq)
		} else {
			s.badSeq = uint64(seq+1) & (seqMod - 1)
			return false
		}
	default:
		// Duplicate or reordered packet: counted, does not move maxSeq.
		if back := uint64(s.maxSeq - seq); back <= s.extendedMax() && s.note(s.extendedMax()-back, 0, false) {
			s.dups++
		}
	}
	s.received++
	return true
}

// extendedMax is the extended highest sequence number received (A.3).
func (s *seqCounter) extendedMax() uint64 { return s.cycles + uint64(s.maxSeq) }

// expected is the number of packets expected so far (A.3).
func (s *seqCounter) expected() uint64 {
	if !s.started {
		return 0
	}
	return s.extendedMax() - s.baseSeq + 1
}

// lost is the cumulative number of packets lost (A.3). It can be negative
// when duplicates arrived.
func (s *seqCounter) lost() int64 { return int64(s.expected()) - int64(s.received) }

// lossFraction is lost/expected, clamped to [0, 1].
func (s *seqCounter) lossFraction() float64 {
	e := s.expected()
	l := s.lost()
	if e == 0 || l <= 0 {
		return 0
	}
	return float64(l) / float64(e)
}

// jitterCalc is the RFC 3550 A.8 / §6.4.1 interarrival jitter estimator:
// D(i,j) = (Rj - Ri) - (Sj - Si) in RTP timestamp units, J += (|D| - J)/16.
type jitterCalc struct {
	started     bool
	lastArrival time.Time
	lastTS      uint32
	j           float64 // in timestamp units
}

func (c *jitterCalc) update(arrival time.Time, ts uint32, clockRate uint32) {
	if c.started {
		// int32(ts - lastTS) handles timestamp wrap-around.
		d := arrival.Sub(c.lastArrival).Seconds()*float64(clockRate) - float64(int32(ts-c.lastTS))
		c.j += (math.Abs(d) - c.j) / 16
	}
	c.started = true
	c.lastArrival = arrival
	c.lastTS = ts
}

// duration converts the estimate to wall-clock time.
func (c *jitterCalc) duration(clockRate uint32) time.Duration {
	if clockRate == 0 {
		return 0
	}
	return time.Duration(c.j / float64(clockRate) * float64(time.Second))
}

// recvStats holds the measurements of one received remote track. The
// track's read loop writes, Stats reads; a plain mutex is cheap at these
// packet rates and keeps the snapshot consistent.
type recvStats struct {
	participantID, trackID, kind, codec string
	ssrc, clockRate                     uint32

	mu          sync.Mutex
	seq         seqCounter
	jitter      jitterCalc
	packets     uint64
	bytes       uint64
	firstPacket time.Time
	lastPacket  time.Time
	frames      uint64
	keyFrames   uint64
	decryptFail uint64
	marked      uint64 // frames that carried a marker
	latLast     time.Duration
	latSum      time.Duration
	latMax      time.Duration
	ended       bool
	width       int // of the latest key frame
	height      int
}

func (r *recvStats) onPacket(p *rtp.Packet, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.packets == 0 {
		r.firstPacket = now
	}
	r.lastPacket = now
	r.packets++
	r.bytes += uint64(len(p.Payload))
	if r.seq.update(p.SequenceNumber) {
		r.jitter.update(now, p.Timestamp, r.clockRate)
	}
}

// onFrame records one depacketized frame; latency is valid when marked.
func (r *recvStats) onFrame(key, marked bool, latency time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames++
	if key {
		r.keyFrames++
	}
	if marked {
		r.marked++
		r.latLast = latency
		r.latSum += latency
		r.latMax = max(r.latMax, latency)
	}
}

// onKeyFrameSize records the picture size of a decrypted key frame.
func (r *recvStats) onKeyFrameSize(w, h int) {
	r.mu.Lock()
	r.width, r.height = w, h
	r.mu.Unlock()
}

// onDecryptFailure counts a frame that was received but failed to decrypt.
func (r *recvStats) onDecryptFailure() {
	r.mu.Lock()
	r.frames++
	r.decryptFail++
	r.mu.Unlock()
}

func (r *recvStats) end() {
	r.mu.Lock()
	r.ended = true
	r.mu.Unlock()
}

func (r *recvStats) snapshot() ReceivedTrackStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ReceivedTrackStats{
		ParticipantID:       r.participantID,
		TrackID:             r.trackID,
		Kind:                r.kind,
		Codec:               r.codec,
		SSRC:                r.ssrc,
		Packets:             r.packets,
		Bytes:               r.bytes,
		PacketsLost:         r.seq.lost(),
		LossFraction:        r.seq.lossFraction(),
		Duplicates:          r.seq.dups,
		Width:               r.width,
		Height:              r.height,
		Jitter:              r.jitter.duration(r.clockRate),
		FirstPacketAt:       r.firstPacket,
		LastPacketAt:        r.lastPacket,
		Frames:              r.frames,
		KeyFrames:           r.keyFrames,
		FramesDecryptFailed: r.decryptFail,
		MarkedFrames:        r.marked,
		LatencyLast:         r.latLast,
		LatencyMax:          r.latMax,
		Ended:               r.ended,
	}
	if r.marked > 0 {
		s.LatencyMean = r.latSum / time.Duration(r.marked)
	}
	return s
}

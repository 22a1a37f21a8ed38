package client

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func feed(seqs ...uint16) *seqCounter {
	s := &seqCounter{}
	for _, q := range seqs {
		s.update(q)
	}
	return s
}

func seqRange(from uint16, n int, skip map[int]bool) []uint16 {
	var out []uint16
	for i := 0; i < n; i++ {
		if !skip[i] {
			out = append(out, from+uint16(i))
		}
	}
	return out
}

func TestSeqCounterLoss(t *testing.T) {
	for _, tc := range []struct {
		name     string
		seqs     []uint16
		expected uint64
		lost     int64
		fraction float64
	}{
		{"in order", seqRange(1000, 1000, nil), 1000, 0, 0},
		{"5 of 100 lost", seqRange(10, 100, map[int]bool{3: true, 4: true, 50: true, 51: true, 98: true}), 100, 5, 0.05},
		{"wrap around", seqRange(65500, 100, nil), 100, 0, 0},
		{"loss across wrap", seqRange(65530, 20, map[int]bool{5: true, 6: true}), 20, 2, 0.1},
		{"reordered", []uint16{1, 2, 4, 3, 5}, 5, 0, 0},
		{"late packet before wrap", []uint16{65534, 0, 65535, 1}, 4, 0, 0},
		{"duplicates", []uint16{1, 2, 2, 3, 3}, 3, -2, 0},
		{"empty", nil, 0, 0, 0},
	} {
		s := feed(tc.seqs...)
		if s.expected() != tc.expected || s.lost() != tc.lost || math.Abs(s.lossFraction()-tc.fraction) > 1e-9 {
			t.Errorf("%s: expected %d lost %d fraction %v; want %d %d %v",
				tc.name, s.expected(), s.lost(), s.lossFraction(), tc.expected, tc.lost, tc.fraction)
		}
	}
}

// A jump beyond maxDropout is ignored once and accepted as a source restart
// when the next packet follows it (RFC 3550 A.1).
func TestSeqCounterRestart(t *testing.T) {
	s := feed(100, 101, 102)
	if s.update(20000) {
		t.Fatal("large jump accepted at once")
	}
	if !s.update(20001) {
		t.Fatal("sequential packet after the jump not accepted")
	}
	s.update(20002)
	if s.expected() != 2 || s.lost() != 0 {
		t.Errorf("after restart: expected %d lost %d", s.expected(), s.lost())
	}
	if s.extendedMax() != 20002 {
		t.Errorf("extended max %d", s.extendedMax())
	}
}

func TestJitter(t *testing.T) {
	const rate = 90000
	start := time.Unix(1000, 0)

	// Perfect pacing: no jitter.
	var j jitterCalc
	for i := 0; i < 100; i++ {
		j.update(start.Add(time.Duration(i)*33*time.Millisecond), uint32(i*33*90), rate)
	}
	if j.duration(rate) > time.Microsecond {
		t.Errorf("paced: %v", j.duration(rate))
	}

	// First step of A.8: J = |D|/16.
	j = jitterCalc{}
	j.update(start, 0, rate)
	j.update(start.Add(20*time.Millisecond), 900, rate) // 10 ms late
	if got := j.j; math.Abs(got-900.0/16) > 1e-6 {
		t.Errorf("first step J = %v, want %v", got, 900.0/16)
	}

	// Transit alternating 0 and 10 ms: |D| = 10 ms every packet, so J
	// converges to 10 ms.
	j = jitterCalc{}
	for i := 0; i < 500; i++ {
		arrival := start.Add(time.Duration(i) * 20 * time.Millisecond)
		if i%2 == 1 {
			arrival = arrival.Add(10 * time.Millisecond)
		}
		j.update(arrival, uint32(i*1800), rate)
	}
	if d := j.duration(rate); d < 9900*time.Microsecond || d > 10100*time.Microsecond {
		t.Errorf("alternating: %v", d)
	}

	// RTP timestamp wrap-around is not a jump.
	j = jitterCalc{}
	j.update(start, math.MaxUint32-899, rate)
	j.update(start.Add(10*time.Millisecond), 0, rate) // 900 ticks later, wrapped
	j.update(start.Add(20*time.Millisecond), 900, rate)
	if j.duration(rate) > time.Microsecond {
		t.Errorf("wrap: %v", j.duration(rate))
	}
}

func TestRecvStatsSnapshot(t *testing.T) {
	r := &recvStats{participantID: "p", trackID: "t", kind: KindAudio, clockRate: 48000}
	now := time.Now()
	for i := 0; i < 10; i++ {
		if i == 4 {
			continue
		}
		r.onPacket(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}, Payload: make([]byte, 80)},
			now.Add(time.Duration(i)*20*time.Millisecond))
	}
	r.onFrame(false, true, 10*time.Millisecond)
	r.onFrame(false, true, 30*time.Millisecond)
	r.onFrame(false, false, 0)
	r.onDecryptFailure()
	s := r.snapshot()
	if s.Packets != 9 || s.Bytes != 720 || s.PacketsLost != 1 || math.Abs(s.LossFraction-0.1) > 1e-9 {
		t.Errorf("packets %d bytes %d lost %d fraction %v", s.Packets, s.Bytes, s.PacketsLost, s.LossFraction)
	}
	if s.Frames != 4 || s.FramesDecryptFailed != 1 || s.MarkedFrames != 2 ||
		s.LatencyLast != 30*time.Millisecond || s.LatencyMean != 20*time.Millisecond || s.LatencyMax != 30*time.Millisecond {
		t.Errorf("frames %+v", s)
	}
	if !s.FirstPacketAt.Equal(now) || s.Jitter != 0 {
		t.Errorf("first %v jitter %v", s.FirstPacketAt, s.Jitter)
	}
}

// Duplicates (retransmissions that crossed the original, bandwidth probes)
// are counted apart, so that loss can be read without them.
func TestSeqCounterDuplicates(t *testing.T) {
	for _, tc := range []struct {
		name string
		seqs []uint16
		dups uint64
	}{
		{"none", seqRange(1, 50, nil), 0},
		{"repeated", []uint16{1, 2, 2, 3, 3}, 2},
		{"reordered is not a duplicate", []uint16{1, 2, 4, 3, 5}, 0},
		{"late across the wrap", []uint16{65534, 0, 65535, 1}, 0},
		{"repeat across the wrap", []uint16{65534, 65535, 0, 1, 65535, 0}, 2},
		{"a gap, then the missing one twice", []uint16{1, 5, 3, 3, 2}, 1},
		{"probes resend the newest", []uint16{10, 11, 12, 12, 11, 10, 13}, 3},
	} {
		s := feed(tc.seqs...)
		if s.dups != tc.dups {
			t.Errorf("%s: %d duplicates, want %d", tc.name, s.dups, tc.dups)
		}
	}
	// A slot reused after the window moved on is not a duplicate.
	s := feed(seqRange(0, 3000, nil)...)
	if s.dups != 0 {
		t.Errorf("%d duplicates in 3000 packets in order", s.dups)
	}
}

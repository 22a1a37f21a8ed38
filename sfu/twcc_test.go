package sfu

import (
	"testing"

	"github.com/pion/rtcp"
)

// Feedback written by the recorder reads back with pion/rtcp's parser as the
// arrivals that were recorded.
func TestTWCCFeedbackRoundTrip(t *testing.T) {
	var r twccRecorder
	base := int64(5e9) // 5 s into the call
	arrive := map[uint16]int64{}
	seq := uint16(65530) // crosses the wrap
	for i := 0; i < 40; i++ {
		if i%9 != 4 { // some lost
			at := base + int64(i)*3e6 // 3 ms apart
			if i == 20 {
				at += 100e6 // a large gap: two-byte delta
			}
			arrive[seq] = at
			r.record(seq, at)
		}
		seq++
	}
	last := seq + 1 // one more lost, then this one
	r.record(last, base+200e6)
	arrive[last] = base + 200e6
	b := make([]byte, 1200)
	n := r.build(b, 1, 2)
	if n == 0 || n%4 != 0 {
		t.Fatalf("feedback length %d", n)
	}
	var fb rtcp.TransportLayerCC
	if err := fb.Unmarshal(b[:n]); err != nil {
		t.Fatal(err)
	}
	if fb.BaseSequenceNumber != 65530 || fb.PacketStatusCount != 42 || fb.MediaSSRC != 2 {
		t.Fatalf("base %d count %d media %d", fb.BaseSequenceNumber, fb.PacketStatusCount, fb.MediaSSRC)
	}
	// Walk the statuses and deltas as a receiver of the feedback would.
	ref := int64(fb.ReferenceTime) * 64e6
	at := ref
	di := 0
	q := fb.BaseSequenceNumber
	for _, c := range fb.PacketChunks {
		sv, ok := c.(*rtcp.StatusVectorChunk)
		if !ok {
			t.Fatalf("chunk %T", c)
		}
		for _, s := range sv.SymbolList {
			if int(q-fb.BaseSequenceNumber) >= int(fb.PacketStatusCount) {
				break
			}
			want, received := arrive[q]
			if (s != rtcp.TypeTCCPacketNotReceived) != received {
				t.Fatalf("seq %d: status %d, received %v", q, s, received)
			}
			if received {
				at += fb.RecvDeltas[di].Delta * 1000 // µs → ns
				di++
				if d := at - want; d < -250e3 || d > 250e3 {
					t.Fatalf("seq %d: arrival off by %d ns", q, d)
				}
			}
			q++
		}
	}
	if r.build(b, 1, 2) != 0 {
		t.Error("a second feedback without new arrivals")
	}
}

func TestTWCCFeedbackDoesNotAllocate(t *testing.T) {
	var r twccRecorder
	b := make([]byte, 1500)
	seq := uint16(0)
	now := int64(1e9)
	allocs := testing.AllocsPerRun(100, func() {
		for range 20 {
			seq++
			now += 1e6
			r.record(seq, now)
		}
		r.build(b, 1, 2)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per feedback", allocs)
	}
}

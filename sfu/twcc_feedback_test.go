package sfu

import (
	"testing"

	"github.com/pion/rtcp"
)

// Feedback from pion's marshaller (run-length and both kinds of status
// vector chunks, small and large deltas, padding) decodes to the statuses
// and arrival times it was built from.
func TestParseTWCCMatchesPion(t *testing.T) {
	fb := rtcp.TransportLayerCC{
		SenderSSRC: 1, MediaSSRC: 2, BaseSequenceNumber: 65530, PacketStatusCount: 30,
		ReferenceTime: 100, FbPktCount: 7,
		PacketChunks: []rtcp.PacketStatusChunk{
			&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 10},
			&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeOneBit,
				SymbolList: []uint16{1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1}},
			&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit,
				SymbolList: []uint16{2, 1, 0, 2, 1, 1, 0}},
		},
	}
	var symbols []uint16
	for range 10 {
		symbols = append(symbols, 1)
	}
	symbols = append(symbols, fb.PacketChunks[1].(*rtcp.StatusVectorChunk).SymbolList...)
	symbols = append(symbols, fb.PacketChunks[2].(*rtcp.StatusVectorChunk).SymbolList[:6]...)
	var want []int64 // arrival (µs from the reference) per status, -1 lost
	at := int64(100) * 64000
	for i, s := range symbols {
		switch s {
		case 0:
			want = append(want, -1)
			continue
		case 1:
			d := int64(i%4) * 250 // small deltas
			fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: d})
			at += d
		case 2:
			d := int64(-1000 - 250*i) // a negative, two-byte delta
			fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedLargeDelta, Delta: d})
			at += d
		}
		want = append(want, at)
	}
	raw, err := fb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var out [maxFeedbackStatuses]twccStatus
	n, count, ok := parseTWCC(raw, out[:])
	if !ok || n != 30 || count != 7 {
		t.Fatalf("parsed %d statuses, count %d, ok %v", n, count, ok)
	}
	for i := range n {
		st := out[i]
		if st.seq != uint16(65530+i) {
			t.Fatalf("status %d: seq %d", i, st.seq)
		}
		if (want[i] >= 0) != st.received {
			t.Fatalf("status %d: received %v, want %v", i, st.received, want[i] >= 0)
		}
		if st.received && st.arrival != want[i]*1000 {
			t.Fatalf("status %d: arrival %d ns, want %d", i, st.arrival, want[i]*1000)
		}
	}
}

// The decoder reads what the server's own recorder writes (twcc.go).
func TestParseTWCCReadsRecorder(t *testing.T) {
	var r twccRecorder
	base := int64(3e9)
	arrivals := map[uint16]int64{}
	for i := range 50 {
		seq := uint16(100 + i)
		if i%7 == 3 {
			continue
		}
		at := base + int64(i)*2e6
		arrivals[seq] = at
		r.record(seq, at)
	}
	b := make([]byte, 1500)
	n := r.build(b, 1, 2)
	var out [maxFeedbackStatuses]twccStatus
	got, _, ok := parseTWCC(b[:n], out[:])
	if !ok || got != 50 {
		t.Fatalf("%d statuses, ok %v", got, ok)
	}
	var first int64
	for i := range got {
		st := out[i]
		want, rec := arrivals[st.seq]
		if rec != st.received {
			t.Fatalf("seq %d: received %v, want %v", st.seq, st.received, rec)
		}
		if !rec {
			continue
		}
		if first == 0 {
			first = st.arrival - want
		}
		if d := st.arrival - want - first; d < -250e3 || d > 250e3 {
			t.Fatalf("seq %d: arrival off by %d ns", st.seq, d)
		}
	}
}

func TestParseTWCCRejectsJunk(t *testing.T) {
	var out [8]twccStatus
	good := func() []byte {
		var r twccRecorder
		for i := range 20 {
			r.record(uint16(i), int64(1e9+i*1e6))
		}
		b := make([]byte, 200)
		return b[:r.build(b, 1, 2)]
	}
	for name, b := range map[string][]byte{
		"short":     good()[:18],
		"truncated": good()[:22],
		"padding":   func() []byte { b := good(); b[0] |= 0x20; b[len(b)-1] = 200; return b }(),
	} {
		if _, _, ok := parseTWCC(b, out[:]); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	// More statuses than room: the first len(out) come back.
	if n, _, ok := parseTWCC(good(), out[:]); !ok || n != len(out) {
		t.Errorf("capped parse: %d statuses, ok %v", n, ok)
	}
}

func TestParseTWCCDoesNotAllocate(t *testing.T) {
	var r twccRecorder
	for i := range 100 {
		r.record(uint16(i), int64(1e9+i*1e6))
	}
	b := make([]byte, 1500)
	b = b[:r.build(b, 1, 2)]
	var out [maxFeedbackStatuses]twccStatus
	if a := testing.AllocsPerRun(100, func() { parseTWCC(b, out[:]) }); a != 0 {
		t.Errorf("%.1f allocations per feedback", a)
	}
}

package sfu

import (
	"testing"

	"github.com/pion/rtp"
)

func TestRTPPayload(t *testing.T) {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7,
		Timestamp: 9, SSRC: 1, CSRC: []uint32{5}}, Payload: []byte{1, 2, 3}}
	if err := p.SetExtension(3, []byte{0xaa, 0xbb}); err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, e, ok := rtpPayload(b)
	if !ok || string(b[s:e]) != "\x01\x02\x03" || rtpSeq(b) != 7 || rtpTimestamp(b) != 9 {
		t.Fatalf("payload [%d:%d] ok=%v of %x", s, e, ok, b)
	}
	p.Header.Padding, p.PaddingSize = true, 4
	b, _ = p.Marshal()
	if s, e, ok = rtpPayload(b); !ok || e-s != 3 {
		t.Fatalf("padded payload [%d:%d] ok=%v of %x", s, e, ok, b)
	}
	for _, bad := range [][]byte{nil, make([]byte, 11), {0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}, {0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200}} {
		if _, _, ok := rtpPayload(bad); ok {
			t.Errorf("malformed %x accepted", bad)
		}
	}
	if !seqNewer(0, 65535) || seqNewer(65535, 0) || seqNewer(5, 5) {
		t.Fatal("seqNewer wraps wrongly")
	}
}

func FuzzRTPPayload(f *testing.F) {
	f.Add([]byte{0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, e, ok := rtpPayload(b); ok && (s < 0 || e > len(b) || s > e) {
			t.Fatalf("bad bounds %d %d for %d bytes", s, e, len(b))
		}
	})
}

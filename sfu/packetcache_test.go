package sfu

import (
	"bytes"
	"testing"
)

func TestPacketCacheStoreLoad(t *testing.T) {
	c := newPacketCache(8)
	dst := make([]byte, maxPacketSize)
	if n := c.load(1, dst); n != 0 {
		t.Fatalf("empty cache returned %d bytes", n)
	}
	for seq := uint16(65530); seq != 6; seq++ { // crosses the 16-bit wrap
		c.store(seq, []byte{byte(seq), 1, 2})
	}
	// Only the last 8 (65534..5) remain.
	if n := c.load(65533, dst); n != 0 {
		t.Fatalf("evicted seq 65533 still loads")
	}
	for _, seq := range []uint16{65534, 65535, 0, 5} {
		n := c.load(seq, dst)
		if !bytes.Equal(dst[:n], []byte{byte(seq), 1, 2}) {
			t.Fatalf("seq %d: got %v", seq, dst[:n])
		}
	}
	if c.store(9, make([]byte, maxPacketSize+1)) {
		t.Fatal("oversized packet stored")
	}
	if n := c.load(5, make([]byte, 2)); n != 0 {
		t.Fatal("load into a too-small buffer must fail, not truncate")
	}
}

func BenchmarkPacketCache(b *testing.B) {
	c := newPacketCache(512)
	pkt := make([]byte, 1200)
	dst := make([]byte, maxPacketSize)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for i := 0; b.Loop(); i++ {
		seq := uint16(i)
		c.store(seq, pkt)
		if c.load(seq, dst) != len(pkt) {
			b.Fatal("miss")
		}
	}
}

package sfu

import (
	"context"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Junk datagrams at a call's ports — random bytes, truncated STUN, RTP for
// nobody — are dropped; the call keeps forwarding and so does another call.
func TestJunkDatagramsDoNotDisturbCalls(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, b := newTestCall(t, 41020), newTestCall(t, 41030)
	defer a.Close("test")
	defer b.Close("test")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var peers []*testPeer
	for _, c := range []*Call{a, b} {
		for _, id := range []string{"x", "y"} {
			tp := joinTestPeer(t, c, id)
			peers = append(peers, tp)
			go tp.send(ctx)
		}
	}
	defer func() {
		for _, tp := range peers {
			tp.p.Close()
			tp.close()
		}
	}()
	for _, tp := range peers {
		from := map[string]string{"x": "y", "y": "x"}[tp.id]
		waitFor(t, 5*time.Second, tp.id+" receives media", func() bool { return tp.count(from, "audio") > 5 })
	}
	before := make([]int64, len(peers))
	for i, tp := range peers {
		before[i] = tp.count(map[string]string{"x": "y", "y": "x"}[tp.id], "audio")
	}

	junk, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer junk.Close()
	buf := make([]byte, 1200)
	stunish := []byte{0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 6, 0, 4, 'n', 'o', 'p', 'e'}
	rtpish := []byte{0x80, 111, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3}
	for i := 0; i < 20000; i++ {
		var pkt []byte
		switch i % 3 {
		case 0:
			_, _ = rand.Read(buf)
			pkt = buf[:1+i%len(buf)]
		case 1:
			pkt = stunish[:8+i%(len(stunish)-8)]
		default:
			pkt = rtpish
		}
		port := 41020 + i%2
		_, _ = junk.WriteToUDP(pkt, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	}
	time.Sleep(500 * time.Millisecond)
	for i, tp := range peers {
		from := map[string]string{"x": "y", "y": "x"}[tp.id]
		if n := tp.count(from, "audio"); n < before[i]+20 {
			t.Errorf("peer %d (%s) stalled after the junk: %d → %d packets", i, tp.id, before[i], n)
		}
	}
	if a.Count() != 2 || b.Count() != 2 {
		t.Fatalf("participants after junk: %d, %d", a.Count(), b.Count())
	}
}

package sfu

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/pion/webrtc/v4"
)

// The packet path allocates nothing: publisher ingest and fan-out, each
// subscriber's copy out of the cache, header rewrite and write, a NACK
// answered from the cache, and the cache itself.
func TestHotPathDoesNotAllocate(t *testing.T) {
	up, subs, ws := fanOut(t, webrtc.RTPCodecTypeAudio, 20)
	buf := make([]byte, maxPacketSize)
	pkts := testPackets(256, func() []byte { return make([]byte, 100) })
	i := 0
	if a := testing.AllocsPerRun(2000, func() {
		up.ingest(pkts[i&255])
		drain(subs, buf)
		i++
	}); a != 0 {
		t.Errorf("fan-out to 20 subscribers: %v allocations per packet, want 0", a)
	}
	d := up.subscribers()[0]
	if a := testing.AllocsPerRun(2000, func() {
		d.writeForward(packetRef{seq: uint16((i - 1) & 255)}, buf)
	}); a != 0 {
		t.Errorf("down-track write: %v allocations per packet, want 0", a)
	}
	if a := testing.AllocsPerRun(2000, func() { d.writeRetransmit(d.lastOut, buf) }); a != 0 {
		t.Errorf("NACK answer: %v allocations per packet, want 0", a)
	}
	c := newPacketCache(videoCacheSize)
	p := testPacket(1, make([]byte, 1100))
	if a := testing.AllocsPerRun(2000, func() {
		c.store(1, p)
		c.load(1, buf)
	}); a != 0 {
		t.Errorf("packet cache: %v allocations per packet, want 0", a)
	}
	if ws[0].packets == 0 {
		t.Fatal("nothing was written: the measurement measured nothing")
	}
}

// testPackets returns n RTP packets with sequence numbers 0…n-1.
func testPackets(n int, payload func() []byte) [][]byte {
	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i] = testPacket(uint16(i), payload())
	}
	return pkts
}

// BenchmarkDownTrackWrite is one subscriber's share of a forwarded packet:
// copy from the cache, rewrite SSRC/PT/sequence number, hand to the SRTP
// writer (here a counter).
func BenchmarkDownTrackWrite(b *testing.B) {
	for _, size := range []int{100, 1100} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			up, _, _ := fanOut(b, webrtc.RTPCodecTypeAudio, 1)
			d := up.subscribers()[0]
			buf := make([]byte, maxPacketSize)
			for i := range 256 {
				up.cache.store(uint16(i), testPacket(uint16(i), make([]byte, size)))
			}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			i := 0
			for b.Loop() {
				d.writeForward(packetRef{seq: uint16(i & 255)}, buf)
				i++
			}
		})
	}
}

// BenchmarkFanOutVideo is BenchmarkFanOut for the video reference scenario:
// 1100-byte packets to 10 subscribers.
func BenchmarkFanOutVideo(b *testing.B) {
	up, subs, _ := fanOut(b, webrtc.RTPCodecTypeVideo, 10)
	up.mime = webrtc.MimeTypeVP8
	buf := make([]byte, maxPacketSize)
	pkts := testPackets(256, func() []byte {
		// A VP8 key frame descriptor, so every subscriber starts at once.
		payload := make([]byte, 1100)
		payload[0], payload[1] = 0x10, 0x00
		return payload
	})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		up.ingest(pkts[i&255])
		drain(subs, buf)
		i++
	}
}

// BenchmarkEgress compares the two ways a call's subscribe socket can send:
// every subscriber's writer calling sendmsg itself (direct) or queuing for
// one sendmmsg (batched, batchconn.go). 20 writer goroutines each send to
// their own receiving socket, as one published packet fanned out to 20
// subscribers; receivers drain their sockets. ns/op is per datagram.
func BenchmarkEgress(b *testing.B) {
	for _, mode := range []string{"direct", "batched"} {
		b.Run(mode, func(b *testing.B) {
			raw := listenLoopback(b)
			_ = raw.SetWriteBuffer(4 << 20)
			write := raw.WriteToUDPAddrPort
			if mode == "batched" {
				bc := newBatchConn(raw, nil)
				defer bc.Close()
				write = bc.WriteToAddrPort
			} else {
				defer raw.Close()
			}
			const subscribers = 20
			var dsts []netip.AddrPort
			var rwg sync.WaitGroup
			for range subscribers {
				r := listenLoopback(b)
				_ = r.SetReadBuffer(4 << 20)
				dsts = append(dsts, r.LocalAddr().(*net.UDPAddr).AddrPort())
				rwg.Add(1)
				go func() {
					defer rwg.Done()
					buf := make([]byte, 2048)
					for {
						if _, _, err := r.ReadFromUDPAddrPort(buf); err != nil {
							return
						}
					}
				}()
				defer r.Close()
			}
			pkt := make([]byte, 120)
			b.ReportAllocs()
			b.ResetTimer()
			// Each iteration is one packet to every subscriber, from their
			// own writer goroutines (RunParallel would not pin one writer to
			// one destination).
			var wg sync.WaitGroup
			per := (b.N + subscribers - 1) / subscribers
			for _, dst := range dsts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						_, _ = write(pkt, dst)
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
		})
	}
}

package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// countingWriter stands in for a subscriber's SRTP stream.
type countingWriter struct {
	packets int
	last    rtp.Header
	payload int
}

func (w *countingWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	w.packets++
	w.last = *h
	w.payload = len(p)
	return len(p), nil
}
func (w *countingWriter) Write(b []byte) (int, error) { return len(b), nil }

// fanOut builds one published track with n bound subscribers, without sockets.
func fanOut(tb testing.TB, kind webrtc.RTPCodecType, n int) (*upTrack, []*subscriber, []*countingWriter) {
	cfg := Config{QueueSize: 64, Observer: nopObserver{}, PLIInterval: time.Second}
	owner := &Participant{id: "pub", log: zap.NewNop(), call: &Call{cfg: cfg, epoch: time.Now()}}
	size := audioCacheSize
	if kind == webrtc.RTPCodecTypeVideo {
		size = videoCacheSize
	}
	up := &upTrack{id: "t", kind: kind, owner: owner, mime: webrtc.MimeTypeOpus, cache: newPacketCache(size),
		log: zap.NewNop(), obs: nopObserver{}, epoch: owner.call.epoch, done: make(chan struct{})}
	empty := []*downTrack{}
	up.subs.Store(&empty)
	var subs []*subscriber
	var ws []*countingWriter
	for i := 0; i < n; i++ {
		s := &subscriber{queue: make(chan packetRef, cfg.QueueSize), obs: nopObserver{}, log: zap.NewNop()}
		d := newDownTrack(up, s)
		w := &countingWriter{}
		d.bound.Store(&binding{ssrc: uint32(1000 + i), pt: 111, writer: w, clock: 48000})
		up.addSubscriber(d)
		subs = append(subs, s)
		ws = append(ws, w)
	}
	return up, subs, ws
}

func testPacket(seq uint16, payload []byte) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: 42}, Payload: payload}
	b, _ := p.Marshal()
	return b
}

// drain runs every subscriber's queued work the way its writer goroutine would.
func drain(subs []*subscriber, buf []byte) {
	for _, s := range subs {
		for {
			select {
			case ref := <-s.queue:
				s.process(ref, buf)
				continue
			default:
			}
			break
		}
	}
}

func TestFanOutRewritesAndAnswersNACK(t *testing.T) {
	up, subs, ws := fanOut(t, webrtc.RTPCodecTypeAudio, 3)
	buf := make([]byte, maxPacketSize)
	for seq := uint16(65000); seq != 65010; seq++ {
		up.ingest(testPacket(seq, []byte{0x78, byte(seq)}))
	}
	drain(subs, buf)
	for i, w := range ws {
		if w.packets != 10 || w.last.SSRC != uint32(1000+i) || w.last.SequenceNumber != 10 || w.payload != 2 {
			t.Fatalf("subscriber %d: %d packets, last %+v", i, w.packets, w.last)
		}
	}
	// A NACK for outgoing seq 4 is answered from the cache with the same rewrite.
	d := up.subscribers()[0]
	subs[0].enqueue(packetRef{dt: d, seq: 4, flags: flagRetransmit})
	drain(subs, buf)
	if ws[0].packets != 11 || ws[0].last.SequenceNumber != 4 {
		t.Fatalf("retransmission: %d packets, last seq %d", ws[0].packets, ws[0].last.SequenceNumber)
	}
	// Mute: nothing forwarded; resume continues the sequence without a gap.
	up.setMuted(true)
	for seq := uint16(65010); seq != 65020; seq++ {
		up.ingest(testPacket(seq, []byte{0x78}))
	}
	drain(subs, buf)
	if ws[1].packets != 10 {
		t.Fatalf("forwarded while muted: %d", ws[1].packets)
	}
	up.muted.Store(false)
	up.ingest(testPacket(65020, []byte{0x78}))
	drain(subs, buf)
	if ws[1].last.SequenceNumber != 11 {
		t.Fatalf("after resume seq %d, want 11 (no gap)", ws[1].last.SequenceNumber)
	}
	// A full queue drops (counted) instead of blocking the publisher.
	for seq := uint16(0); seq < 200; seq++ {
		up.ingest(testPacket(seq+100, []byte{0x78}))
	}
	if subs[2].dropped.Load() == 0 {
		t.Fatal("a full subscriber queue did not drop")
	}
}

func TestVideoStartsOnKeyframe(t *testing.T) {
	up, subs, ws := fanOut(t, webrtc.RTPCodecTypeVideo, 1)
	up.mime = webrtc.MimeTypeVP8
	up.owner.pub = nil // requestKeyframe must not be reached with a nil transport: rate limit it away
	up.lastPLI.Store(int64(time.Since(up.epoch)) + int64(time.Hour))
	buf := make([]byte, maxPacketSize)
	up.ingest(testPacket(1, []byte{0x10, 0x01, 7})) // delta
	up.ingest(testPacket(2, []byte{0x10, 0x00, 7})) // key
	up.ingest(testPacket(3, []byte{0x10, 0x01, 7})) // delta
	drain(subs, buf)
	if ws[0].packets != 2 || ws[0].last.SequenceNumber != 2 {
		t.Fatalf("want the key frame and what follows (2 packets, last out seq 2): %d, %d", ws[0].packets, ws[0].last.SequenceNumber)
	}
}

// BenchmarkFanOut measures the forwarding path for one packet to 20
// subscribers: cache store, enqueue ×20, and each writer's copy + rewrite.
func BenchmarkFanOut(b *testing.B) {
	up, subs, _ := fanOut(b, webrtc.RTPCodecTypeAudio, 20)
	buf := make([]byte, maxPacketSize)
	pkts := testPackets(256, func() []byte { return make([]byte, 100) })
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		up.ingest(pkts[i&255])
		drain(subs, buf)
		i++
	}
}

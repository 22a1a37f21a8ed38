package sfu

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// Simulcast through the forwarding rig (forward_test.go): one video track
// with three layers (SSRCs 1000, 1001, 1002), each with its own sequence
// numbers, timestamps and VP8 PictureID/TL0PICIDX, as a browser sends them.

type simulcastRig struct {
	*fanoutRig
	layers [maxLayers]layerSource
	dec    *srtp.Context // the first subscriber's decryption
	size   int           // payload bytes per packet (default 300)
}

type layerSource struct {
	ssrc uint32
	seq  uint16
	ts   uint32
	pic  uint16
	tl0  uint8
}

func newSimulcastRig(tb testing.TB, subs int) *simulcastRig {
	return simulcastOn(newFanoutRig(tb, "video", subs))
}

// simulcastOn gives the rig's video track three layers.
func simulcastOn(f *fanoutRig) *simulcastRig {
	r := &simulcastRig{fanoutRig: f}
	r.up.rids = []string{"q", "h", "f"}
	streams := map[uint32]*upStream{}
	for i := range maxLayers {
		ssrc := uint32(1000 + i)
		st := r.up.stream(i)
		if st == nil {
			st = newUpStream(r.up, ssrc, i)
			r.up.layers[i].Store(st)
		}
		streams[ssrc] = st
		r.layers[i] = layerSource{ssrc: ssrc, seq: uint16(1000 * (i + 1)), ts: uint32(77777 * (i + 1)),
			pic: uint16(3000*i + 5), tl0: uint8(40 * i)}
	}
	r.pub.streams.Store(newStreamSet(streams))
	for _, d := range r.downs {
		d.sub.video = newSubscriberVideo()
	}
	r.dec = r.subEnc[0]
	return r
}

// frame returns the SRTP packets of one frame of layer l: a key frame or a
// delta frame of n packets (the first carries the VP8 start of partition).
func (r *simulcastRig) frame(tb testing.TB, l int, key bool, n int) [][]byte {
	src := &r.layers[l]
	src.ts += 3000
	src.pic = (src.pic + 1) & 0x7fff
	src.tl0++
	var out [][]byte
	for i := range n {
		src.seq++
		payload := make([]byte, max(r.size, 300))
		payload[0] = 0x80 // X
		if i == 0 {
			payload[0] |= 0x10 // S, partition 0
		}
		payload[1] = 0xc0 // I, L
		binary.BigEndian.PutUint16(payload[2:], 0x8000|src.pic)
		payload[4] = src.tl0
		if i == 0 {
			frame := payload[5:]
			frame[0] = 0x01 // delta
			if key {
				frame[0] = 0x00
				copy(frame[3:], []byte{0x9d, 0x01, 0x2a})
				binary.LittleEndian.PutUint16(frame[6:], uint16(160<<l))
				binary.LittleEndian.PutUint16(frame[8:], uint16(90<<l))
			}
		}
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: src.seq,
			Timestamp: src.ts, SSRC: src.ssrc, Marker: i == n-1}, Payload: payload}
		_ = pkt.SetExtension(7, []byte{byte(src.seq >> 8), byte(src.seq)})
		raw, err := pkt.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		enc, err := r.clientEnc.EncryptRTP(nil, raw, nil)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, enc)
	}
	return out
}

// received is one forwarded packet as the first subscriber decrypts it.
type received struct {
	seq   uint16
	ts    uint32
	pic   uint16
	tl0   uint8
	key   bool
	width int
}

// send pushes the packets and returns what reached the first subscriber.
func (r *simulcastRig) send(tb testing.TB, pkts [][]byte) []received {
	var out []received
	for _, p := range pkts {
		before := r.w.packets
		r.push(p)
		if r.w.packets == before {
			continue
		}
		// The first subscriber's datagram is the first of the batch; the
		// writer kept only the last, so decrypt through a fresh push is not
		// possible: the rig has one subscriber in these tests.
		var h rtp.Header
		plain, err := r.dec.DecryptRTP(nil, r.w.last, &h)
		if err != nil {
			tb.Fatal(err)
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(plain); err != nil {
			tb.Fatal(err)
		}
		pl := pkt.Payload
		rec := received{seq: h.SequenceNumber, ts: h.Timestamp, pic: binary.BigEndian.Uint16(pl[2:]) & 0x7fff, tl0: pl[4]}
		if pl[0]&0x10 != 0 && pl[5]&1 == 0 {
			rec.key = true
			rec.width = int(binary.LittleEndian.Uint16(pl[11:]))
		}
		out = append(out, rec)
	}
	return out
}

// round sends one frame of every layer (delta frames unless key[l]).
func (r *simulcastRig) round(tb testing.TB, key [maxLayers]bool) []received {
	var out []received
	for l := range maxLayers {
		out = append(out, r.send(tb, r.frame(tb, l, key[l], 2))...)
	}
	return out
}

func checkContinuous(t *testing.T, got []received) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if b.seq != a.seq+1 {
			t.Fatalf("packet %d: sequence %d after %d", i, b.seq, a.seq)
		}
		if int32(b.ts-a.ts) < 0 {
			t.Fatalf("packet %d: timestamp %d after %d", i, b.ts, a.ts)
		}
		if b.ts != a.ts { // a new picture
			if b.pic != (a.pic+1)&0x7fff || b.tl0 != a.tl0+1 {
				t.Fatalf("packet %d: picture %d/%d after %d/%d", i, b.pic, b.tl0, a.pic, a.tl0)
			}
		} else if b.pic != a.pic {
			t.Fatalf("packet %d: picture id changed within a frame", i)
		}
	}
}

// A down track forwards only its target layer, switches only at a key
// frame of the new target (asking for one meanwhile and forwarding the old
// layer until then), and the subscriber sees one stream: sequence numbers,
// timestamps, PictureID and TL0PICIDX continue across switches.
func TestLayerSwitchOnlyAtKeyFrames(t *testing.T) {
	r := newSimulcastRig(t, 1)
	d := r.downs[0]
	var got []received
	got = append(got, r.round(t, [maxLayers]bool{true, true, true})...)
	for range 3 {
		got = append(got, r.round(t, [maxLayers]bool{})...)
	}
	if len(got) != 8 || got[0].width != 160 {
		t.Fatalf("target q: %d packets forwarded, first key frame %d wide; want only q's 8 from its key frame", len(got), got[0].width)
	}
	// Up to f: f's delta frames do not switch, q goes on meanwhile, and a
	// key frame is asked of f.
	f := r.up.stream(2)
	f.lastPLI.Store(-1 << 62)
	d.sel.target.Store(2)
	for range 3 {
		more := r.round(t, [maxLayers]bool{})
		if len(more) != 2 {
			t.Fatalf("waiting for f's key frame: %d packets, want q's 2", len(more))
		}
		got = append(got, more...)
	}
	if f.lastPLI.Load() == -1<<62 {
		t.Error("no key frame asked of the target layer")
	}
	more := r.round(t, [maxLayers]bool{false, true, true}) // h and f key frames
	if len(more) != 4 || !more[2].key || more[2].width != 640 {
		t.Fatalf("at f's key frame: %+v, want q's delta frame then f's key frame", more)
	}
	got = append(got, more...)
	for range 3 {
		more := r.round(t, [maxLayers]bool{})
		if len(more) != 2 {
			t.Fatalf("on f: %d packets a round, want f's 2", len(more))
		}
		got = append(got, more...)
	}
	// Down to h, at h's key frame.
	d.sel.target.Store(1)
	got = append(got, r.round(t, [maxLayers]bool{})...)
	more = r.round(t, [maxLayers]bool{true, true, false})
	if len(more) != 2 || !more[0].key || more[0].width != 320 {
		t.Fatalf("at h's key frame: %+v", more)
	}
	got = append(got, more...)
	got = append(got, r.round(t, [maxLayers]bool{})...)
	checkContinuous(t, got)
	if cur := d.sel.current.Load() - 1; cur != 1 {
		t.Errorf("current layer %d, want 1", cur)
	}

	// Paused: nothing; resumed: at a key frame, still continuous.
	d.sel.target.Store(-1)
	if more := r.round(t, [maxLayers]bool{true, true, true}); len(more) != 0 {
		t.Fatalf("paused: %d packets forwarded", len(more))
	}
	d.sel.target.Store(0)
	if more := r.round(t, [maxLayers]bool{}); len(more) != 0 {
		t.Fatalf("resuming without a key frame: %d packets", len(more))
	}
	more = r.round(t, [maxLayers]bool{true, false, false})
	if len(more) != 2 || !more[0].key {
		t.Fatalf("resumed at q's key frame: %+v", more)
	}
	got = append(got, more...)
	checkContinuous(t, got)
}

// A retransmission after a switch carries the PictureID the packet was
// first sent with.
func TestRetransmissionKeepsRewrittenPictureID(t *testing.T) {
	r := newSimulcastRig(t, 1)
	d := r.downs[0]
	r.round(t, [maxLayers]bool{true, true, true})
	d.sel.target.Store(2)
	got := r.round(t, [maxLayers]bool{true, true, true})
	last := got[len(got)-1]
	if got[len(got)-1].pic == r.layers[2].pic {
		t.Fatalf("picture id not rewritten (%d)", last.pic)
	}
	e, ok := d.history.lookup(last.seq)
	if !ok {
		t.Fatal("not in the history")
	}
	before := r.w.packets
	if d.sendRTX(e, last.seq, r.pm.now, false, r.pm) == 0 {
		t.Fatal("not resent")
	}
	r.pm.flush()
	if r.w.packets != before+1 {
		t.Fatal("nothing sent")
	}
	var h rtp.Header
	plain, err := testContext(t).DecryptRTP(nil, r.w.last, &h)
	if err != nil {
		t.Fatal(err)
	}
	var pkt rtp.Packet
	_ = pkt.Unmarshal(plain)
	pl := pkt.Payload[2:] // after the RTX original sequence number
	if osn := binary.BigEndian.Uint16(pkt.Payload); osn != last.seq {
		t.Fatalf("RTX OSN %d, want %d", osn, last.seq)
	}
	if pic := binary.BigEndian.Uint16(pl[2:]) & 0x7fff; pic != last.pic || pl[4] != last.tl0 {
		t.Errorf("retransmitted picture %d/%d, first sent as %d/%d", pic, pl[4], last.pic, last.tl0)
	}
}

// Key frames tell the allocator each layer's picture size.
func TestLayerStatsReadKeyFrameSize(t *testing.T) {
	r := newSimulcastRig(t, 1)
	r.round(t, [maxLayers]bool{true, true, true})
	for l, want := range []uint32{90, 180, 360} {
		if h := r.up.stream(l).stats.height.Load(); h != want {
			t.Errorf("layer %d: height %d, want %d", l, h, want)
		}
	}
}

func TestSimulcastForwardPathDoesNotAllocate(t *testing.T) {
	r := newSimulcastRig(t, 20)
	var pkts [][]byte
	for i := range 300 {
		key := [maxLayers]bool{}
		if i%50 == 0 {
			key = [maxLayers]bool{true, true, true}
		}
		for l := range maxLayers {
			pkts = append(pkts, r.frame(t, l, key[l], 2)...)
		}
	}
	for i, d := range r.downs {
		d.sel.target.Store(int32(i % maxLayers))
	}
	i := 0
	for range 300 { // warm up, and switch everybody at the second key frames
		r.push(pkts[i])
		i++
	}
	for j, d := range r.downs {
		d.sel.target.Store(int32((j + 1) % maxLayers))
	}
	allocs := testing.AllocsPerRun(1200, func() {
		r.push(pkts[i])
		i++
	})
	if allocs != 0 {
		t.Errorf("%.2f allocations per simulcast packet fanned out to 20", allocs)
	}
	switched := 0
	for j, d := range r.downs {
		if d.sel.current.Load()-1 == int32((j+1)%maxLayers) {
			switched++
		}
	}
	if switched != len(r.downs) {
		t.Errorf("%d of %d down tracks switched during the measured packets", switched, len(r.downs))
	}
}

// The socket-to-socket path (socketpath_test.go) with simulcast: 21
// subscribers, a third on each layer, every layer's packets arriving.
func TestSocketToSocketSimulcastDoesNotAllocate(t *testing.T) {
	const subs = 21
	c, obs, drainAddr, got := socketPathCall(t, 41070)
	r := simulcastOn(newFanoutRigOn(t, c, "video", subs, drainAddr))
	for i, d := range r.downs {
		d.sel.target.Store(int32(i % maxLayers))
	}
	var pkts [][]byte
	for i := 0; len(pkts) < 3200; i++ {
		for l := range maxLayers {
			pkts = append(pkts, r.frame(t, l, i%50 == 0, 2)...)
		}
	}
	measureSocketPath(t, c, obs, r.fanoutRig, pkts, subs/maxLayers, got)
}

// The subscriber's feedback path — transport-wide feedback parsed, the
// estimator run, probe trains sent — allocates nothing either: it runs on
// the subscribe socket's goroutine, next to retransmissions.
func TestTransportFeedbackPathDoesNotAllocate(t *testing.T) {
	r := newSimulcastRig(t, 1)
	d := r.downs[0]
	sp := d.sub
	sp.call, sp.cfg = r.pub.call, r.pub.cfg
	sp.sub.init()
	sp.sub.bySSRC[d.ssrc], sp.sub.bySSRC[d.rtxSSRC] = d, d
	sp.sub.publish()
	sp.video.bwe.wanted.Store(50_000_000) // always more than the estimate: probes go out
	var rec twccRecorder
	fb := make([]byte, 1500)
	var acked uint32
	probes := 0
	var frames [][][]byte // made up front: the test's own packets allocate
	for range 80 {
		frames = append(frames, r.frame(t, 0, true, 2))
	}
	next := 0
	round := func() {
		for _, p := range frames[next] {
			r.push(p)
		}
		next++
		// The subscriber received everything sent so far, 1 ms apart.
		for ; acked < sp.subT.twccSeq.Load(); acked++ {
			rec.record(uint16(acked+1), int64(acked)*1e6+5e9)
		}
		n := rec.build(fb, 1, 2)
		before := r.w.packets
		r.pm.tick()
		subscribeSink{sp}.rtcp(sp.subT, fb[:n], r.pm)
		r.pm.flush()
		if r.w.packets > before {
			probes++
		}
		sp.video.bwe.probe.next = 0 // a train at every feedback
	}
	for range 20 {
		round()
	}
	r.pm.now = int64(time.Second)
	probes = 0
	allocs := testing.AllocsPerRun(50, round)
	if allocs != 0 {
		t.Errorf("%.2f allocations per feedback (and probe) handled", allocs)
	}
	if probes < 25 {
		t.Errorf("probe trains after %d of 51 feedbacks, want most", probes)
	}
}

// BenchmarkFanOutSimulcast10: a three-layer track to 11 subscribers spread
// over the layers, 1,100-byte packets of every layer (compare
// BenchmarkFanOutVideo10: one layer to 11).
func BenchmarkFanOutSimulcast10(b *testing.B) {
	const subs = 11
	r := newSimulcastRig(b, subs)
	r.size = 1100 // as BenchmarkFanOutVideo10's
	for i, d := range r.downs {
		d.sel.target.Store(int32(i % maxLayers))
	}
	mk := func() [][]byte {
		var pkts [][]byte
		for i := 0; len(pkts) < 4096; i++ {
			for l := range maxLayers {
				pkts = append(pkts, r.frame(b, l, i%90 == 0, 2)...)
			}
		}
		return pkts
	}
	pkts := mk()
	for _, p := range pkts[:300] { // every down track on its layer
		r.push(p)
	}
	b.ReportAllocs()
	b.ResetTimer()
	forwarded := 0
	for i := 0; i < b.N; i++ {
		if i%len(pkts) == 0 && i > 0 {
			b.StopTimer() // a new sequence space each round: the replay window
			r.clientEnc = testContext(b)
			r.pub.pubT.inUDP = testContext(b)
			pkts = mk()
			b.StartTimer()
		}
		before := r.w.packets
		r.push(pkts[i%len(pkts)])
		forwarded += r.w.packets - before
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(forwarded, 1)), "ns/forwarded")
}

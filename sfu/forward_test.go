package sfu

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"go.uber.org/zap"
)

// A publisher with one track fanned out to n subscribers, wired the way the
// call socket's loop drives it (transport.receive → publishSink → upStream →
// downTrack → pump) but without sockets: the rig encrypts like a client, and
// the pump's writer counts what would go out.

type countingWriter struct {
	batches, packets int
	last             []byte
}

func (w *countingWriter) writeBatch(msgs []datagram) {
	w.batches++
	w.packets += len(msgs)
	w.last = msgs[len(msgs)-1].buf[:msgs[len(msgs)-1].n]
}

type fanoutRig struct {
	pub       *Participant
	up        *upTrack
	clientEnc *srtp.Context   // the publishing client's SRTP
	subEnc    []*srtp.Context // what each subscriber decrypts with (it is the server's send key)
	downs     []*downTrack
	pm        *pump
	w         *countingWriter
	seq       uint16
	plain     []byte
	enc       []byte
	kind      string
}

var (
	testKey  = []byte("0123456789abcdef")
	testSalt = []byte("0123456789ab")
)

func testContext(tb testing.TB) *srtp.Context {
	c, err := srtp.CreateContext(testKey, testSalt, srtp.ProtectionProfileAeadAes128Gcm,
		srtp.SRTPReplayProtection(replayWindow))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func newFanoutRig(tb testing.TB, kind string, n int) *fanoutRig {
	cfg := Config{Logger: zap.NewNop(), Observer: nopObserver{}, PLIInterval: time.Hour}
	c := &Call{cfg: cfg, epoch: time.Now(), log: zap.NewNop()}
	return newFanoutRigOn(tb, c, kind, n, netip.MustParseAddrPort("127.0.0.1:40000"))
}

// newFanoutRigOn wires the rig into c; subscribers' packets go to dst.
func newFanoutRigOn(tb testing.TB, c *Call, kind string, n int, dst netip.AddrPort) *fanoutRig {
	pubT := &transport{cfg: &c.cfg, log: zap.NewNop(), sock: c.pubSock}
	p := &Participant{id: "pub", call: c, cfg: &c.cfg, log: zap.NewNop(), pubT: pubT,
		tracks: map[string]*upTrack{}, nackBuf: make([]uint16, 0, 64), rtcpBuf: make([]byte, 1200)}
	pubT.sink = publishSink{p}
	pubT.inUDP, pubT.rtcpOut, pubT.rtcpBuf = testContext(tb), testContext(tb), make([]byte, maxDatagram)
	sec := &pubSection{mid: "0", kind: kind, trackID: "t", ssrcs: []uint32{1000},
		ext: extIDs{mid: 9, audioLevel: 5, twcc: 7}}
	up := newUpTrack(p, sec)
	st := newUpStream(up, 1000, 0)
	up.layers[0].Store(st)
	p.tracks["0"] = up
	streams := map[uint32]*upStream{1000: st}
	p.streams.Store(newStreamSet(streams))
	p.twccID.Store(7)
	w := &countingWriter{}
	r := &fanoutRig{pub: p, up: up, clientEnc: testContext(tb), w: w, kind: kind,
		pm: newPump(w, c.epoch, nopObserver{}), plain: make([]byte, 1500), enc: make([]byte, 1600)}
	for i := range n {
		subT := &transport{cfg: &c.cfg, log: zap.NewNop()}
		subT.path.Store(pathUDP)
		a := dst
		subT.remote.Store(&a)
		sp := &Participant{id: "sub", subT: subT}
		d := &downTrack{up: up, sub: sp, mid: "3", ssrc: uint32(2000 + i), pt: ptOpus, ctx: testContext(tb)}
		if kind == "video" {
			d.pt, d.rtxSSRC, d.rtxPT, d.rtxCtx, d.history = ptVP8, uint32(3000+i), ptRTX, testContext(tb), &history{}
		}
		d.ext.Store(&extIDs{audioLevel: 1, twcc: 3, mid: 4})
		d.active.Store(true)
		up.addSubscriber(d)
		r.downs = append(r.downs, d)
		r.subEnc = append(r.subEnc, testContext(tb))
	}
	return r
}

// packet returns the next SRTP packet from the publishing client: an
// audio-level and transport-wide extension, a payload of size bytes (a VP8
// key frame for video).
func (r *fanoutRig) packet(tb testing.TB, size int) []byte {
	r.seq++
	payload := make([]byte, size)
	if r.kind == "video" {
		copy(payload, []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}) // VP8 key frame start
	}
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: r.seq,
		Timestamp: uint32(r.seq) * 960, SSRC: 1000, Marker: true}, Payload: payload}
	_ = pkt.SetExtension(5, []byte{0x80 | 30})
	_ = pkt.SetExtension(7, []byte{byte(r.seq >> 8), byte(r.seq)})
	_ = pkt.SetExtension(9, []byte("0"))
	raw, err := pkt.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := r.clientEnc.EncryptRTP(nil, raw, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// plainPacket is packet before SRTP: what ingest sees.
func (r *fanoutRig) plainPacket(tb testing.TB, size int) []byte {
	enc := r.packet(tb, size)
	var h rtp.Header
	plain, err := testContext(tb).DecryptRTP(nil, enc, &h)
	if err != nil {
		tb.Fatal(err)
	}
	return plain
}

// push runs one packet through the path as the socket loop does.
func (r *fanoutRig) push(b []byte) {
	r.pm.tick()
	n := copy(r.enc, b)
	r.pub.pubT.receive(r.enc[:n], r.pub.pubT.inUDP, r.pm)
	r.pm.flush()
}

func TestFanOutRewritesForEachSubscriber(t *testing.T) {
	r := newFanoutRig(t, "audio", 3)
	for i := range 5 {
		r.push(r.packet(t, 80))
		if r.w.packets != 3*(i+1) {
			t.Fatalf("after %d packets %d datagrams out, want %d", i+1, r.w.packets, 3*(i+1))
		}
	}
	// The last datagram is for the last subscriber: its SSRC, payload type
	// and extension IDs, a continuous sequence, and the publisher's level.
	var h rtp.Header
	plain, err := r.subEnc[2].DecryptRTP(nil, r.w.last, &h)
	if err != nil {
		t.Fatal(err)
	}
	if h.SSRC != 2002 || h.PayloadType != ptOpus {
		t.Fatalf("ssrc %d pt %d", h.SSRC, h.PayloadType)
	}
	if lv := h.GetExtension(1); len(lv) != 1 || lv[0] != 0x80|30 {
		t.Errorf("audio level under the subscriber's id 1: %x", lv)
	}
	if mid := h.GetExtension(4); string(mid) != "3" {
		t.Errorf("mid under the subscriber's id 4: %q, want the subscriber's own mid", mid)
	}
	if h.GetExtension(5) != nil || h.GetExtension(9) != nil {
		t.Error("the publisher's extension ids leaked to the subscriber")
	}
	if tw := h.GetExtension(3); len(tw) != 2 {
		t.Errorf("transport-wide sequence number missing: %x", tw)
	}
	var p rtp.Packet
	if err := p.Unmarshal(plain); err != nil || len(p.Payload) != 80 {
		t.Fatalf("payload %d bytes, err %v", len(p.Payload), err)
	}
}

func TestForwardPathDoesNotAllocate(t *testing.T) {
	for _, kind := range []string{"audio", "video"} {
		r := newFanoutRig(t, kind, 20)
		pkts := make([][]byte, 600)
		for i := range pkts {
			pkts[i] = r.packet(t, 1000)
		}
		i := 0
		for range 100 { // warm up: maps, histories, the first sender state per SSRC
			r.push(pkts[i])
			i++
		}
		allocs := testing.AllocsPerRun(400, func() {
			r.push(pkts[i])
			i++
		})
		if allocs != 0 {
			t.Errorf("%s: %.2f allocations per packet fanned out to 20", kind, allocs)
		}
	}
}

func benchmarkFanOut(b *testing.B, kind string, subs, size int) {
	r := newFanoutRig(b, kind, subs)
	pkts := make([][]byte, 4096)
	for i := range pkts {
		pkts[i] = r.packet(b, size)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%len(pkts) == 0 && i > 0 {
			b.StopTimer() // a new sequence space each round: the replay window
			r.clientEnc = testContext(b)
			r.pub.pubT.inUDP = testContext(b)
			for j := range pkts {
				pkts[j] = r.packet(b, size)
			}
			b.StartTimer()
		}
		r.push(pkts[i%len(pkts)])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/forwarded")
}

func BenchmarkFanOutAudio20(b *testing.B) { benchmarkFanOut(b, "audio", 24, 100) }
func BenchmarkFanOutVideo10(b *testing.B) { benchmarkFanOut(b, "video", 11, 1100) }

// A video frame cut short by a restart (a layer switch, a pause, a resume)
// leaves one sequence number out, so the receiver drops the truncated frame
// instead of taking it as whole; a restart after a complete frame leaves none.
func TestCutShortFrameLeavesASequenceGap(t *testing.T) {
	r := newFanoutRig(t, "video", 1)
	d := r.downs[0]
	send := func(marker bool) uint16 {
		t.Helper()
		r.seq++
		payload := []byte{0x10, 0x00, 0x9d, 0x01, 0x2a, 1, 2, 3} // a VP8 key frame start
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: r.seq,
			Timestamp: uint32(r.seq) * 3000, SSRC: 1000, Marker: marker}, Payload: payload}
		raw, err := pkt.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		enc, err := r.clientEnc.EncryptRTP(nil, raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		before := r.w.packets
		r.push(enc)
		if r.w.packets != before+1 {
			t.Fatalf("packet %d not forwarded", r.seq)
		}
		var h rtp.Header
		if _, err := r.subEnc[0].DecryptRTP(nil, r.w.last, &h); err != nil {
			t.Fatal(err)
		}
		return h.SequenceNumber
	}
	a := send(true)
	d.started = false // a restart after a whole frame
	if b := send(false); b != a+1 {
		t.Fatalf("after a whole frame: %d then %d, want no gap", a, b)
	}
	last := a + 1
	d.started = false // a restart while that frame is still open
	if c := send(true); c != last+2 {
		t.Fatalf("after a cut-short frame: %d then %d, want one left out", last, c)
	}
}

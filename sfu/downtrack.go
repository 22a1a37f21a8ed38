package sfu

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// downTrack is one published track as one subscriber receives it: one
// m-section of the subscriber's transport, with its own SSRC (and RTX SSRC
// for video). forward runs on the goroutine that ingests the publisher's
// packets and alone owns the rewrite state; retransmit runs on the goroutine
// that reads the subscriber's RTCP and alone owns the RTX state.
type downTrack struct {
	up      *upTrack
	sub     *Participant
	mid     string
	ssrc    uint32
	rtxSSRC uint32
	pt      uint8
	rtxPT   uint8 // 0: the subscriber did not accept RTX

	// active: the subscriber's answer names this track and its transport
	// has keys; until then (and after removal) nothing is sent.
	active   atomic.Bool
	answered bool                   // control state (the subscriber's mu)
	ext      atomic.Pointer[extIDs] // the subscriber's negotiated IDs
	ctx      *srtp.Context          // set before active; forwarder only
	rtxCtx   *srtp.Context          // retransmit only

	// Forwarder state (RFC 3550 §5.1 fields rewritten so that pauses, late
	// starts and source switches look like one continuous stream).
	started   bool
	srcSSRC   uint32
	seqOffset uint16 // out = in + seqOffset
	tsOffset  uint32
	firstOut  uint16 // first sequence number of the current offset epoch
	lastOut   uint16
	lastIn    uint16
	sentAny   bool
	openFrame bool // the last packet sent did not end its frame (no marker)
	lastOutTS uint32
	lastOutAt int64

	epoch   uint8    // numbers tsOffset changes, for the history
	history *history // video only (audio is not retransmitted): nil-safe

	// Sender reports (RFC 3550 §6.4.1) go out from the forwarder, once per
	// reportInterval while it sends.
	packets, octets uint32
	nextSR          int64
	srBuf           [28]byte

	// What the subscriber reports about this stream.
	report receptionState

	// RTX state (RFC 4588).
	rtxSeq uint16
	limit  tokenBucket

	sel layerSelect // simulcast layer and VP8 continuity (layers.go)
}

// forward rewrites one packet of stream s for this subscriber, encrypts it
// into p's batch and records it for retransmission.
func (d *downTrack) forward(s *upStream, h *rtp.Header, payload []byte, ex *ingestExt, flags uint8, now int64, p *pump) {
	if !d.active.Load() || !d.admit(s, flags) {
		return
	}
	if flags&flagResume != 0 {
		d.started = false // resuming after a mute: restart cleanly
	}
	seq := h.SequenceNumber
	if !d.started {
		if d.up.kind == webrtc.RTPCodecTypeVideo && flags&flagKeyframe == 0 {
			s.requestKeyframe()
			return // a decoder cannot start on a delta frame
		}
		d.restart(s, h, now)
		d.afterRestart(payload)
	}
	if seqNewer(seq, d.lastIn) {
		d.lastIn = seq
	} else if seqNewer(d.firstOut, seq+d.seqOffset) {
		return // reordered from before this epoch: the receiver never expects it
	}
	outSeq := seq + d.seqOffset
	outTS := h.Timestamp + d.tsOffset
	// RFC 3551 §4.1: the first audio packet after silence carries the marker.
	marker := h.Marker || (flags&flagResume != 0 && d.up.kind == webrtc.RTPCodecTypeAudio)
	n := d.build(p.scratch, marker, d.pt, d.ssrc, outSeq, outTS, ex, payload, -1)
	if n == 0 {
		return
	}
	d.rewritePayload(p.scratch[:n], len(payload), outSeq)
	out, err := d.ctx.EncryptRTP(p.slot()[:0], p.scratch[:n], &p.ehdr)
	if err != nil {
		d.up.cfg.Observer.PacketDropped("srtp")
		return
	}
	p.commit(d.sub.subT, len(out))
	d.noteSent(p.scratch[:n], len(out), now, false)
	d.history.record(outSeq, seq, uint8(s.layer), d.epoch)
	if seqNewer(outSeq, d.lastOut) || !d.sentAny {
		d.lastOut, d.lastOutTS, d.lastOutAt, d.sentAny = outSeq, outTS, now, true
		d.openFrame = !h.Marker
	}
	d.packets++
	d.octets += uint32(len(payload))
	p.counts.out(d.up.kind, n)
	if now >= d.nextSR {
		d.sendReport(s, now)
	}
}

// sendReport sends a sender report. The NTP/RTP pair comes from the
// publisher's own latest report when there is one, shifted by this down
// track's timestamp offset — which keeps one publisher's audio and video in
// sync at the receiver — otherwise from the last packet sent and the wall
// clock.
func (d *downTrack) sendReport(s *upStream, now int64) {
	d.nextSR = now + int64(reportInterval)
	clock := int64(d.up.clock)
	var ntp uint64
	var rtpTime uint32
	if sr := s.sr.Load(); sr != nil && now-sr.at < 10*int64(time.Second) {
		elapsed := now - sr.at
		ntp = sr.ntp + uint64(elapsed)<<32/uint64(time.Second)
		rtpTime = sr.rtp + uint32(elapsed*clock/1e9) + d.tsOffset
	} else {
		ntp = ntpTime(time.Now())
		rtpTime = d.lastOutTS + uint32((now-d.lastOutAt)*clock/1e9)
	}
	n := appendSR(d.srBuf[:], d.ssrc, ntp, rtpTime, d.packets, d.octets)
	d.report.sent(ntp, now)
	d.sub.subT.writeRTCP(d.srBuf[:n])
}

// restart begins a new offset epoch: the next sequence number follows the
// last one this subscriber saw, so a late start or a pause shows no loss
// (RFC 3550 §5.1), and after a change of source stream the timestamps go on
// from where they were, advanced by the time that passed.
func (d *downTrack) restart(s *upStream, h *rtp.Header, now int64) {
	d.started = true
	// A video frame cut short (the new start comes before the marker of the
	// frame being sent: a layer switch, a pause, a resume) is left one
	// sequence number short, so the receiver sees it incomplete and drops
	// it, instead of decoding — or failing to decrypt — a truncated frame
	// its depacketizer would take as whole at the timestamp change.
	next := d.lastOut + 1
	if d.openFrame && d.up.kind == webrtc.RTPCodecTypeVideo {
		next++
	}
	d.seqOffset = next - h.SequenceNumber
	d.firstOut = next
	d.lastIn = h.SequenceNumber - 1
	if d.srcSSRC != s.ssrc {
		if d.sentAny {
			elapsed := uint32((now - d.lastOutAt) * int64(d.up.clock) / 1e9)
			d.tsOffset = d.lastOutTS + max(elapsed, 1) - h.Timestamp
		} else {
			d.tsOffset = 0
		}
		d.srcSSRC = s.ssrc
		d.epoch++
		d.history.setShift(d.epoch, d.tsOffset)
	}
}

// build writes an RTP header with the subscriber's SSRC, payload type,
// sequence number and extensions, then the payload (RTX: prefixed with the
// original sequence number, RFC 4588 §4), into b; it returns the length.
func (d *downTrack) build(b []byte, marker bool, pt uint8, ssrc uint32, seq uint16, ts uint32, ex *ingestExt, payload []byte, osn int) int {
	b[0] = 0x80
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	n := 12
	if ids := d.ext.Load(); ids != nil {
		o := outExt{mid: d.mid, ids: *ids}
		if ids.twcc != 0 {
			o.twcc = uint16(d.sub.subT.twccSeq.Add(1))
		}
		if x := writeExtensions(b[n:], &o, ex); x > 0 {
			b[0] |= 0x10
			n += x
		}
	}
	if osn >= 0 {
		binary.BigEndian.PutUint16(b[n:], uint16(osn))
		n += 2
	}
	if n+len(payload) > len(b) {
		return 0
	}
	return n + copy(b[n:], payload)
}

// Outcomes of a NACKed packet.
const (
	nackSent       = iota // retransmitted
	nackMissed            // not in the history or the cache, no RTX, or over the rate limit
	nackSuppressed        // resent moments ago: a repeated request
)

// retransmit answers a NACK for outSeq from the publisher's cache, on the
// RTX stream (RFC 4588): a new SSRC and sequence space, so a retransmission
// never reuses an SRTP index.
func (d *downTrack) retransmit(outSeq uint16, now int64, p *pump) int {
	if !d.active.Load() || d.rtxPT == 0 || d.rtxCtx == nil {
		return nackMissed
	}
	e, ok := d.history.lookup(outSeq)
	if !ok {
		return nackMissed
	}
	if !d.history.mayRetransmit(outSeq, now) {
		return nackSuppressed
	}
	if d.up.stream(int(e.layer)) == nil || !d.limit.take(now) {
		return nackMissed
	}
	if d.sendRTX(e, outSeq, now, false, p) == 0 {
		return nackMissed
	}
	return nackSent
}

// sendRTX resends the packet history entry e describes (sent as outSeq)
// on the RTX stream and returns its size on the wire, 0 if it is no longer
// cached. Only the goroutine that reads the subscriber's RTCP calls it
// (NACKs, and the bandwidth probes of bwe_probe.go).
func (d *downTrack) sendRTX(e historyEntry, outSeq uint16, now int64, probe bool, p *pump) int {
	s := d.up.stream(int(e.layer))
	if s == nil {
		return 0
	}
	buf := p.cached
	n := s.cache.load(e.inSeq, buf)
	if n == 0 {
		return 0
	}
	start, end, ok := rtpPayload(buf[:n])
	if !ok {
		return 0
	}
	d.rtxSeq++
	outTS := rtpTimestamp(buf) + e.shift
	m := d.build(p.scratch, rtpMarker(buf), d.rtxPT, d.rtxSSRC, d.rtxSeq, outTS, nil, buf[start:end], int(outSeq))
	if m == 0 {
		return 0
	}
	if d.up.kind == webrtc.RTPCodecTypeVideo {
		d.sel.vp8.applyEpoch(e.epoch, p.scratch[m-(end-start):m])
	}
	out, err := d.rtxCtx.EncryptRTP(p.slot()[:0], p.scratch[:m], &p.ehdr)
	if err != nil {
		return 0
	}
	p.commit(d.sub.subT, len(out))
	d.noteSent(p.scratch[:m], len(out), now, probe)
	return len(out)
}

// retransmitGap: one packet is resent at most this often, and at most
// maxRetransmits times.
const (
	retransmitGap  = 20e6 // 20 ms in ns
	maxRetransmits = 3
)

// history remembers, for the last historySize packets sent, where each came
// from, so a NACK for an outgoing sequence number finds the cached packet.
// The forwarder writes one word per packet; the retransmitter reads it.
// Timestamp offsets are kept per epoch (they change only when the source
// stream does), so the word holds everything else.
type history struct {
	slots  [historySize]atomic.Uint64 // valid<<63 | layer<<40 | epoch<<32 | inSeq<<16 | outSeq
	shifts [256]atomic.Uint32         // tsOffset of each epoch
	retx   [historySize]retxMark      // the retransmitter's own
}

const historySize = 1024 // power of two; ~6 s of 1.5 Mb/s video

type retxMark struct {
	outSeq uint16
	count  uint8
	at     int64
}

type historyEntry struct {
	inSeq uint16
	layer uint8
	epoch uint8
	shift uint32
}

func (h *history) record(outSeq, inSeq uint16, layer, epoch uint8) {
	if h == nil {
		return
	}
	h.slots[outSeq&(historySize-1)].Store(1<<63 | uint64(layer)<<40 | uint64(epoch)<<32 | uint64(inSeq)<<16 | uint64(outSeq))
}

func (h *history) setShift(epoch uint8, shift uint32) {
	if h != nil {
		h.shifts[epoch].Store(shift)
	}
}

func (h *history) lookup(outSeq uint16) (historyEntry, bool) {
	if h == nil {
		return historyEntry{}, false
	}
	w := h.slots[outSeq&(historySize-1)].Load()
	if w>>63 == 0 || uint16(w) != outSeq {
		return historyEntry{}, false
	}
	return historyEntry{inSeq: uint16(w >> 16), layer: uint8(w >> 40), epoch: uint8(w >> 32), shift: h.shifts[uint8(w>>32)].Load()}, true
}

// mayRetransmit lets one packet go again at most every retransmitGap and
// at most maxRetransmits times, however many NACKs ask for it (RFC 4585
// §3.4 lets the sender suppress duplicates: a receiver whose NACK
// generator does not see RTX repairs keeps asking); it marks the packet as
// sent now.
func (h *history) mayRetransmit(outSeq uint16, now int64) bool {
	m := &h.retx[outSeq&(historySize-1)]
	if m.outSeq == outSeq && m.at != 0 {
		if now-m.at < retransmitGap || m.count >= maxRetransmits {
			return false
		}
		m.count++
	} else {
		m.outSeq, m.count = outSeq, 1
	}
	m.at = now
	return true
}

// tokenBucket bounds one subscriber's retransmissions, so that a lossy
// receiver's NACKs never crowd out fresh media.
type tokenBucket struct {
	tokens float64
	last   int64
}

const (
	retransmitRate  = 300 // packets per second per down track
	retransmitBurst = 60
)

func (b *tokenBucket) take(now int64) bool {
	if b.last != 0 {
		b.tokens += float64(now-b.last) / 1e9 * retransmitRate
	} else {
		b.tokens = retransmitBurst
	}
	b.last = now
	b.tokens = min(b.tokens, retransmitBurst)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

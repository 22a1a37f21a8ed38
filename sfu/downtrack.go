package sfu

import (
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// downTrack is one published track as one subscriber receives it. It implements
// webrtc.TrackLocal for the subscriber's transport. All writes happen on the
// subscriber's writer goroutine, which alone owns the rewrite state below.
type downTrack struct {
	up  *upTrack
	sub *subscriber

	bound  atomic.Pointer[binding]
	sender *webrtc.RTPSender // set once AddTrack returns; control path only

	// Writer-goroutine state (RFC 3550 §5.1 fields rewritten so that pauses and
	// late starts look like one continuous stream to the receiver).
	started    bool
	seqOffset  uint16 // out = in + seqOffset
	firstOut   uint16 // first sequence number of the current offset epoch
	lastOut    uint16 // highest sequence number sent
	lastIn     uint16
	lastTS     uint32
	lastWallNs int64
	hdr        rtp.Header

	packets, octets atomic.Uint32 // for sender reports (RFC 3550 §6.4.1)
}

type binding struct {
	ssrc   uint32
	pt     uint8
	writer webrtc.TrackLocalWriter
	clock  uint32
}

func newDownTrack(up *upTrack, sub *subscriber) *downTrack {
	return &downTrack{up: up, sub: sub}
}

// TrackLocal: the subscriber sees msid "<publisher id> <track id>".
func (d *downTrack) ID() string                { return d.up.id }
func (d *downTrack) RID() string               { return "" }
func (d *downTrack) StreamID() string          { return d.up.owner.id }
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.up.kind }

var errNoCodec = errors.New("sfu: subscriber does not support the track's codec")

func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	want := d.up.mime
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, want) {
			d.bound.Store(&binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType),
				writer: ctx.WriteStream(), clock: c.ClockRate})
			d.up.requestKeyframe()
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, errNoCodec
}

func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.bound.Store(nil)
	return nil
}

// forward runs on the publisher's reader goroutine: hand the packet to this
// subscriber's queue, never wait.
func (d *downTrack) forward(ref packetRef) {
	ref.dt = d
	d.sub.enqueue(ref)
}

// writeForward runs on the writer goroutine: copy the packet out of the cache,
// rewrite it for this subscriber and send it.
func (d *downTrack) writeForward(ref packetRef, buf []byte) {
	b := d.bound.Load()
	if b == nil {
		return
	}
	n := d.up.cache.load(ref.seq, buf)
	if n == 0 {
		d.sub.obs.PacketDropped("evicted")
		return
	}
	pkt := buf[:n]
	if ref.flags&flagResume != 0 {
		d.started = false // resuming after a mute: restart cleanly
	}
	if !d.started {
		if d.up.kind == webrtc.RTPCodecTypeVideo && ref.flags&flagKeyframe == 0 {
			d.up.requestKeyframe()
			return // a decoder cannot start on a delta frame
		}
		// Continue right after the last sequence number this subscriber saw, so a
		// late start or a pause shows no loss.
		d.started = true
		d.seqOffset = d.lastOut + 1 - ref.seq
		d.firstOut = d.lastOut + 1
		d.lastIn = ref.seq - 1
	}
	if seqNewer(ref.seq, d.lastIn) {
		d.lastIn = ref.seq
		d.lastTS = rtpTimestamp(pkt)
		d.lastWallNs = ref.at
	} else if seqNewer(d.firstOut, ref.seq+d.seqOffset) {
		return // reordered from before this epoch: the receiver never expects it
	}
	if d.write(b, pkt, ref.seq+d.seqOffset) {
		d.sub.obs.PacketOut(d.up.kind, n, time.Since(d.up.epoch)-time.Duration(ref.at))
	}
}

// writeRetransmit answers a NACK for outSeq from the cache (RFC 4585 §6.2.1).
func (d *downTrack) writeRetransmit(outSeq uint16, buf []byte) {
	b := d.bound.Load()
	if b == nil || !d.started || seqNewer(d.firstOut, outSeq) || seqNewer(outSeq, d.lastOut) {
		d.sub.obs.NACK(false)
		return
	}
	n := d.up.cache.load(outSeq-d.seqOffset, buf)
	if n == 0 {
		d.sub.obs.NACK(false)
		return
	}
	d.sub.obs.NACK(true)
	d.write(b, buf[:n], outSeq)
}

// write sends pkt with its SSRC, payload type and sequence number replaced.
// Header extensions and CSRCs are dropped: extension IDs are negotiated per
// transport and differ between the publisher's and the subscriber's.
func (d *downTrack) write(b *binding, pkt []byte, outSeq uint16) bool {
	start, end, ok := rtpPayload(pkt)
	if !ok {
		return false
	}
	h := &d.hdr
	h.Version = 2
	h.Marker = rtpMarker(pkt)
	h.PayloadType = b.pt
	h.SequenceNumber = outSeq
	h.Timestamp = rtpTimestamp(pkt)
	h.SSRC = b.ssrc
	if _, err := b.writer.WriteRTP(h, pkt[start:end]); err != nil {
		d.sub.obs.PacketDropped("write")
		return false
	}
	if seqNewer(outSeq, d.lastOut) {
		d.lastOut = outSeq
	}
	d.packets.Add(1)
	d.octets.Add(uint32(end - start))
	return true
}

// senderReport builds an RTCP SR (RFC 3550 §6.4.1) from the writer's state.
func (d *downTrack) senderReport(now time.Time, sinceEpoch time.Duration) *rtcp.SenderReport {
	b := d.bound.Load()
	if b == nil || !d.started {
		return nil
	}
	elapsed := sinceEpoch - time.Duration(d.lastWallNs)
	return &rtcp.SenderReport{
		SSRC:        b.ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     d.lastTS + uint32(elapsed.Seconds()*float64(b.clock)),
		PacketCount: d.packets.Load(),
		OctetCount:  d.octets.Load(),
	}
}

// ntpTime converts to the 64-bit NTP format (RFC 5905 §6).
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970
	s := uint64(t.Unix() + ntpEpochOffset)
	f := uint64(t.Nanosecond()) << 32 / 1e9
	return s<<32 | f
}

// rtcpLoop reads what the subscriber says about this track: NACKs become
// retransmissions from the cache, PLI/FIR become one rate-limited keyframe
// request to the publisher.
func (d *downTrack) rtcpLoop() {
	for {
		pkts, _, err := d.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.TransportLayerNack:
				for _, pair := range p.Nacks {
					pair.Range(func(seq uint16) bool {
						d.sub.enqueue(packetRef{dt: d, seq: seq, flags: flagRetransmit})
						return true
					})
				}
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.up.requestKeyframe()
			case *rtcp.ReceiverReport, *rtcp.SenderReport, *rtcp.SourceDescription, *rtcp.Goodbye:
			default:
				d.up.log.Debug("unhandled RTCP from subscriber", zap.String("type", typeName(p)))
			}
		}
	}
}

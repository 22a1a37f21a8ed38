package sfu

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// Simulcast on the packet path: what each published layer carries, and
// which layer each down track forwards. The allocator (allocator.go)
// decides on a timer and publishes its choice through atomics; the
// forwarder reads them per packet and switches only at a key frame of the
// target layer.

// layerStats is what ingest observes of one upStream, for the allocator:
// cumulative counts (one writer: plain stores of atomics), the last
// arrival, and the picture size from key frames. rate is the allocator's
// own smoothed measure (its loop is the only writer).
type layerStats struct {
	bytes, packets atomic.Uint64
	lastAt         atomic.Int64
	width, height  atomic.Uint32
	rate           atomic.Int64 // bits per second, overhead included
	lastRate       atomic.Int64 // the rate while live (a decaying peak), for a layer paused at the publisher

	prevBytes, prevPackets uint64 // the video loop's own, at its last sample
	prevAt                 int64
	prevLive               bool
}

// observe counts one ingested packet of n bytes; on the first packet of a
// key frame it reads the frame's size from the VP8 key frame header
// (RFC 6386 §9.1: 3-byte frame tag, start code 9d 01 2a, 14-bit width and
// height), which the E2EE clear prefix keeps readable.
func (l *layerStats) observe(n int, payload []byte, key bool, now int64) {
	l.bytes.Store(l.bytes.Load() + uint64(n))
	l.packets.Store(l.packets.Load() + 1)
	l.lastAt.Store(now)
	if !key {
		return
	}
	f, ok := parseVP8Descriptor(payload)
	if !ok {
		return
	}
	hdr := descriptorLen(payload, f)
	frame := payload[min(hdr, len(payload)):]
	if len(frame) >= 10 && frame[3] == 0x9d && frame[4] == 0x01 && frame[5] == 0x2a {
		l.width.Store(uint32(binary.LittleEndian.Uint16(frame[6:]) & 0x3fff))
		l.height.Store(uint32(binary.LittleEndian.Uint16(frame[8:]) & 0x3fff))
	}
}

// descriptorLen is the payload descriptor's length (RFC 7741 §4.2).
func descriptorLen(p []byte, f vp8Fields) int {
	if len(p) == 0 || p[0]&0x80 == 0 {
		return 1
	}
	x := p[1]
	n := 2
	if x&0x80 != 0 {
		n++
		if f.wide {
			n++
		}
	}
	if x&0x40 != 0 {
		n++
	}
	if x&0x30 != 0 {
		n++
	}
	return n
}

// liveWindow: a layer that sent nothing for this long is not being sent.
const liveWindow = 1.2e9

func (l *layerStats) live(now int64) bool {
	at := l.lastAt.Load()
	return at != 0 && now-at < liveWindow
}

// layerSelect is one video down track's layer state.
type layerSelect struct {
	// target is the layer the allocator wants forwarded (-1: none, the
	// video is paused).
	target atomic.Int32
	// current is the layer being forwarded + 1 (0: none), published by
	// the forwarder for the allocator and the API.
	current atomic.Int32
	// lastSent is 1<<16 | the newest outgoing sequence number: the probe
	// resends recent packets (bwe_probe.go).
	lastSent atomic.Uint32

	// Forwarder only.
	begun bool
	cur   int // layer being forwarded, -1 none
	vp8   vp8Continuity
}

// admit decides, on the forwarder, whether a packet of stream s goes to
// this subscriber. A video down track forwards one layer; it moves to the
// target layer at that layer's next key frame (asking for one, through the
// publisher's rate-limited PLI) and keeps forwarding the layer it has until
// then, so a switch never leaves the decoder without a reference.
func (d *downTrack) admit(s *upStream, flags uint8) bool {
	if d.up.kind != webrtc.RTPCodecTypeVideo {
		return s.layer == 0
	}
	sel := &d.sel
	if !sel.begun {
		sel.begun, sel.cur = true, -1
	}
	want := int(sel.target.Load())
	if want < 0 { // paused: the next start is a key frame again
		if sel.cur >= 0 {
			sel.cur, d.started = -1, false
			sel.current.Store(0)
		}
		return false
	}
	if s.layer == sel.cur {
		if want != sel.cur {
			if t := d.up.stream(want); t != nil {
				t.requestKeyframe()
			}
		}
		return true
	}
	if s.layer != want {
		return false
	}
	if flags&flagKeyframe == 0 {
		s.requestKeyframe()
		return false
	}
	sel.cur, d.started = want, false // forward restarts the stream on this key frame
	sel.current.Store(int32(want) + 1)
	return true
}

// afterRestart runs on the forwarder after forward began a new offset
// epoch at payload's packet.
func (d *downTrack) afterRestart(payload []byte) {
	if d.up.kind == webrtc.RTPCodecTypeVideo {
		d.sel.vp8.rebase(d.epoch, payload)
	}
}

// rewritePayload rewrites the descriptor of an outgoing video packet, built
// at pkt with its payload at the end, and notes it as the newest sent.
func (d *downTrack) rewritePayload(pkt []byte, payloadLen int, outSeq uint16) {
	if d.up.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	d.sel.vp8.apply(pkt[len(pkt)-payloadLen:])
	d.sel.lastSent.Store(1<<16 | uint32(outSeq))
}

// noteSent records a packet just committed toward the subscriber (pkt is
// its plaintext, size its length on the wire) in the transport's send
// record, for the bandwidth estimator.
func (d *downTrack) noteSent(pkt []byte, size int, now int64, probe bool) {
	v := d.sub.video
	if v == nil {
		return
	}
	ids := d.ext.Load()
	if ids == nil || ids.twcc == 0 {
		return
	}
	if seq, ok := twccOf(pkt, ids.twcc); ok {
		v.sent.note(seq, size+udpOverhead, now, probe)
	}
}

// udpOverhead is what IPv4 and UDP add to a datagram on the wire.
const udpOverhead = 28

// signalledLayers maps a simulcast section's signalled SSRCs to its layers
// when there is one per rid: pion lists them in encoding order, as it does
// the rids, and sends no rid header extension. A publisher that signals no
// SSRCs (browsers) has its layers discovered from the rid extension of its
// first packets instead (participant_media.go).
func signalledLayers(up *upTrack, sec *pubSection, streams map[uint32]*upStream) {
	if len(sec.rids) == 0 || len(sec.ssrcs) != len(sec.rids) {
		return
	}
	for i, ssrc := range sec.ssrcs {
		if streams[ssrc] == nil && up.layers[i].Load() == nil {
			s := newUpStream(up, ssrc, i)
			up.layers[i].Store(s)
			streams[ssrc] = s
		}
	}
}

package sfu

import (
	"encoding/binary"
	"slices"

	"go.uber.org/zap"
)

// What a participant's two transports decrypted, on the goroutine that owns
// their ingress: media from its publish transport, feedback from both.

// publishSink receives from the publish transport.
type publishSink struct{ p *Participant }

func (s publishSink) rtp(_ *transport, plain []byte, pm *pump) {
	p := s.p
	h := &pm.hdr
	st := p.streams.Load().get(h.SSRC)
	if st == nil {
		if st = p.discover(h.SSRC, h.GetExtension); st == nil {
			p.cfg.Observer.PacketDropped("unknown_ssrc")
			return
		}
	}
	start, _, ok := rtpPayload(plain)
	if !ok {
		p.cfg.Observer.PacketDropped("malformed")
		return
	}
	now := pm.now
	if id := uint8(p.twccID.Load()); id != 0 {
		if b := h.GetExtension(id); len(b) >= 2 {
			p.twcc.record(binary.BigEndian.Uint16(b), now)
			p.twccMedia = h.SSRC
		}
	}
	st.ingest(plain, h, start, now, pm)
	pm.touch(p)
}

// rtcp from a publisher: its sender reports keep the downstream reports in
// sync (RFC 3550 §6.4.1); the rest needs no action.
func (s publishSink) rtcp(_ *transport, plain []byte, pm *pump) {
	p := s.p
	rtcpPackets(plain, func(pt, _ uint8, pkt []byte) {
		if pt != rtcpSR || len(pkt) < 20 {
			return
		}
		ssrc := binary.BigEndian.Uint32(pkt[4:])
		if st := p.streams.Load().get(ssrc); st != nil {
			st.sr.Store(&senderInfo{ntp: binary.BigEndian.Uint64(pkt[8:]), rtp: binary.BigEndian.Uint32(pkt[16:]), at: pm.now})
		}
	})
}

// discover maps an SSRC the offer did not list to its track and simulcast
// layer, from the mid and rid header extensions of its first packets
// (RFC 8843 §15, RFC 8852). The number of unknown SSRCs looked at is
// bounded, so a flood of made-up ones costs little.
func (p *Participant) discover(ssrc uint32, ext func(uint8) []byte) *upStream {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.discoverLeft <= 0 {
		return nil
	}
	p.discoverLeft--
	var track *upTrack
	for _, t := range p.tracks {
		ids := t.ext.Load()
		if ids.mid != 0 {
			if mid := ext(ids.mid); len(mid) > 0 && string(mid) == t.mid {
				track = t
				break
			}
		}
	}
	if track == nil && len(p.tracks) == 1 {
		for _, t := range p.tracks {
			track = t
		}
	}
	if track == nil {
		return nil
	}
	layer := 0
	if len(track.rids) > 0 {
		ids := track.ext.Load()
		if ids.rid == 0 {
			return nil
		}
		rid := string(ext(ids.rid))
		if layer = slices.Index(track.rids, rid); layer < 0 {
			return nil
		}
	}
	st := newUpStream(track, ssrc, layer)
	if old := track.layers[layer].Swap(st); old != nil {
		p.log.Debug("stream replaced", zap.String("track", track.id), zap.Int("layer", layer))
	}
	next := make(map[uint32]*upStream, len(p.streams.Load().list)+1)
	for k, v := range p.streams.Load().bySSRC {
		if v.track != track || v.layer != layer {
			next[k] = v
		}
	}
	next[ssrc] = st
	p.streams.Store(newStreamSet(next))
	p.discoverLeft++ // a real stream does not use up the budget
	return st
}

// twccInterval is how often transport-wide feedback goes to a publisher
// (libwebrtc's receivers send every 50–250 ms by bitrate; 50 ms cost 6 % of
// the server's CPU in a 50-person audio call, each report its own sendto).
const twccInterval = 100e6 // 100 ms in ns

// afterIngest runs once per batch that carried this participant's packets:
// the NACKs and transport-wide feedback now due.
func (p *Participant) afterIngest(pm *pump) {
	now := pm.now
	for _, st := range p.streams.Load().list {
		if !st.loss.pending() {
			continue
		}
		lost := st.loss.due(now, p.nackBuf[:0])
		if len(lost) > 0 {
			if n := appendNACK(p.rtcpBuf, p.rtcpSSRC, st.ssrc, lost); n > 0 {
				p.pubT.writeRTCP(p.rtcpBuf[:n])
			}
		}
	}
	if now-p.lastTWCC >= twccInterval && p.twcc.pending() {
		p.lastTWCC = now
		if n := p.twcc.build(p.rtcpBuf, p.rtcpSSRC, p.twccMedia); n > 0 {
			p.pubT.writeRTCP(p.rtcpBuf[:n])
		}
	}
}

// sendPLI asks the publisher for a key frame on one of its streams.
func (p *Participant) sendPLI(ssrc uint32) {
	var b [12]byte
	appendPLI(b[:], p.rtcpSSRC, ssrc)
	p.pubT.writeRTCP(b[:])
}

// subscribeSink receives the subscriber's feedback about what it receives.
type subscribeSink struct{ p *Participant }

func (s subscribeSink) rtp(*transport, []byte, *pump) {
	s.p.cfg.Observer.PacketDropped("unexpected_media") // subscribe transports are sendonly
}

func (s subscribeSink) rtcp(_ *transport, plain []byte, pm *pump) {
	p := s.p
	rtcpPackets(plain, func(pt, count uint8, pkt []byte) {
		switch {
		case pt == rtcpRTPFB && count == fmtNACK:
			ssrc, ok := mediaSSRC(pkt)
			if d := p.downBySSRC(ssrc); ok && d != nil && d.ssrc == ssrc {
				nackPairs(pkt, func(seq uint16) {
					if r := d.retransmit(seq, pm.now, pm); r != nackSuppressed {
						p.cfg.Observer.NACK(r == nackSent)
					}
				})
			}
		case pt == rtcpRR || pt == rtcpSR:
			receptionReports(pkt, pt, count, func(ssrc uint32, block []byte) {
				if d := p.downBySSRC(ssrc); d != nil && d.ssrc == ssrc {
					d.report.receive(block, pm.now)
				}
			})
		case pt == rtcpPSFB && (count == fmtPLI || count == fmtFIR):
			ssrc, ok := mediaSSRC(pkt)
			if count == fmtFIR && len(pkt) >= 16 { // RFC 5104 §4.3.1: the SSRC is in the FCI
				ssrc, ok = binary.BigEndian.Uint32(pkt[12:]), true
			}
			if d := p.downBySSRC(ssrc); ok && d != nil {
				d.up.requestKeyframes()
			}
		case pt == rtcpRTPFB && count == fmtTWCC && p.video != nil:
			p.onTransportFeedback(pkt, pm)
		}
	})
}

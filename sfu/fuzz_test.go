package sfu

import (
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Fuzz targets for what the packet path parses from the network after
// SRTP: RTP headers and extensions into ingest and fan-out, RTCP from
// subscribers (NACK, PLI, FIR, feedback) and publishers (SR), and the SDP
// of both transports. Seeds run in every `go test`; see README "Fuzzing".

func FuzzIngestPlaintext(f *testing.F) {
	r := newFanoutRig(f, "video", 3)
	f.Add(r.plainPacket(f, 100))
	f.Add([]byte{0x90, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0x03, 0xe8, 0xbe, 0xde, 0, 1, 0x51, 0xff, 0, 0})
	f.Add([]byte{0xa0, 0x60, 0, 2, 0, 0, 0, 1, 0, 0, 0x03, 0xe8, 0x10, 0x00, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h rtp.Header
		if _, err := h.Unmarshal(b); err != nil {
			return // SRTP would not have decrypted it
		}
		r.pm.hdr = h
		r.pm.tick()
		publishSink{r.pub}.rtp(nil, b, r.pm)
		r.pm.flush()
	})
}

func FuzzRTCPFromSubscriber(f *testing.F) {
	r := newFanoutRig(f, "video", 1)
	d := r.downs[0]
	sub := d.sub
	sub.sub.init()
	sub.sub.bySSRC[d.ssrc] = d
	sub.sub.publish()
	sub.cfg = r.pub.cfg
	for _, p := range []rtcp.Packet{
		&rtcp.TransportLayerNack{MediaSSRC: d.ssrc, Nacks: []rtcp.NackPair{{PacketID: 1, LostPackets: 0xffff}}},
		&rtcp.PictureLossIndication{MediaSSRC: d.ssrc},
		&rtcp.FullIntraRequest{MediaSSRC: d.ssrc, FIR: []rtcp.FIREntry{{SSRC: d.ssrc}}},
		&rtcp.ReceiverReport{SSRC: 5, Reports: []rtcp.ReceptionReport{{SSRC: d.ssrc}}},
		&rtcp.TransportLayerCC{MediaSSRC: d.ssrc},
	} {
		if b, err := p.Marshal(); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r.pm.tick()
		subscribeSink{sub}.rtcp(nil, b, r.pm)
		publishSink{r.pub}.rtcp(nil, b, r.pm)
		r.pm.flush()
	})
}

func FuzzPublishOffer(f *testing.F) {
	f.Add(bundleOnlyOffer)
	f.Add("v=0\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parsePublishOffer(s)
		if err != nil {
			return
		}
		_ = o.answer("u", "p", "AA", nil, 1, 1)
	})
}

func FuzzSubscribeAnswer(f *testing.F) {
	slots := []subSlot{{mid: "0", kind: "audio"}, {mid: "1", kind: "video"}}
	f.Add(subscribeOffer(slots, "u", "p", "AA:BB", nil, 1, 1))
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseSubscribeAnswer(s, slots)
	})
}

func FuzzTWCCRecorder(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 255, 255, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r twccRecorder
		out := make([]byte, 1500)
		now := int64(1e9)
		for i := 0; i+1 < len(b); i += 2 {
			now += int64(b[i]) * 1e5
			r.record(uint16(b[i])<<8|uint16(b[i+1]), now)
			if b[i]&7 == 0 {
				if n := r.build(out, 1, 2); n > 0 {
					var fb rtcp.TransportLayerCC
					if err := fb.Unmarshal(out[:n]); err != nil {
						t.Fatalf("the recorder wrote feedback pion cannot read: %v (%x)", err, out[:n])
					}
				}
			}
		}
	})
}

package sfu

import (
	"fmt"
	"strings"
)

// The subscribe transport's SDP: the server offers, sendonly, one m-section
// per forwarded track. a=msid is "<publisher id> <track id>" (RFC 8830), so
// a client maps a remote track to a participant without extra messages, and
// every stream of one publisher shares its CNAME (RFC 7022) for lip sync.
// Video carries RTX (RFC 4588) for retransmissions.

// subscribeOffer writes the offer for slots.
func subscribeOffer(slots []subSlot, ufrag, pwd, fp string, cands []string, sessionID uint64, version int) string {
	var bundle []string
	for _, s := range slots {
		if !s.rejected {
			bundle = append(bundle, s.mid)
		}
	}
	w := &sdpWriter{}
	w.sessionHeader(sessionID, version, bundle)
	for _, s := range slots {
		writeSubscribeSection(w, s, ufrag, pwd, fp, cands)
	}
	return w.String()
}

func writeSubscribeSection(w *sdpWriter, s subSlot, ufrag, pwd, fp string, cands []string) {
	video := s.kind == "video"
	if s.rejected {
		pts := fmt.Sprint(ptOpus)
		if video {
			pts = fmt.Sprint(ptVP8)
		}
		w.line("m=%s 0 UDP/TLS/RTP/SAVPF %s", s.kind, pts)
		w.line("c=IN IP4 0.0.0.0")
		w.line("a=mid:%s", s.mid)
		w.line("a=inactive")
		return
	}
	if video {
		w.line("m=video 9 UDP/TLS/RTP/SAVPF %d %d", ptVP8, ptRTX)
	} else {
		w.line("m=audio 9 UDP/TLS/RTP/SAVPF %d", ptOpus)
	}
	w.transportAttrs(ufrag, pwd, fp, "actpass", cands)
	w.line("a=mid:%s", s.mid)
	if s.down != nil {
		w.line("a=sendonly")
	} else {
		w.line("a=inactive")
	}
	for _, e := range subscribeExtList {
		if e.kind == "" || e.kind == s.kind {
			w.line("a=extmap:%d %s", e.id, e.uri)
		}
	}
	if video {
		w.line("a=rtpmap:%d VP8/90000", ptVP8)
		for _, fb := range []string{"nack", "nack pli", "ccm fir", "transport-cc"} {
			w.line("a=rtcp-fb:%d %s", ptVP8, fb)
		}
		w.line("a=rtpmap:%d rtx/90000", ptRTX)
		w.line("a=fmtp:%d apt=%d", ptRTX, ptVP8)
	} else {
		w.line("a=rtpmap:%d opus/48000/2", ptOpus)
		w.line("a=fmtp:%d minptime=10;useinbandfec=1", ptOpus)
		w.line("a=rtcp-fb:%d transport-cc", ptOpus)
	}
	d := s.down
	if d == nil {
		return
	}
	stream, track := d.up.owner.id, d.up.id
	w.line("a=msid:%s %s", stream, track)
	if d.rtxSSRC != 0 {
		w.line("a=ssrc-group:FID %d %d", d.ssrc, d.rtxSSRC)
	}
	for _, ssrc := range []uint32{d.ssrc, d.rtxSSRC} {
		if ssrc == 0 {
			continue
		}
		w.line("a=ssrc:%d cname:%s", ssrc, stream)
		w.line("a=ssrc:%d msid:%s %s", ssrc, stream, track)
	}
}

// subAnswer is what the client's answer says about each offered section.
type subAnswer struct {
	remote   remoteParams
	sections []subAnswerSection
}

type subAnswerSection struct {
	rejected bool
	ext      extIDs
	rtx      bool
}

func parseSubscribeAnswer(s string, offered []subSlot) (*subAnswer, error) {
	d, err := parseSDP(s)
	if err != nil {
		return nil, err
	}
	if len(d.MediaDescriptions) != len(offered) {
		return nil, fmt.Errorf("%w: %d m-sections answer an offer of %d", ErrInvalidSDP, len(d.MediaDescriptions), len(offered))
	}
	a := &subAnswer{}
	haveTransport := false
	for i, m := range d.MediaDescriptions {
		mid, _ := m.Attribute("mid")
		if mid != offered[i].mid {
			return nil, fmt.Errorf("%w: m-section %d has mid %q, offered %q", ErrInvalidSDP, i, mid, offered[i].mid)
		}
		sec := subAnswerSection{rejected: m.MediaName.Port.Value == 0}
		if !sec.rejected {
			for uri, id := range extmaps(m) {
				sec.ext.set(uri, id, offered[i].kind)
			}
			for _, at := range m.Attributes {
				if at.Key == "rtpmap" && strings.HasPrefix(at.Value, fmt.Sprint(ptRTX)+" ") &&
					strings.HasPrefix(strings.ToLower(at.Value[len(fmt.Sprint(ptRTX))+1:]), "rtx/") {
					sec.rtx = true
				}
			}
			if !haveTransport {
				if a.remote, _, err = remoteTransport(d, m, false); err != nil {
					return nil, err
				}
				haveTransport = true
			}
		}
		a.sections = append(a.sections, sec)
	}
	if !haveTransport {
		return nil, fmt.Errorf("%w: every m-section rejected", ErrInvalidSDP)
	}
	return a, nil
}

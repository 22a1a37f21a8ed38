package sfu

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// The publish transport: the client offers what it sends, the server answers
// recvonly for the Opus and VP8 sections it forwards and rejects the rest
// (port 0, RFC 8829 §5.3.1). RTX and FEC are left out of the answer, so
// publishers retransmit on the media SSRC (RFC 4585) and the SFU's cache
// holds exactly what subscribers may ask for again.

// pubSection is one m-section of a publish offer, as the SFU takes it.
type pubSection struct {
	index    int
	mid      string
	kind     string // "audio", "video", or something rejected
	proto    string
	formats  []string
	accepted bool
	sending  bool

	pt     uint8
	rtpmap string
	fmtp   string
	fb     []string
	ext    extIDs
	exts   []extLine

	ssrcs    []uint32 // signalled media SSRCs (RTX repair SSRCs excluded)
	rids     []string // simulcast layers, in the offer's order (RFC 8853)
	streamID string   // msid (RFC 8830)
	trackID  string
}

type extLine struct {
	id  uint8
	uri string
}

type pubOffer struct {
	remote   remoteParams
	setup    string // our answer's a=setup
	sections []pubSection
}

// Limits on what one publish offer may declare.
const (
	maxSSRCsPerSection = 8
	maxRids            = 3
)

func parsePublishOffer(s string) (*pubOffer, error) {
	d, err := parseSDP(s)
	if err != nil {
		return nil, err
	}
	if len(d.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no media sections", ErrInvalidSDP)
	}
	if len(d.MediaDescriptions) > maxPublishedMedia {
		return nil, fmt.Errorf("%w: %d media sections, at most %d", ErrInvalidSDP, len(d.MediaDescriptions), maxPublishedMedia)
	}
	o := &pubOffer{}
	var first *sdp.MediaDescription
	seen := map[string]bool{}
	for i, m := range d.MediaDescriptions {
		sec, err := parsePubSection(i, m)
		if err != nil {
			return nil, err
		}
		if seen[sec.mid] {
			return nil, fmt.Errorf("%w: mid %q twice", ErrInvalidSDP, sec.mid)
		}
		seen[sec.mid] = true
		if sec.accepted && first == nil {
			first = m
		}
		o.sections = append(o.sections, sec)
	}
	if first == nil {
		return nil, fmt.Errorf("%w: no Opus or VP8 section to receive", ErrInvalidSDP)
	}
	if o.remote, o.setup, err = remoteTransport(d, first, true); err != nil {
		return nil, err
	}
	return o, nil
}

func parsePubSection(i int, m *sdp.MediaDescription) (pubSection, error) {
	sec := pubSection{index: i, kind: m.MediaName.Media, proto: strings.Join(m.MediaName.Protos, "/"),
		formats: m.MediaName.Formats}
	var ok bool
	if sec.mid, ok = m.Attribute("mid"); !ok || sec.mid == "" || len(sec.mid) > 16 {
		return sec, fmt.Errorf("%w: m-section %d has no usable mid", ErrInvalidSDP, i)
	}
	if _, bundleOnly := m.Attribute("bundle-only"); m.MediaName.Port.Value == 0 && !bundleOnly {
		return sec, nil // rejected or stopped by the client (RFC 8843 §6: bundle-only sections also say port 0)
	}
	dir := direction(m)
	sec.sending = dir == "sendonly" || dir == "sendrecv"
	var mime string
	switch sec.kind {
	case "audio":
		mime = "opus/48000"
	case "video":
		mime = "vp8/90000"
	default:
		return sec, nil
	}
	if sec.pt, sec.rtpmap, sec.fmtp, sec.fb, ok = codecOf(m, mime); !ok {
		return sec, nil // no codec we forward: reject the section
	}
	sec.accepted = true
	sec.fb = keepFeedback(sec.fb, sec.kind)
	for uri, id := range extmaps(m) {
		if sec.ext.set(uri, id, sec.kind) {
			sec.exts = append(sec.exts, extLine{id, uri})
		}
	}
	slices.SortFunc(sec.exts, func(a, b extLine) int { return int(a.id) - int(b.id) })
	if err := sec.parseSources(m); err != nil {
		return sec, err
	}
	return sec, nil
}

// parseSources reads msid, SSRCs (RFC 5576) and simulcast rids (RFC 8851,
// RFC 8853).
func (sec *pubSection) parseSources(m *sdp.MediaDescription) error {
	repair := map[uint32]bool{}
	var ssrcs []uint32
	for _, a := range m.Attributes {
		switch a.Key {
		case "msid":
			sec.streamID, sec.trackID, _ = strings.Cut(a.Value, " ")
		case "ssrc":
			num, rest, _ := strings.Cut(a.Value, " ")
			n, err := strconv.ParseUint(num, 10, 32)
			if err != nil {
				return fmt.Errorf("%w: a=ssrc:%.20s", ErrInvalidSDP, a.Value)
			}
			if !containsSSRC(ssrcs, uint32(n)) {
				ssrcs = append(ssrcs, uint32(n))
			}
			if v, ok := strings.CutPrefix(rest, "msid:"); ok && sec.trackID == "" {
				sec.streamID, sec.trackID, _ = strings.Cut(v, " ")
			}
		case "ssrc-group":
			f := strings.Fields(a.Value)
			if len(f) == 3 && f[0] == "FID" { // RFC 4588 §8.1: primary, repair
				if n, err := strconv.ParseUint(f[2], 10, 32); err == nil {
					repair[uint32(n)] = true
				}
			}
		case "rid":
			id, rest, _ := strings.Cut(a.Value, " ")
			dir, _, _ := strings.Cut(rest, " ")
			if dir == "send" && validToken(id) && len(sec.rids) < maxRids {
				sec.rids = append(sec.rids, id)
			}
		}
	}
	for _, s := range ssrcs {
		if !repair[s] {
			sec.ssrcs = append(sec.ssrcs, s)
		}
	}
	if len(sec.ssrcs) > maxSSRCsPerSection {
		return fmt.Errorf("%w: %d SSRCs in one section", ErrInvalidSDP, len(sec.ssrcs))
	}
	if sec.kind != "video" {
		sec.rids = nil
	}
	sec.trackID = strings.TrimSpace(sec.trackID)
	if !validToken(sec.trackID) {
		sec.trackID = ""
	}
	return nil
}

func containsSSRC(list []uint32, s uint32) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validToken accepts ids the SFU repeats in its own SDP and messages.
func validToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '{' || c == '}') {
			return false
		}
	}
	return true
}

// answer writes the server's answer to o.
func (o *pubOffer) answer(ufrag, pwd, fp string, cands []string, sessionID uint64, version int) string {
	var bundle []string
	for _, s := range o.sections {
		if s.accepted {
			bundle = append(bundle, s.mid)
		}
	}
	w := &sdpWriter{}
	w.sessionHeader(sessionID, version, bundle)
	for _, s := range o.sections {
		if !s.accepted {
			formats := s.formats
			if len(formats) == 0 {
				formats = []string{"0"}
			}
			w.line("m=%s 0 %s %s", s.kind, s.proto, strings.Join(formats, " "))
			w.line("c=IN IP4 0.0.0.0")
			w.line("a=mid:%s", s.mid)
			w.line("a=inactive")
			continue
		}
		w.line("m=%s 9 UDP/TLS/RTP/SAVPF %d", s.kind, s.pt)
		w.transportAttrs(ufrag, pwd, fp, o.setup, cands)
		w.line("a=mid:%s", s.mid)
		if s.sending {
			w.line("a=recvonly")
		} else {
			w.line("a=inactive")
		}
		for _, e := range s.exts {
			w.line("a=extmap:%d %s", e.id, e.uri)
		}
		w.line("a=rtpmap:%d %s", s.pt, s.rtpmap)
		if s.fmtp != "" {
			w.line("a=fmtp:%d %s", s.pt, s.fmtp)
		}
		for _, f := range s.fb {
			w.line("a=rtcp-fb:%d %s", s.pt, f)
		}
		if len(s.rids) > 0 && s.sending {
			for _, r := range s.rids {
				w.line("a=rid:%s recv", r)
			}
			w.line("a=simulcast:recv %s", strings.Join(s.rids, ";"))
		}
	}
	return w.String()
}

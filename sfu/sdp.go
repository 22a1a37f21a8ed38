package sfu

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// SDP shared by both directions (RFC 8829 JSEP, RFC 8843 BUNDLE, RFC 8839
// ICE, RFC 8842 DTLS). Orville writes its SDP as text and reads the
// client's with pion/sdp. Every transport bundles all its m-sections on one
// ICE/DTLS connection (one port each: P for publish, P+1 for subscribe).

// Payload types of the codecs the server offers (docs/signaling.md); in
// answers it uses the client's numbers.
const (
	ptOpus = 111
	ptVP8  = 96
	ptRTX  = 97
)

// maxPublishedMedia bounds the media sections of a publish offer: microphone,
// camera, and a screen share with its audio.
const maxPublishedMedia = 4

// maxSDPSize bounds an SDP the server will parse.
const maxSDPSize = 64 << 10

// sdpWriter builds SDP text with CRLF line ends (RFC 8866 §5).
type sdpWriter struct{ b strings.Builder }

func (w *sdpWriter) line(format string, args ...any) {
	fmt.Fprintf(&w.b, format, args...)
	w.b.WriteString("\r\n")
}

func (w *sdpWriter) String() string { return w.b.String() }

// sessionHeader writes the session part and the BUNDLE group (RFC 8843 §7).
func (w *sdpWriter) sessionHeader(sessionID uint64, version int, bundle []string) {
	w.line("v=0")
	w.line("o=orville %d %d IN IP4 0.0.0.0", sessionID, version)
	w.line("s=-")
	w.line("t=0 0")
	if len(bundle) > 0 {
		w.line("a=group:BUNDLE %s", strings.Join(bundle, " "))
	}
	w.line("a=msid-semantic: WMS *")
}

// transportAttrs writes what every bundled m-section repeats: ICE
// credentials, the DTLS fingerprint and role, rtcp-mux and the candidates.
func (w *sdpWriter) transportAttrs(ufrag, pwd, fp, setup string, cands []string) {
	w.line("c=IN IP4 0.0.0.0")
	w.line("a=rtcp:9 IN IP4 0.0.0.0")
	w.line("a=ice-ufrag:%s", ufrag)
	w.line("a=ice-pwd:%s", pwd)
	w.line("a=fingerprint:sha-256 %s", fp)
	w.line("a=setup:%s", setup)
	w.line("a=rtcp-mux")
	w.line("a=rtcp-rsize")
	for _, c := range cands {
		w.line("a=candidate:%s", c)
	}
	w.line("a=end-of-candidates")
}

func newSessionID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) >> 2 // RFC 8866 §5.2: fits a signed 64-bit integer
}

// parseSDP parses and bounds a client's SDP.
func parseSDP(s string) (*sdp.SessionDescription, error) {
	if len(s) > maxSDPSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidSDP, len(s), maxSDPSize)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	return &d, nil
}

// attr returns an attribute of the m-section, else of the session.
func attr(d *sdp.SessionDescription, m *sdp.MediaDescription, key string) (string, bool) {
	if m != nil {
		if v, ok := m.Attribute(key); ok {
			return v, true
		}
	}
	return d.Attribute(key)
}

// remoteTransport reads the client's ICE credentials, fingerprints and DTLS
// role from the first bundled m-section (RFC 8843 §7.1: the tagged section
// carries the transport); offer says whether d is an offer.
func remoteTransport(d *sdp.SessionDescription, m *sdp.MediaDescription, offer bool) (remoteParams, string, error) {
	var r remoteParams
	var ok bool
	if r.ufrag, ok = attr(d, m, "ice-ufrag"); !ok || r.ufrag == "" {
		return r, "", fmt.Errorf("%w: no ice-ufrag", ErrInvalidSDP)
	}
	if r.pwd, ok = attr(d, m, "ice-pwd"); !ok || r.pwd == "" {
		return r, "", fmt.Errorf("%w: no ice-pwd", ErrInvalidSDP)
	}
	for _, list := range [][]sdp.Attribute{m.Attributes, d.Attributes} {
		for _, a := range list {
			if a.Key != "fingerprint" {
				continue
			}
			hash, value, found := strings.Cut(a.Value, " ")
			if found {
				r.fingerprints = append(r.fingerprints, sdpFingerprint{hash: strings.ToLower(hash), value: strings.TrimSpace(value)})
			}
		}
	}
	if len(r.fingerprints) == 0 {
		return r, "", fmt.Errorf("%w: no fingerprint", ErrInvalidSDP)
	}
	setup, _ := attr(d, m, "setup")
	// RFC 8842 §5.3: an offerer says actpass and the answerer picks; as
	// answerer we take passive (DTLS server) unless the offer insists on
	// being passive itself. Our own offers say actpass, so the answer's
	// "active" makes us the server and "passive" the client.
	answerSetup := ""
	switch {
	case offer && setup == "passive":
		r.dtlsServer, answerSetup = false, "active"
	case offer:
		r.dtlsServer, answerSetup = true, "passive"
	case setup == "passive":
		r.dtlsServer = false
	case setup == "active" || setup == "":
		r.dtlsServer = true
	default:
		return r, "", fmt.Errorf("%w: answer with setup:%s", ErrInvalidSDP, setup)
	}
	return r, answerSetup, nil
}

// codecOf finds the payload type of mime (e.g. "opus/48000", "VP8/90000")
// in an m-section, with its fmtp line and feedback types.
func codecOf(m *sdp.MediaDescription, mime string) (pt uint8, rtpmap, fmtp string, fb []string, ok bool) {
	want := strings.ToLower(mime)
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		num, enc, found := strings.Cut(a.Value, " ")
		if !found || !strings.HasPrefix(strings.ToLower(enc), want) {
			continue
		}
		n, err := strconv.ParseUint(num, 10, 7)
		if err != nil {
			continue
		}
		pt, rtpmap, ok = uint8(n), enc, true
		break
	}
	if !ok {
		return 0, "", "", nil, false
	}
	prefix := strconv.Itoa(int(pt)) + " "
	for _, a := range m.Attributes {
		switch a.Key {
		case "fmtp":
			if strings.HasPrefix(a.Value, prefix) {
				fmtp = strings.TrimPrefix(a.Value, prefix)
			}
		case "rtcp-fb":
			if strings.HasPrefix(a.Value, prefix) || strings.HasPrefix(a.Value, "* ") {
				fb = append(fb, a.Value[strings.IndexByte(a.Value, ' ')+1:])
			}
		}
	}
	return pt, rtpmap, fmtp, fb, true
}

// direction returns the m-section's direction attribute (RFC 8866 §6.7).
func direction(m *sdp.MediaDescription) string {
	for _, a := range m.Attributes {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return "sendrecv"
}

// extmaps reads an m-section's header extensions (RFC 8285 §5).
func extmaps(m *sdp.MediaDescription) map[string]uint8 {
	out := map[string]uint8{}
	for _, a := range m.Attributes {
		if a.Key != "extmap" {
			continue
		}
		idPart, rest, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		idPart, _, _ = strings.Cut(idPart, "/") // "id/direction"
		id, err := strconv.ParseUint(idPart, 10, 8)
		if err != nil || id == 0 || id > 14 { // one-byte header IDs only
			continue
		}
		uri, _, _ := strings.Cut(rest, " ")
		out[uri] = uint8(id)
	}
	return out
}

// keepFeedback intersects offered rtcp-fb values with what the SFU
// implements (RFC 4585 nack and pli, RFC 5104 ccm fir, transport-cc).
func keepFeedback(offered []string, kind string) []string {
	var out []string
	for _, f := range offered {
		switch f {
		case "transport-cc":
			out = append(out, f)
		case "nack", "nack pli", "ccm fir":
			if kind == "video" {
				out = append(out, f)
			}
		}
	}
	return out
}

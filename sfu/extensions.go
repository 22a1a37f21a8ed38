package sfu

import "encoding/binary"

// RTP header extensions (RFC 8285) the SFU negotiates. IDs are per transport:
// a publisher's offer chooses its own, the subscribe offers use subscribeExt.
// The publish side reads mid/rid (simulcast demultiplexing), the audio level
// (speaker detection) and the transport-wide sequence number (feedback to
// the publisher's bandwidth estimator); the subscribe side writes the
// subscriber's own mid, the publisher's audio level and video orientation,
// and its own transport-wide sequence number.
const (
	uriMid              = "urn:ietf:params:rtp-hdrext:sdes:mid"
	uriRid              = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
	uriRepairedRid      = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
	uriAudioLevel       = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
	uriTWCC             = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
	uriVideoOrientation = "urn:3gpp:video-orientation"
)

// extIDs is one m-section's negotiated extension IDs; 0 is "not negotiated".
type extIDs struct {
	mid, rid, repairedRid, audioLevel, twcc, videoOrientation uint8
}

// set records id for a known URI; it reports whether the URI is one the SFU
// uses for that kind of media.
func (e *extIDs) set(uri string, id uint8, kind string) bool {
	switch {
	case uri == uriMid:
		e.mid = id
	case uri == uriRid && kind == "video":
		e.rid = id
	case uri == uriRepairedRid && kind == "video":
		e.repairedRid = id
	case uri == uriAudioLevel && kind == "audio":
		e.audioLevel = id
	case uri == uriTWCC:
		e.twcc = id
	case uri == uriVideoOrientation && kind == "video":
		e.videoOrientation = id
	default:
		return false
	}
	return true
}

// subscribeExt are the IDs of the subscribe offers (the numbers browsers use
// themselves, so SDP from both directions looks alike).
var subscribeExtList = []struct {
	id   uint8
	uri  string
	kind string // "" for both
}{
	{1, uriAudioLevel, "audio"},
	{3, uriTWCC, ""},
	{4, uriMid, ""},
	{13, uriVideoOrientation, "video"},
}

// ingestExt is what the packet path reads from a publisher's packet, once.
type ingestExt struct {
	audioLevel  uint8 // RFC 6464 §3: -dBov, 127 = silence; valid if hasLevel
	voice       bool
	hasLevel    bool
	orientation uint8
	hasOrient   bool
	twcc        uint16
	hasTWCC     bool
}

// parseExtensions reads the known extensions of one packet (the header was
// already parsed by SRTP into h's extension list, aliasing the packet).
func parseExtensions(ids *extIDs, get func(uint8) []byte, out *ingestExt) {
	*out = ingestExt{}
	if ids.audioLevel != 0 {
		if b := get(ids.audioLevel); len(b) >= 1 {
			out.audioLevel, out.voice, out.hasLevel = b[0]&0x7f, b[0]&0x80 != 0, true
		}
	}
	if ids.videoOrientation != 0 {
		if b := get(ids.videoOrientation); len(b) >= 1 {
			out.orientation, out.hasOrient = b[0], true
		}
	}
	if ids.twcc != 0 {
		if b := get(ids.twcc); len(b) >= 2 {
			out.twcc, out.hasTWCC = binary.BigEndian.Uint16(b), true
		}
	}
}

// outExt is what a down track writes into one outgoing packet.
type outExt struct {
	mid  string
	ids  extIDs // the subscriber's (0: not negotiated)
	twcc uint16
}

// writeExtensions writes a one-byte-header extension block (RFC 8285 §4.2)
// at b and returns its length (a multiple of 4), or 0 if nothing is written.
func writeExtensions(b []byte, o *outExt, in *ingestExt) int {
	if len(b) < 4 {
		return 0
	}
	n := 4
	put := func(id uint8, data []byte) {
		if id == 0 || id > 14 || len(data) == 0 || len(data) > 16 || n+1+len(data) > len(b) {
			return
		}
		b[n] = id<<4 | byte(len(data)-1)
		n += 1 + copy(b[n+1:], data)
	}
	var tmp [2]byte
	if o.ids.twcc != 0 {
		binary.BigEndian.PutUint16(tmp[:], o.twcc)
		put(o.ids.twcc, tmp[:2])
	}
	if o.ids.mid != 0 && o.mid != "" {
		putString(b, &n, o.ids.mid, o.mid)
	}
	if in != nil && in.hasLevel && o.ids.audioLevel != 0 {
		v := in.audioLevel
		if in.voice {
			v |= 0x80
		}
		tmp[0] = v
		put(o.ids.audioLevel, tmp[:1])
	}
	if in != nil && in.hasOrient && o.ids.videoOrientation != 0 {
		tmp[0] = in.orientation
		put(o.ids.videoOrientation, tmp[:1])
	}
	if n == 4 {
		return 0
	}
	for n%4 != 0 {
		b[n] = 0 // padding (RFC 8285 §4.2)
		n++
	}
	b[0], b[1] = 0xBE, 0xDE
	binary.BigEndian.PutUint16(b[2:], uint16((n-4)/4))
	return n
}

// putString writes a string-valued element without converting it to a
// byte slice (no allocation).
func putString(b []byte, n *int, id uint8, s string) {
	if id > 14 || len(s) == 0 || len(s) > 16 || *n+1+len(s) > len(b) {
		return
	}
	b[*n] = id<<4 | byte(len(s)-1)
	*n += 1 + copy(b[*n+1:], s)
}

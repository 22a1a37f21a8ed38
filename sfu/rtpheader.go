package sfu

import "encoding/binary"

// Minimal RTP header access (RFC 3550 §5.1) for the packet path: the SFU needs a
// few fields and the payload offset, not a parsed packet.

const rtpFixedHeader = 12

// rtpPayload returns the offset of the payload and its end (before padding, RFC
// 3550 §5.1 P bit), or ok=false for a malformed packet.
func rtpPayload(b []byte) (start, end int, ok bool) {
	if len(b) < rtpFixedHeader || b[0]>>6 != 2 {
		return 0, 0, false
	}
	start = rtpFixedHeader + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // X: header extension (RFC 3550 §5.3.1)
		if len(b) < start+4 {
			return 0, 0, false
		}
		start += 4 + 4*int(binary.BigEndian.Uint16(b[start+2:]))
	}
	end = len(b)
	if b[0]&0x20 != 0 { // P: the last byte counts the padding
		if end == 0 {
			return 0, 0, false
		}
		end -= int(b[end-1])
	}
	if start > end {
		return 0, 0, false
	}
	return start, end, true
}

func rtpSeq(b []byte) uint16       { return binary.BigEndian.Uint16(b[2:4]) }
func rtpTimestamp(b []byte) uint32 { return binary.BigEndian.Uint32(b[4:8]) }
func rtpMarker(b []byte) bool      { return b[1]&0x80 != 0 }

// seqNewer reports whether a is after b in 16-bit sequence space (RFC 3550 A.1).
func seqNewer(a, b uint16) bool { return a != b && a-b < 0x8000 }

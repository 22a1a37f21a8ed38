package sfu

import "encoding/binary"

// Transport-wide congestion control feedback from subscribers
// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): which of the
// packets the server sent on a subscribe transport arrived, and when. The
// decoder is the counterpart of twccRecorder (twcc.go) and, like it,
// allocates nothing: statuses go into the caller's array.

// twccStatus is one packet a feedback reports on.
type twccStatus struct {
	seq      uint16
	received bool
	arrival  int64 // receiver clock, ns (reference time plus deltas); only differences mean anything
}

// maxFeedbackStatuses bounds what one feedback may report (a subscriber
// sends one every 50–100 ms; at 5 Mb/s that is well under 100 packets).
const maxFeedbackStatuses = 1024

// parseTWCC decodes one transport-wide feedback packet (an RTPFB with FMT
// 15) into out and returns how many statuses it filled, capped at len(out),
// and the feedback packet count. ok is false for a malformed packet.
func parseTWCC(pkt []byte, out []twccStatus) (n int, fbCount uint8, ok bool) {
	if len(pkt) < 20 {
		return 0, 0, false
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 { // RFC 3550 §6.4.1 padding: the last octet counts it
		pad := int(pkt[end-1])
		if pad == 0 || pad > end-20 {
			return 0, 0, false
		}
		end -= pad
	}
	base := binary.BigEndian.Uint16(pkt[12:])
	count := int(binary.BigEndian.Uint16(pkt[14:]))
	ref := int64(int32(binary.BigEndian.Uint32(pkt[16:]))>>8) * 64e6 // 24-bit signed, 64 ms units
	fbCount = pkt[19]
	// First pass: the status chunks (§3.1.3, §3.1.4), symbols into out.
	// Every chunk is read (the deltas follow the last one) but only the
	// first len(out) statuses are kept.
	o, seen := 20, 0
	keep := func(sym uint16) {
		if seen < len(out) {
			out[seen] = twccStatus{seq: base + uint16(seen), arrival: int64(sym)}
			n++
		}
		seen++
	}
	for seen < count {
		if o+2 > end {
			return 0, 0, false
		}
		chunk := binary.BigEndian.Uint16(pkt[o:])
		o += 2
		switch {
		case chunk&0x8000 == 0: // run length chunk: 2-bit symbol, 13-bit run
			for run := int(chunk & 0x1fff); run > 0 && seen < count; run-- {
				keep(chunk >> 13 & 3)
			}
		case chunk&0x4000 == 0: // status vector, 14 one-bit symbols
			for i := 13; i >= 0 && seen < count; i-- {
				keep(chunk >> uint(i) & 1)
			}
		default: // status vector, 7 two-bit symbols
			for i := 6; i >= 0 && seen < count; i-- {
				keep(chunk >> uint(2*i) & 3)
			}
		}
	}
	// Second pass: the receive deltas (§3.1.5), 250 µs units, in order.
	at := ref
	for i := 0; i < n; i++ {
		switch out[i].arrival { // the symbol, parked there by the first pass
		case 0:
			out[i].arrival = 0
			continue
		case 1:
			if o+1 > end {
				return 0, 0, false
			}
			at += int64(pkt[o]) * 250e3
			o++
		case 2:
			if o+2 > end {
				return 0, 0, false
			}
			at += int64(int16(binary.BigEndian.Uint16(pkt[o:]))) * 250e3
			o += 2
		default: // 3 is reserved
			return 0, 0, false
		}
		out[i].received, out[i].arrival = true, at
	}
	return n, fbCount, true
}

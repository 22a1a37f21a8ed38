package sfu

import (
	"encoding/binary"
	"sync/atomic"
)

// sentRecord remembers, per transport-wide sequence number, when a packet
// left toward one subscriber and how large it was: what the feedback's
// arrival times are compared with. The forwarder and the retransmitter
// (different goroutines) both send on a subscribe transport, so each entry
// is one atomic word; nothing is locked or allocated per packet.
type sentRecord struct {
	slots [sentRing]atomic.Uint64 // seq<<48 | probe<<47 | size<<32 | send time in µs (mod 2^32)
}

// sentRing covers a few seconds of sending at high rates (a feedback
// reports at most ~1 s late); a power of two.
const sentRing = 8192

// note records packet seq of size bytes sent at now (ns since the call's
// epoch); probe marks bandwidth probes (bwe_probe.go).
func (r *sentRecord) note(seq uint16, size int, now int64, probe bool) {
	w := uint64(seq)<<48 | uint64(min(size, 0x7fff))<<32 | uint64(uint32(now/1000))
	if probe {
		w |= 1 << 47
	}
	r.slots[seq&(sentRing-1)].Store(w)
}

// lookup returns what note recorded for seq: the send time (ns since the
// epoch, unwrapped against now), the size and the probe mark.
func (r *sentRecord) lookup(seq uint16, now int64) (at int64, size int, probe, ok bool) {
	w := r.slots[seq&(sentRing-1)].Load()
	if w == 0 || uint16(w>>48) != seq {
		return 0, 0, false, false
	}
	ago := int64(uint32(now/1000)-uint32(w)) * 1000 // µs clock, wraps every 71 min
	return now - ago, int(w >> 32 & 0x7fff), w&(1<<47) != 0, true
}

// twccOf returns the transport-wide sequence number in the one-byte header
// extension block of the RTP packet b (RFC 8285 §4.2) under id: what the
// down track's build wrote, read back so that it can be recorded with the
// packet's final size.
func twccOf(b []byte, id uint8) (uint16, bool) {
	if id == 0 || len(b) < 16 || b[0]&0x10 == 0 {
		return 0, false
	}
	o := 12 + 4*int(b[0]&0x0f)
	if len(b) < o+4 || b[o] != 0xBE || b[o+1] != 0xDE {
		return 0, false
	}
	end := o + 4 + 4*int(binary.BigEndian.Uint16(b[o+2:]))
	if end > len(b) {
		return 0, false
	}
	for i := o + 4; i < end; {
		if b[i] == 0 { // padding
			i++
			continue
		}
		eid, l := b[i]>>4, int(b[i]&0x0f)+1
		if eid == 15 {
			break
		}
		if eid == id && l == 2 && i+3 <= end {
			return binary.BigEndian.Uint16(b[i+1:]), true
		}
		i += 1 + l
	}
	return 0, false
}

package sfu

import "encoding/binary"

// Transport-wide congestion control feedback toward publishers
// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): the publisher's
// bandwidth estimator learns from it when each of its packets arrived. The
// recorder belongs to the publish transport's ingress goroutine and, unlike a
// general-purpose encoder, allocates nothing: arrivals go into a ring, and
// each feedback packet is written into a caller's buffer.
type twccRecorder struct {
	arrivals [twccRing]int64 // ns since the epoch; 0: not received
	started  bool
	last     int64 // highest extended sequence number seen
	next     int64 // first sequence number not yet reported
	fbCount  uint8
}

// twccRing bounds what one feedback can cover (about 2 s of 1.5 Mb/s video
// plus audio); twccMaxReport is the most packets one feedback reports.
const (
	twccRing      = 4096
	twccMaxReport = 1024
)

func (r *twccRecorder) record(seq uint16, now int64) {
	if !r.started {
		r.started, r.last, r.next = true, int64(seq), int64(seq)
	}
	ext := r.last + int64(int16(seq-uint16(r.last)))
	if ext < r.next || ext <= r.last-twccRing {
		return // already reported, or hopelessly late
	}
	if ext > r.last {
		for q := r.last + 1; q < ext && q-r.last < twccRing; q++ {
			r.arrivals[q%twccRing] = 0 // not (yet) received
		}
		r.last = ext
	}
	r.arrivals[ext%twccRing] = max(now, 1)
}

func (r *twccRecorder) pending() bool { return r.started && r.next <= r.last }

// build writes one feedback packet for everything recorded since the last
// one and returns its length (0: nothing to report or no room).
func (r *twccRecorder) build(b []byte, sender, media uint32) int {
	if !r.pending() {
		return 0
	}
	from := max(r.next, r.last-twccMaxReport+1)
	count := int(r.last - from + 1)
	// The reference time is that of the first packet received (§3.1:
	// multiples of 64 ms); deltas go from there in 250 µs steps.
	var ref int64 = -1
	for q := from; q <= r.last; q++ {
		if at := r.arrivals[q%twccRing]; at != 0 {
			ref = at / 64e6
			break
		}
	}
	r.next = r.last + 1
	if ref < 0 {
		return 0 // all lost: the next packet's feedback will say so
	}
	chunks := (count + 6) / 7
	header := 20
	if len(b) < header+2*chunks+2*count+3 {
		return 0
	}
	// Status vector chunks, 2-bit symbols (§3.1.4): 0 not received, 1 small
	// delta (one byte), 2 large or negative delta (two bytes).
	o := header
	d := header + 2*chunks
	prev := ref * 64e6
	for c := 0; c < chunks; c++ {
		chunk := uint16(0xC000)
		for i := 0; i < 7; i++ {
			q := from + int64(c*7+i)
			sym := uint16(0)
			if q <= r.last {
				if at := r.arrivals[q%twccRing]; at != 0 {
					delta := (at - prev) / 250e3
					prev += delta * 250e3
					if delta >= 0 && delta <= 255 {
						sym = 1
						b[d] = byte(delta)
						d++
					} else {
						sym = 2
						delta = max(min(delta, 32767), -32768)
						binary.BigEndian.PutUint16(b[d:], uint16(int16(delta)))
						d += 2
					}
				}
			}
			chunk |= sym << (2 * (6 - i))
		}
		binary.BigEndian.PutUint16(b[o:], chunk)
		o += 2
	}
	pad := (4 - d%4) % 4
	for i := 0; i < pad; i++ {
		b[d+i] = 0
	}
	n := d + pad
	if pad > 0 {
		b[n-1] = byte(pad) // RFC 3550 §6.4.1 padding: the last octet counts it
	}
	rtcpHeader(b, fmtTWCC, rtcpRTPFB, n/4)
	if pad > 0 {
		b[0] |= 0x20
	}
	binary.BigEndian.PutUint32(b[4:], sender)
	binary.BigEndian.PutUint32(b[8:], media)
	binary.BigEndian.PutUint16(b[12:], uint16(from))
	binary.BigEndian.PutUint16(b[14:], uint16(count))
	refField := uint32(ref) & 0xffffff
	binary.BigEndian.PutUint32(b[16:], refField<<8|uint32(r.fbCount))
	r.fbCount++
	return n
}

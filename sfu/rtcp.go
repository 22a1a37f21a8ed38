package sfu

import (
	"encoding/binary"
	"sync/atomic"
	"time"
)

// RTCP written and read by hand (RFC 3550 §6, RFC 4585 §6): fixed layouts
// into reusable buffers, so that feedback costs no allocation. Every packet
// here is sent alone, which reduced-size RTCP allows (RFC 5506, negotiated
// with a=rtcp-rsize).

// RTCP packet types and feedback formats.
const (
	rtcpSR    = 200
	rtcpRR    = 201
	rtcpSDES  = 202
	rtcpBYE   = 203
	rtcpRTPFB = 205 // RFC 4585 §6.2: transport-layer feedback
	rtcpPSFB  = 206 // RFC 4585 §6.3: payload-specific feedback

	fmtNACK = 1  // RTPFB: generic NACK
	fmtTWCC = 15 // RTPFB: transport-wide feedback (draft-holmer-rmcat-transport-wide-cc-extensions)
	fmtPLI  = 1  // PSFB: picture loss indication
	fmtFIR  = 4  // PSFB: full intra request (RFC 5104 §4.3.1)
	fmtREMB = 15 // PSFB: application layer feedback (REMB)
)

// rtcpHeader writes the common header (RFC 3550 §6.4.1): version 2, count or
// format, type and length in 32-bit words minus one.
func rtcpHeader(b []byte, count uint8, pt uint8, words int) {
	b[0] = 0x80 | count&0x1f
	b[1] = pt
	binary.BigEndian.PutUint16(b[2:], uint16(words-1))
}

// appendPLI writes a PLI (RFC 4585 §6.3.1) for media at b.
func appendPLI(b []byte, sender, media uint32) int {
	rtcpHeader(b, fmtPLI, rtcpPSFB, 3)
	binary.BigEndian.PutUint32(b[4:], sender)
	binary.BigEndian.PutUint32(b[8:], media)
	return 12
}

// appendNACK writes a generic NACK (RFC 4585 §6.2.1) for the sorted lost
// sequence numbers, packing them into PID/BLP pairs; it writes at most as
// many pairs as fit in b.
func appendNACK(b []byte, sender, media uint32, lost []uint16) int {
	n := 12
	for i := 0; i < len(lost) && n+4 <= len(b); {
		pid := lost[i]
		var blp uint16
		i++
		for i < len(lost) {
			d := lost[i] - pid
			if d == 0 || d > 16 {
				break
			}
			blp |= 1 << (d - 1)
			i++
		}
		binary.BigEndian.PutUint16(b[n:], pid)
		binary.BigEndian.PutUint16(b[n+2:], blp)
		n += 4
	}
	if n == 12 {
		return 0
	}
	rtcpHeader(b, fmtNACK, rtcpRTPFB, n/4)
	binary.BigEndian.PutUint32(b[4:], sender)
	binary.BigEndian.PutUint32(b[8:], media)
	return n
}

// reportBlock is one reception report (RFC 3550 §6.4.1).
type reportBlock struct {
	ssrc         uint32
	fractionLost uint8
	totalLost    uint32 // 24 bits
	highest      uint32 // extended highest sequence number
	jitter       uint32
	lsr, dlsr    uint32
}

// appendRR writes a receiver report with up to 31 blocks.
func appendRR(b []byte, sender uint32, blocks []reportBlock) int {
	blocks = blocks[:min(len(blocks), 31)]
	n := 8 + 24*len(blocks)
	if n > len(b) {
		return 0
	}
	rtcpHeader(b, uint8(len(blocks)), rtcpRR, n/4)
	binary.BigEndian.PutUint32(b[4:], sender)
	for i, r := range blocks {
		o := 8 + 24*i
		binary.BigEndian.PutUint32(b[o:], r.ssrc)
		binary.BigEndian.PutUint32(b[o+4:], uint32(r.fractionLost)<<24|r.totalLost&0xffffff)
		binary.BigEndian.PutUint32(b[o+8:], r.highest)
		binary.BigEndian.PutUint32(b[o+12:], r.jitter)
		binary.BigEndian.PutUint32(b[o+16:], r.lsr)
		binary.BigEndian.PutUint32(b[o+20:], r.dlsr)
	}
	return n
}

// appendSR writes a sender report without report blocks.
func appendSR(b []byte, ssrc uint32, ntp uint64, rtpTime, packets, octets uint32) int {
	rtcpHeader(b, 0, rtcpSR, 7)
	binary.BigEndian.PutUint32(b[4:], ssrc)
	binary.BigEndian.PutUint64(b[8:], ntp)
	binary.BigEndian.PutUint32(b[16:], rtpTime)
	binary.BigEndian.PutUint32(b[20:], packets)
	binary.BigEndian.PutUint32(b[24:], octets)
	return 28
}

// ntpTime converts to the 64-bit NTP format (RFC 5905 §6).
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970
	s := uint64(t.Unix() + ntpEpochOffset)
	f := uint64(t.Nanosecond()) << 32 / 1e9
	return s<<32 | f
}

// rtcpPackets walks a compound RTCP packet, calling f with each packet's
// type, count/format field and whole bytes; it stops at the first malformed
// header (RFC 3550 §6.1: the lengths must add up).
func rtcpPackets(b []byte, f func(pt, count uint8, pkt []byte)) {
	for len(b) >= 4 {
		if b[0]>>6 != 2 {
			return
		}
		n := 4 * (int(binary.BigEndian.Uint16(b[2:])) + 1)
		if n > len(b) {
			return
		}
		f(b[1], b[0]&0x1f, b[:n])
		b = b[n:]
	}
}

// nackPairs calls f for every sequence number a generic NACK asks for.
func nackPairs(pkt []byte, f func(seq uint16)) {
	for o := 12; o+4 <= len(pkt); o += 4 {
		pid := binary.BigEndian.Uint16(pkt[o:])
		blp := binary.BigEndian.Uint16(pkt[o+2:])
		f(pid)
		for i := uint16(0); i < 16; i++ {
			if blp&(1<<i) != 0 {
				f(pid + i + 1)
			}
		}
	}
}

// mediaSSRC is the media source a feedback packet is about (RFC 4585 §6.1).
func mediaSSRC(pkt []byte) (uint32, bool) {
	if len(pkt) < 12 {
		return 0, false
	}
	return binary.BigEndian.Uint32(pkt[8:]), true
}

// receptionReports calls f with each report block (24 bytes, RFC 3550
// §6.4.1) of an RR, or of an SR after its sender info.
func receptionReports(pkt []byte, pt, count uint8, f func(ssrc uint32, block []byte)) {
	o := 8
	if pt == rtcpSR {
		o = 28
	}
	for i := 0; i < int(count) && o+24 <= len(pkt); i++ {
		f(binary.BigEndian.Uint32(pkt[o:]), pkt[o:o+24])
		o += 24
	}
}

// receptionState is a subscriber's latest reception report on one down
// track: loss, jitter, and the round trip derived from the LSR/DLSR of our
// sender reports (RFC 3550 §6.4.1). The forwarder records the reports it
// sends; the RTCP reader records what comes back; the allocator and stats
// read it.
type receptionState struct {
	lastSR     atomic.Uint32 // middle 32 bits of the NTP time of our latest SR
	lastSRAt   atomic.Int64  // when it went out, ns since the epoch
	fraction   atomic.Uint32 // fraction lost, /256
	lost       atomic.Int32  // cumulative lost
	jitter     atomic.Uint32 // in RTP timestamp units
	rttMicros  atomic.Int64  // 0: unknown
	receivedAt atomic.Int64
}

func (r *receptionState) sent(ntp uint64, now int64) {
	r.lastSR.Store(uint32(ntp >> 16))
	r.lastSRAt.Store(now)
}

func (r *receptionState) receive(block []byte, now int64) {
	r.fraction.Store(uint32(block[4]))
	lost := int32(binary.BigEndian.Uint32(block[4:])<<8) >> 8 // 24-bit signed
	r.lost.Store(lost)
	r.jitter.Store(binary.BigEndian.Uint32(block[12:]))
	lsr, dlsr := binary.BigEndian.Uint32(block[16:]), binary.BigEndian.Uint32(block[20:])
	if lsr != 0 && lsr == r.lastSR.Load() {
		rtt := now - r.lastSRAt.Load() - int64(dlsr)*1e9/65536
		if rtt >= 0 {
			r.rttMicros.Store(max(rtt/1000, 1))
		}
	}
	r.receivedAt.Store(now)
}

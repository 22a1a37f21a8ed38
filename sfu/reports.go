package sfu

import (
	"time"
)

// Sender and receiver reports (RFC 3550 §6.4), once a second per call: the
// server terminates RTCP on both hops, so it reports what it received to
// publishers and what it sent to subscribers.

const reportInterval = time.Second

func (c *Call) reportLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(reportInterval)
	defer tick.Stop()
	rr := map[*upStream]*rrState{}
	buf := make([]byte, 1500)
	for {
		select {
		case <-tick.C:
		case <-c.stop:
			return
		}
		c.mu.Lock()
		list := c.othersLocked(nil)
		c.mu.Unlock()
		now := c.now()
		wall := time.Now()
		seen := map[*upStream]bool{}
		for _, p := range list {
			p.sendReceiverReports(buf, rr, seen, now)
			p.sendSenderReports(buf, now, wall)
		}
		for s := range rr {
			if !seen[s] {
				delete(rr, s)
			}
		}
	}
}

// sendReceiverReports reports on every stream the participant publishes.
func (p *Participant) sendReceiverReports(buf []byte, rr map[*upStream]*rrState, seen map[*upStream]bool, now int64) {
	var blocks []reportBlock
	for _, s := range *p.streams.Load() {
		if s.recv.received.Load() == 0 {
			continue
		}
		st := rr[s]
		if st == nil {
			st = &rrState{}
			rr[s] = st
		}
		seen[s] = true
		blocks = append(blocks, s.recv.block(s.ssrc, st, s.sr.Load(), now))
	}
	if len(blocks) == 0 {
		return
	}
	if n := appendRR(buf, p.rtcpSSRC, blocks); n > 0 {
		p.pubT.writeRTCP(buf[:n])
	}
}

// sendSenderReports sends one SR per stream the participant receives. The
// NTP/RTP pair comes from the publisher's own latest report when there is
// one (shifted by the down track's timestamp offset), which keeps a
// publisher's audio and video in sync at the receiver; otherwise from the
// last packet sent and the wall clock.
func (p *Participant) sendSenderReports(buf []byte, now int64, wall time.Time) {
	p.mu.Lock()
	downs := make([]*downTrack, 0, len(p.sub.downs))
	for _, d := range p.sub.downs {
		if d.active.Load() && d.packets.Load() > 0 {
			downs = append(downs, d)
		}
	}
	p.mu.Unlock()
	for _, d := range downs {
		ntp, rtpTime := d.reportTime(now, wall)
		n := appendSR(buf, d.ssrc, ntp, rtpTime, d.packets.Load(), d.octets.Load())
		p.subT.writeRTCP(buf[:n])
	}
}

func (d *downTrack) reportTime(now int64, wall time.Time) (uint64, uint32) {
	clock := int64(d.up.clock)
	if s := d.up.stream(0); s != nil {
		if sr := s.sr.Load(); sr != nil && now-sr.at < 10*int64(time.Second) {
			elapsed := now - sr.at
			ntp := sr.ntp + uint64(elapsed)<<32/uint64(time.Second)
			return ntp, sr.rtp + uint32(elapsed*clock/1e9) + d.srShift.Load()
		}
	}
	elapsed := now - d.srAt.Load()
	return ntpTime(wall), d.srTS.Load() + uint32(elapsed*clock/1e9)
}

package sfu

import (
	"time"
)

// Receiver reports (RFC 3550 §6.4.2) to publishers, once a second per call:
// the server terminates RTCP on both hops. (Sender reports to subscribers go
// out from the forwarder, downtrack.go.)

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
		seen := map[*upStream]bool{}
		for _, p := range list {
			p.sendReceiverReports(buf, rr, seen, now)
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
	for _, s := range p.streams.Load().list {
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

package main

import "github.com/orville/orville/metrics"

// edgeStats is metrics.WatchEdges' read function: the counters of the
// client port's sniffer, the TURN relay and the SOCKS relay, read at each
// scrape.
func (f *tcpFront) edgeStats() metrics.EdgeStats {
	s := f.sniff.Stats()
	var e metrics.EdgeStats
	e.TCP = map[string]uint64{
		"accepted": s.Accepted, "refused": s.Refused, "refused_per_ip": s.RefusedPerIP, "evicted": s.Evicted,
		"junk": s.Junk, "tls_failed": s.TLSFailed, "timeout": s.Timeouts, "dropped": s.Dropped,
	}
	e.TCPOpen = s.Open
	if t := f.turn.Load(); t != nil {
		ts := t.Stats()
		e.TURN = map[string]uint64{"relayed": ts.Relayed, "refused_peer": ts.Refused,
			"refused_request": ts.RefusedRequests, "auth_failed": ts.AuthFailed}
		e.TURNAllocations = ts.Allocations
	}
	if ss := f.socks.Load(); ss != nil {
		st := ss.Stats()
		e.SOCKS = map[string]uint64{"accepted": st.Accepted, "refused": st.Refused, "refused_per_ip": st.RefusedPerIP,
			"auth_failed": st.AuthFailed, "not_allowed": st.NotAllowed, "bad_request": st.BadRequest,
			"connect": st.Connects, "udp_associate": st.Associations}
		e.SOCKSDatagrams = map[string]uint64{"relayed": st.DatagramsRelayed, "dropped": st.DatagramsDropped}
		e.SOCKSOpen = st.Open
	}
	return e
}

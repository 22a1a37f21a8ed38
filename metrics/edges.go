package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// EdgeStats are the counters of the client-facing edges — the shared TCP
// client port, the TURN relay and the SOCKS5 relay — as their components
// keep them. Each map's keys are the label values (a fixed set chosen by
// the component, never anything a client sent).
type EdgeStats struct {
	// TCP counts connections on the client port by result ("accepted",
	// "refused", "refused_per_ip", "evicted", "junk", "tls_failed",
	// "timeout", "dropped"); TCPOpen is how many are open now.
	TCP     map[string]uint64
	TCPOpen int
	// TURN counts relay events ("relayed" packets, "refused_peer" packets
	// and permissions, "refused_request" 403 answers, "auth_failed"
	// requests); TURNAllocations is how many allocations exist now.
	TURN            map[string]uint64
	TURNAllocations int
	// SOCKS counts SOCKS5 connections by result ("accepted",
	// "refused_per_ip", "refused", "auth_failed", "not_allowed",
	// "connect", "udp_associate", "bad_request"); SOCKSDatagrams counts UDP
	// ASSOCIATE datagrams ("relayed", "dropped"); SOCKSOpen is how many
	// connections are open now.
	SOCKS          map[string]uint64
	SOCKSDatagrams map[string]uint64
	SOCKSOpen      int
}

// edgesCollector reads EdgeStats at scrape time: the components keep their
// own atomic counters, and nothing on their paths touches Prometheus.
type edgesCollector struct {
	read                           func() EdgeStats
	tcp, turn, socks, socksDgrams  *prometheus.Desc
	tcpOpen, turnAllocs, socksOpen *prometheus.Desc
}

func newEdgesCollector(ns string, read func() EdgeStats) *edgesCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, labels, nil)
	}
	return &edgesCollector{
		read:        read,
		tcp:         d("tcp_connections_total", "Connections on the client port (--tcp-listen) by result: accepted, refused (all open), refused_per_ip (--tcp-max-conns-per-ip), evicted (to make room), junk, tls_failed, timeout, dropped.", "result"),
		tcpOpen:     d("tcp_connections_open", "Open connections on the client port."),
		turn:        d("turn_events_total", "TURN relay events: relayed and refused_peer packets, refused_request (403 to ChannelBind/CreatePermission), auth_failed requests.", "event"),
		turnAllocs:  d("turn_allocations", "TURN allocations now."),
		socks:       d("socks_connections_total", "SOCKS5 connections (--socks-listen) by result.", "result"),
		socksDgrams: d("socks_datagrams_total", "SOCKS5 UDP ASSOCIATE datagrams: relayed, or dropped (not to or from the participant's call media ports).", "result"),
		socksOpen:   d("socks_connections_open", "Open SOCKS5 connections."),
	}
}

func (c *edgesCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tcp, c.tcpOpen, c.turn, c.turnAllocs, c.socks, c.socksDgrams, c.socksOpen} {
		ch <- d
	}
}

func (c *edgesCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.read()
	counters := func(d *prometheus.Desc, m map[string]uint64) {
		for label, v := range m {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label)
		}
	}
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counters(c.tcp, s.TCP)
	gauge(c.tcpOpen, s.TCPOpen)
	counters(c.turn, s.TURN)
	gauge(c.turnAllocs, s.TURNAllocations)
	counters(c.socks, s.SOCKS)
	counters(c.socksDgrams, s.SOCKSDatagrams)
	gauge(c.socksOpen, s.SOCKSOpen)
}

// WatchEdges adds the edge counters, read from read at each scrape. The
// edges start after the metric set, so they are attached afterwards; a
// second call replaces the first.
func (m *Metrics) WatchEdges(read func() EdgeStats) error {
	if read == nil {
		return errors.New("metrics: WatchEdges needs a read function")
	}
	return m.watch(&m.edges, newEdgesCollector(m.cfg.Namespace, read))
}

package metrics

import (
	"github.com/orville/orville/roommgr"
	"github.com/prometheus/client_golang/prometheus"
)

// roomsCollector reads the room manager when scraped, so the gauges are
// never stale and nothing on the call or packet path updates them.
type roomsCollector struct {
	rooms                                   *roommgr.Manager
	calls, participants, tracks, transports *prometheus.Desc
	pairs                                   *prometheus.Desc
}

func newRoomsCollector(ns string, rooms *roommgr.Manager) *roomsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, labels, nil)
	}
	return &roomsCollector{
		rooms:        rooms,
		calls:        d("calls", "Calls in progress."),
		participants: d("participants", "Participants in all calls."),
		tracks:       d("tracks", "Published tracks in all calls, by kind.", "kind"),
		transports:   d("participants_by_transport", "Participants by the path of their media: udp, tcp or turn, or connecting before ICE has selected one.", "transport"),
		pairs:        d("port_pairs", "UDP port pairs of the media range, used or free.", "state"),
	}
}

func (c *roomsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.calls, c.participants, c.tracks, c.transports, c.pairs} {
		ch <- d
	}
}

func (c *roomsCollector) Collect(ch chan<- prometheus.Metric) {
	list := c.rooms.List()
	participants := 0
	tracks := map[string]int{"audio": 0, "video": 0}
	transports := map[string]int{"udp": 0, "tcp": 0, "turn": 0}
	for _, r := range list {
		for _, p := range r.Participants() {
			participants++
			t := p.Transport
			if t == "" {
				t = "connecting"
			}
			transports[t]++
			for _, tr := range p.Tracks {
				tracks[tr.Kind]++
			}
		}
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(c.calls, len(list))
	gauge(c.participants, participants)
	for k, n := range tracks {
		gauge(c.tracks, n, k)
	}
	for t, n := range transports {
		gauge(c.transports, n, t)
	}
	used := c.rooms.PairsInUse()
	gauge(c.pairs, used, "used")
	gauge(c.pairs, c.rooms.Config().MaxCalls-used, "free")
}

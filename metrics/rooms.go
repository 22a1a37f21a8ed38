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
	draining, drainLeft                     *prometheus.Desc
	video                                   videoDescs // video.go
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
		draining:     d("draining", "1 while the server drains (SIGTERM or POST /v1/drain): no new calls, running calls go on."),
		drainLeft:    d("drain_calls_left", "Calls the drain still waits for (0 when not draining)."),
		video:        newVideoDescs(ns),
	}
}

func (c *roomsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.calls, c.participants, c.tracks, c.transports, c.pairs, c.draining, c.drainLeft} {
		ch <- d
	}
	c.video.describe(ch)
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
	draining, left := 0, 0
	if c.rooms.Draining() {
		draining, left = 1, len(list)
	}
	gauge(c.draining, draining)
	gauge(c.drainLeft, left)
	c.video.collect(ch, list)
}

package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The edge counters are read from the components at each scrape, under
// their documented names and labels.
func TestWatchEdges(t *testing.T) {
	m := newTestMetrics(t)
	if err := m.WatchEdges(nil); err == nil {
		t.Fatal("nil read function accepted")
	}
	refused := uint64(0)
	err := m.WatchEdges(func() EdgeStats {
		return EdgeStats{
			TCP:     map[string]uint64{"accepted": 10, "refused_per_ip": refused},
			TCPOpen: 3,
			TURN:    map[string]uint64{"refused_request": 2}, TURNAllocations: 1,
			SOCKS: map[string]uint64{"not_allowed": 4}, SOCKSDatagrams: map[string]uint64{"dropped": 5},
			SOCKSOpen: 6,
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	refused = 7
	want := `
# HELP orville_tcp_connections_open Open connections on the client port.
# TYPE orville_tcp_connections_open gauge
orville_tcp_connections_open 3
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "orville_tcp_connections_open"); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(m.Registry(), "orville_tcp_connections_total", "orville_turn_events_total",
		"orville_turn_allocations", "orville_socks_connections_total", "orville_socks_datagrams_total", "orville_socks_connections_open")
	if err != nil || n != 7 {
		t.Fatalf("%d edge series (%v), want 7", n, err)
	}
	mfs, _ := m.Registry().Gather()
	for _, mf := range mfs {
		if mf.GetName() != "orville_tcp_connections_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			if s.GetLabel()[0].GetValue() == "refused_per_ip" && s.GetCounter().GetValue() != 7 {
				t.Errorf("refused_per_ip = %v: not read at scrape time", s.GetCounter().GetValue())
			}
		}
	}
	m.Close()
	if err := m.WatchEdges(func() EdgeStats { return EdgeStats{} }); err == nil {
		t.Fatal("WatchEdges after Close accepted")
	}
}

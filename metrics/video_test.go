package metrics

import (
	"net"
	"testing"
	"time"

	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/sfu"
	"go.uber.org/zap"
)

// Video allocation adds up over calls: down tracks per layer, and a
// histogram of the subscribers' estimates with cumulative buckets.
func TestAggregateVideo(t *testing.T) {
	a := aggregateVideo([]sfu.VideoSummary{
		{Estimates: []int64{300_000, 2_500_000}, ByLayer: map[string]int{"q": 1, "f": 2}},
		{Estimates: []int64{900_000}, ByLayer: map[string]int{"f": 1, "paused": 1}},
	})
	if a.layers["q"] != 1 || a.layers["f"] != 3 || a.layers["paused"] != 1 {
		t.Errorf("layers %v", a.layers)
	}
	if a.count != 3 || a.sum != 3_700_000 {
		t.Errorf("count %d sum %v", a.count, a.sum)
	}
	for b, want := range map[float64]uint64{250e3: 0, 500e3: 1, 1e6: 2, 2e6: 2, 4e6: 3, 16e6: 3} {
		if a.buckets[b] != want {
			t.Errorf("bucket ≤%v: %d, want %d", b, a.buckets[b], want)
		}
	}
}

// The video metrics are there from the start, with no label naming a
// participant.
func TestVideoMetricsExported(t *testing.T) {
	m := newTestMetrics(t)
	rooms, err := roommgr.New(roommgr.Config{PortStart: 42610, MaxCalls: 1, MaxParticipants: 2,
		ListenIP: net.IPv4(127, 0, 0, 1), EmptyTimeout: time.Minute, LeaveGrace: time.Second,
		MaxCallDuration: time.Hour, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer rooms.Close()
	if err := m.WatchRooms(rooms); err != nil {
		t.Fatal(err)
	}
	if _, err := rooms.Create(roommgr.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "orville_video_downtracks", "orville_video_subscriber_estimate_bits":
			found[mf.GetName()] = len(mf.GetMetric())
			for _, mt := range mf.GetMetric() {
				for _, l := range mt.GetLabel() {
					if l.GetName() != "layer" {
						t.Errorf("%s has a label %q", mf.GetName(), l.GetName())
					}
				}
			}
		}
	}
	if found["orville_video_downtracks"] != len(videoLayers) || found["orville_video_subscriber_estimate_bits"] != 1 {
		t.Errorf("video metrics %v", found)
	}
}

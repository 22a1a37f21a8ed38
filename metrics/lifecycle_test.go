package metrics

import (
	"net"
	"testing"
	"time"

	"github.com/orville/orville/events"
	"github.com/orville/orville/roommgr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

func TestLifecycleCounters(t *testing.T) {
	m := newTestMetrics(t)
	for _, e := range []events.Event{
		{Type: events.CallStarted}, {Type: events.ParticipantJoined},
		{Type: events.ParticipantLeft, Reason: "removed"}, {Type: events.ParticipantLeft, Reason: "left"},
		{Type: events.ParticipantLeft, Reason: "left"}, {Type: events.CallEnded, Reason: "server_shutdown"},
	} {
		m.HandleEvent(e)
	}
	m.EventDropped("webhooks")
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{testutil.ToFloat64(m.lifecycle.events.WithLabelValues("participant.left")), 3, "participant.left events"},
		{testutil.ToFloat64(m.lifecycle.events.WithLabelValues("call.started")), 1, "call.started events"},
		{testutil.ToFloat64(m.lifecycle.participantsLeft.WithLabelValues("left")), 2, "left"},
		{testutil.ToFloat64(m.lifecycle.participantsLeft.WithLabelValues("removed")), 1, "removed"},
		{testutil.ToFloat64(m.lifecycle.callsEnded.WithLabelValues("server_shutdown")), 1, "calls ended by shutdown"},
		{testutil.ToFloat64(m.lifecycle.eventsDropped.WithLabelValues("webhooks")), 1, "events dropped"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

// The drain gauges follow the room manager: 0 until it drains, then 1 and
// the calls still running.
func TestDrainGauges(t *testing.T) {
	m := newTestMetrics(t)
	rooms, err := roommgr.New(roommgr.Config{PortStart: 42600, MaxCalls: 2, MaxParticipants: 2,
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
	gather := func() (draining, left float64) {
		mfs, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			switch mf.GetName() {
			case "orville_draining":
				draining = mf.GetMetric()[0].GetGauge().GetValue()
			case "orville_drain_calls_left":
				left = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return
	}
	if d, l := gather(); d != 0 || l != 0 {
		t.Fatalf("before the drain: draining %v, calls left %v", d, l)
	}
	rooms.Drain()
	if d, l := gather(); d != 1 || l != 1 {
		t.Fatalf("draining: draining %v, calls left %v; want 1, 1", d, l)
	}
}

func TestWebhookCounters(t *testing.T) {
	m := newTestMetrics(t)
	m.WebhookDelivered("hooks.example.com")
	m.WebhookDelivered("hooks.example.com")
	m.WebhookRetried("hooks.example.com")
	m.WebhookDropped("hooks.example.com", "expired")
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{testutil.ToFloat64(m.webhooks.delivered.WithLabelValues("hooks.example.com")), 2, "delivered"},
		{testutil.ToFloat64(m.webhooks.retried.WithLabelValues("hooks.example.com")), 1, "retried"},
		{testutil.ToFloat64(m.webhooks.dropped.WithLabelValues("hooks.example.com", "expired")), 1, "dropped"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

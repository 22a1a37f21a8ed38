package metrics

import (
	"github.com/orville/orville/events"
	"github.com/prometheus/client_golang/prometheus"
)

// lifecycle counts the life-cycle events (package events) Metrics
// subscribes to, and the events subscribers missed.
type lifecycle struct {
	events, callsEnded, participantsLeft, eventsDropped *prometheus.CounterVec
}

func newLifecycle(ns string) lifecycle {
	c := func(name, help string, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, []string{label})
	}
	return lifecycle{
		events:           c("events_total", "Life-cycle events (call.started, participant.joined, …) by type.", "type"),
		callsEnded:       c("calls_ended_total", "Calls ended, by reason (ended_by_api, empty_timeout, last_left, max_duration, server_shutdown).", "reason"),
		participantsLeft: c("participants_left_total", "Participant sessions ended, by reason (left, removed, replaced, transport_failed, or the call's end).", "reason"),
		eventsDropped:    c("events_dropped_total", "Life-cycle events a subscriber (webhooks, metrics, drain, …) missed because its queue was full.", "subscriber"),
	}
}

func (l *lifecycle) collectors() []prometheus.Collector {
	return []prometheus.Collector{l.events, l.callsEnded, l.participantsLeft, l.eventsDropped}
}

// HandleEvent is the metrics subscriber of the events bus. Reasons come
// from the server's own fixed set, never from a client, so the label set
// stays bounded.
func (m *Metrics) HandleEvent(e events.Event) {
	m.lifecycle.events.WithLabelValues(string(e.Type)).Inc()
	switch e.Type {
	case events.CallEnded:
		m.lifecycle.callsEnded.WithLabelValues(e.Reason).Inc()
	case events.ParticipantLeft:
		m.lifecycle.participantsLeft.WithLabelValues(e.Reason).Inc()
	}
}

// EventDropped is events.Config.OnDrop.
func (m *Metrics) EventDropped(subscriber string) {
	m.lifecycle.eventsDropped.WithLabelValues(subscriber).Inc()
}

package metrics

import (
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Kinds indexes per-kind counters by webrtc.RTPCodecType (audio 1, video 2);
// slot 0 collects anything else so that a new kind is counted, not lost.
const numKinds = 3

var kindLabels = [numKinds]string{"other", "audio", "video"}

// Drop reasons the SFU reports (grep PacketDropped in sfu/).
// Each has its own pre-resolved counter; an unknown reason counts as "other".
var dropReasons = [...]string{"malformed", "oversized", "queue_full", "write", "srtp", "srtcp", "unrouted", "unknown_ssrc", "control_queue_full", "unexpected_media", "other"}

// media holds the packet-path counters, each resolved from its vector once
// so that the Observer methods do no label lookup.
type media struct {
	packetsIn, packetsOut [numKinds]prometheus.Counter
	bytesIn, bytesOut     [numKinds]prometheus.Counter
	latency               [numKinds]prometheus.Observer
	dropped               [len(dropReasons)]prometheus.Counter
	nackRetransmitted     prometheus.Counter
	nackMissed            prometheus.Counter
	plis                  prometheus.Counter
	speakerChanges        prometheus.Counter

	vecs []prometheus.Collector
}

func newMedia(ns string, buckets []float64) media {
	var m media
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
		m.vecs = append(m.vecs, v)
		return v
	}
	pin := counter("packets_in_total", "RTP packets received from publishers and accepted for forwarding.", "kind")
	pout := counter("packets_out_total", "RTP packets forwarded to subscribers (one per subscriber).", "kind")
	bin := counter("bytes_in_total", "RTP bytes (header and payload, before SRTP) received from publishers.", "kind")
	bout := counter("bytes_out_total", "RTP bytes (as cached, before the header rewrite and SRTP) forwarded to subscribers.", "kind")
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Name: "forwarding_latency_seconds", Buckets: buckets,
		Help: "Time from the socket read of a publisher's packet to the sendmmsg of its batch toward subscribers (one observation per batch).",
	}, []string{"kind"})
	m.vecs = append(m.vecs, lat)
	for k := range numKinds {
		l := kindLabels[k]
		m.packetsIn[k], m.packetsOut[k] = pin.WithLabelValues(l), pout.WithLabelValues(l)
		m.bytesIn[k], m.bytesOut[k] = bin.WithLabelValues(l), bout.WithLabelValues(l)
		m.latency[k] = lat.WithLabelValues(l)
	}
	drop := counter("packets_dropped_total", "Packets not forwarded, by reason.", "reason")
	for i, r := range dropReasons {
		m.dropped[i] = drop.WithLabelValues(r)
	}
	nack := counter("nacks_total", "NACKed packets (RFC 4585 §6.2.1) from subscribers: answered from the cache or not.", "result")
	m.nackRetransmitted, m.nackMissed = nack.WithLabelValues("retransmitted"), nack.WithLabelValues("missed")
	m.plis = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "plis_total",
		Help: "Keyframe requests (PLI, RFC 4585 §6.3.1) relayed to publishers after rate limiting."})
	m.vecs = append(m.vecs, m.plis)
	m.speakerChanges = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "dominant_speaker_changes_total",
		Help: "Changes of a call's dominant speaker (the active-speaker detector, with hysteresis)."})
	m.vecs = append(m.vecs, m.speakerChanges)
	return m
}

func (m *media) collectors() []prometheus.Collector { return m.vecs }

func kindIndex(k webrtc.RTPCodecType) int {
	if k > 0 && int(k) < numKinds {
		return int(k)
	}
	return 0
}

// PacketsIn implements sfu.Observer (once per batch and kind).
func (m *media) PacketsIn(kind webrtc.RTPCodecType, packets, bytes int) {
	k := kindIndex(kind)
	m.packetsIn[k].Add(float64(packets))
	m.bytesIn[k].Add(float64(bytes))
}

// PacketsOut implements sfu.Observer: a batch of forwarded packets and how
// long it took from the socket read to the send.
func (m *media) PacketsOut(kind webrtc.RTPCodecType, packets, bytes int, latency time.Duration) {
	k := kindIndex(kind)
	m.packetsOut[k].Add(float64(packets))
	m.bytesOut[k].Add(float64(bytes))
	m.latency[k].Observe(latency.Seconds())
}

// PacketDropped implements sfu.Observer.
func (m *media) PacketDropped(reason string) {
	i := len(dropReasons) - 1
	for j, r := range dropReasons[:len(dropReasons)-1] {
		if r == reason {
			i = j
			break
		}
	}
	m.dropped[i].Inc()
}

// NACK implements sfu.Observer.
func (m *media) NACK(retransmitted bool) {
	if retransmitted {
		m.nackRetransmitted.Inc()
	} else {
		m.nackMissed.Inc()
	}
}

// PLI implements sfu.Observer.
func (m *media) PLI() { m.plis.Inc() }

// DominantSpeakerChanged implements sfu.Observer.
func (m *media) DominantSpeakerChanged() { m.speakerChanges.Inc() }

package loadtest

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is what a run measured. Every field is always present in the JSON;
// Server is null without a server pid and Forwarded.ServerCounter is null
// when /metrics could not be read.
type Report struct {
	Scenario  Scenario  `json:"scenario"`
	StartedAt time.Time `json:"startedAt"`
	// JoinPhaseSeconds is from the first start-call request until every
	// participant had joined (or failed); MediaSeconds is the measured
	// window after that.
	JoinPhaseSeconds float64 `json:"joinPhaseSeconds"`
	MediaSeconds     float64 `json:"mediaSeconds"`
	Joined           int     `json:"participantsJoined"`
	JoinFailures     int     `json:"joinFailures"`
	// JoinErrors are the first few join failures, "participant: error".
	JoinErrors []string `json:"joinErrors"`
	// JoinTimeMs is per participant, from its call's start-call API request
	// to the first media packet it received.
	JoinTimeMs Dist `json:"joinTimeMs"`
	// JoinFromDialMs is per participant, from its own WebSocket dial to its
	// first media packet: the join itself, without the time it waited for
	// a join slot (--join-concurrency).
	JoinFromDialMs Dist `json:"joinFromDialMs"`
	// JoinStagesMs break the join down, from each client's WebSocket dial.
	JoinStagesMs JoinStages `json:"joinStagesMs"`
	Loss         LossReport `json:"loss"`
	// ByKind splits received packets and loss by kind (after NACK
	// recovery), so video loss can be read apart from audio.
	ByKind map[string]KindReport `json:"byKind"`
	// AudioStreams is how many publishers' audio each subscriber received
	// during the media window (top-N audio keeps it small in large calls).
	AudioStreams StreamCount     `json:"audioStreamsPerSubscriber"`
	Jitter       JitterReport    `json:"jitterMs"`
	LatencyMs    LatencyReport   `json:"latencyMs"`
	Forwarded    ForwardedReport `json:"packetsForwarded"`
	// Video is what each subscriber received of video during the media
	// window (video.go).
	Video VideoReport `json:"video"`
	// ServerLatencyMs is the server's own forwarding latency (ingress read
	// to egress write) over the media window, from its /metrics histogram;
	// null when /metrics could not be read.
	ServerLatencyMs *ServerLatency `json:"serverForwardingLatencyMs"`
	Server          *ServerReport  `json:"server"`
	// CallsPerNode counts the started calls by the node that owns them (the
	// start-call answer's pid): in a cluster (docs/cluster.md) the API node
	// places calls on every node; one node alone has one entry.
	CallsPerNode map[string]int `json:"callsPerNode"`
	// Transports counts participants by the path their subscribe transport
	// took: udp, tcp (ICE-TCP), turn-tls, turn-tcp.
	Transports map[string]int `json:"transports"`
	// DecryptFailures counts received frames that failed to decrypt (--e2ee).
	DecryptFailures uint64 `json:"decryptFailures"`
	// Subscribers has one row per participant that received media.
	Subscribers []SubscriberReport `json:"subscribers"`
	// Timeline has one point per second of the run.
	Timeline []Point `json:"timeline"`
}

// Scenario echoes the run's settings.
type Scenario struct {
	Calls           int     `json:"calls"`
	Participants    int     `json:"participants"`
	AudioPublishers int     `json:"audioPublishers"`
	VideoPublishers int     `json:"videoPublishers"`
	DurationSeconds float64 `json:"durationSeconds"`
	VideoBitrate    int     `json:"videoBitrate"`
	Simulcast       bool    `json:"simulcast"`
	Tiles           int     `json:"tiles"`
	TileHeight      int     `json:"tileHeight"`
	E2EE            bool    `json:"e2ee"`
	ForceTCP        bool    `json:"forceTcp"`
}

// Dist summarizes a distribution (nearest-rank percentiles).
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// JoinStages: signaling `joined` received, publish transport connected
// (ICE + DTLS), subscribe transport connected (after the server's offer).
type JoinStages struct {
	Joined             Dist `json:"joined"`
	PublishConnected   Dist `json:"publishConnected"`
	SubscribeConnected Dist `json:"subscribeConnected"`
}

// ServerLatency are quantiles estimated from the server's histogram
// (linear inside a bucket, as Prometheus' histogram_quantile).
type ServerLatency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

// LossReport: Total is over every received track; Subscribers is the
// distribution of each subscriber's loss in percent (RFC 3550 A.3:
// expected from the highest sequence number, minus received).
// KindReport is one kind's packets received by the clients, over the run.
type KindReport struct {
	Packets         uint64  `json:"packets"`
	PacketsLost     uint64  `json:"packetsLost"`
	PacketsExpected uint64  `json:"packetsExpected"`
	LossPercent     float64 `json:"lossPercent"`
	// ForwardedPerSecond is the server's counter for the kind over the
	// media window (audio only; 0 when /metrics was not readable).
	ForwardedPerSecond float64 `json:"forwardedPerSecond,omitempty"`
}

// StreamCount summarizes a per-subscriber count.
type StreamCount struct {
	Mean float64 `json:"mean"`
	Max  int     `json:"max"`
}

type LossReport struct {
	TotalPercent    float64 `json:"totalPercent"`
	PacketsLost     uint64  `json:"packetsLost"`
	PacketsExpected uint64  `json:"packetsExpected"`
	Subscribers     Dist    `json:"perSubscriberPercent"`
	Worst           string  `json:"worstSubscriber"`
}

// JitterReport is each subscriber's highest RFC 3550 §6.4.1 interarrival
// jitter among its received tracks of a kind, in milliseconds.
type JitterReport struct {
	Audio   Dist    `json:"audio"`
	Video   Dist    `json:"video"`
	Worst   string  `json:"worstSubscriber"`
	WorstMs float64 `json:"worstMs"`
}

// LatencyReport is end-to-end latency: the send time the publishing client
// writes into each frame to the arrival of the frame's last packet at a
// subscriber (same host, same clock). Percentiles come from the latest
// frame of every received track at each sample; Max and Mean cover every
// frame.
type LatencyReport struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
	Mean    float64 `json:"mean"`
}

// ForwardedReport counts forwarded packets: what the clients received, and
// the server's own counter (its /metrics) over the same run.
type ForwardedReport struct {
	ReceivedByClients uint64  `json:"receivedByClients"`
	PerSecond         float64 `json:"receivedPerSecond"`
	// MediaWindow is what was forwarded during the media window (server
	// counter when readable, else the clients' count): the divisor of the
	// server's CPU per packet.
	MediaWindow   uint64  `json:"mediaWindow"`
	ServerCounter *uint64 `json:"serverCounter"`
	ServerError   string  `json:"serverCounterError"`
}

// ServerReport is the server process as /proc saw it.
type ServerReport struct {
	PID int `json:"pid"`
	// CPUSeconds is user+system time over the whole run; MediaCPUSeconds
	// over the media window only.
	CPUSeconds      float64 `json:"cpuSeconds"`
	MediaCPUSeconds float64 `json:"mediaCpuSeconds"`
	// MediaSystemSeconds is the kernel's share of MediaCPUSeconds: socket
	// calls, and on loopback the receivers' packet delivery too.
	MediaSystemSeconds float64 `json:"mediaSystemCpuSeconds"`
	// CPUPercent is MediaCPUSeconds per media second, in % of one core.
	CPUPercent float64 `json:"cpuPercent"`
	// CPUMicrosPerPacket is MediaCPUSeconds / Forwarded.MediaWindow.
	CPUMicrosPerPacket float64 `json:"cpuMicrosPerPacket"`
	// PeakRSSBytes is VmHWM at the end (the process's lifetime peak);
	// MaxSampledRSSBytes the highest VmRSS seen during the run.
	PeakRSSBytes       uint64 `json:"peakRssBytes"`
	MaxSampledRSSBytes uint64 `json:"maxSampledRssBytes"`
	StartRSSBytes      uint64 `json:"startRssBytes"`
}

// SubscriberReport is one participant's reception.
type SubscriberReport struct {
	Call          string  `json:"call"`
	ID            string  `json:"id"`
	JoinMs        float64 `json:"joinMs"`
	Tracks        int     `json:"tracks"`
	Packets       uint64  `json:"packets"`
	LossPercent   float64 `json:"lossPercent"`
	JitterAudioMs float64 `json:"jitterAudioMs"`
	JitterVideoMs float64 `json:"jitterVideoMs"`
	LatencyMeanMs float64 `json:"latencyMeanMs"`
}

// Point is one second of the run.
type Point struct {
	Seconds     float64 `json:"t"`
	Joined      int     `json:"joined"`
	RxMbps      float64 `json:"rxMbps"`
	LossPercent float64 `json:"lossPercent"`
	// ServerCPUPercent is in % of one core; -1 without a server pid.
	ServerCPUPercent float64 `json:"serverCpuPercent"`
	ServerRSSBytes   uint64  `json:"serverRssBytes"`
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func distOf(v []float64) Dist {
	s := slices.Clone(v)
	slices.Sort(s)
	d := Dist{N: len(s)}
	if len(s) > 0 {
		d.P50, d.P95, d.P99, d.Max = percentile(s, .50), percentile(s, .95), percentile(s, .99), s[len(s)-1]
	}
	return d
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteText prints the report for a person.
func (r *Report) WriteText(w io.Writer) {
	s := r.Scenario
	fmt.Fprintf(w, "orville loadtest: %d call(s) × %d participants (%d audio, %d video publishers%s%s), %.0fs of media\n",
		s.Calls, s.Participants, s.AudioPublishers, s.VideoPublishers, map[bool]string{true: ", E2EE"}[s.E2EE],
		map[bool]string{true: ", TCP forced"}[s.ForceTCP], s.DurationSeconds)
	fmt.Fprintf(w, "participants  %d joined, %d failed (join phase %.1fs); transports %v; %d frames failed to decrypt\n",
		r.Joined, r.JoinFailures, r.JoinPhaseSeconds, r.Transports, r.DecryptFailures)
	for _, e := range r.JoinErrors {
		fmt.Fprintf(w, "join failed   %s\n", e)
	}
	fmt.Fprintf(w, "calls/node    %s\n", perNodeText(r.CallsPerNode))
	j := r.JoinTimeMs
	fmt.Fprintf(w, "join time     p50 %.0f ms  p95 %.0f ms  p99 %.0f ms  max %.0f ms  (start-call request → first media, n=%d)\n",
		j.P50, j.P95, j.P99, j.Max, j.N)
	jd := r.JoinFromDialMs
	fmt.Fprintf(w, "join (own)    p50 %.0f ms  p95 %.0f ms  max %.0f ms  (the client's dial → first media)\n", jd.P50, jd.P95, jd.Max)
	js := r.JoinStagesMs
	fmt.Fprintf(w, "join stages   p50 from the dial: joined %.0f ms, publish connected %.0f ms, subscribe connected %.0f ms\n",
		js.Joined.P50, js.PublishConnected.P50, js.SubscribeConnected.P50)
	for _, kind := range []string{"audio", "video"} {
		if k, ok := r.ByKind[kind]; ok {
			fmt.Fprintf(w, "%-13s %d packets, %.3f%% lost (%d of %d)", kind, k.Packets, k.LossPercent, k.PacketsLost, k.PacketsExpected)
			if k.ForwardedPerSecond > 0 {
				fmt.Fprintf(w, "; server forwarded %.0f/s", k.ForwardedPerSecond)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "audio streams per subscriber: mean %.1f, max %d\n", r.AudioStreams.Mean, r.AudioStreams.Max)
	r.Video.writeText(w)
	l := r.Loss
	fmt.Fprintf(w, "loss          %.3f%% (%d of %d packets); per subscriber p50 %.3f%%  p95 %.3f%%  worst %.3f%% (%s)\n",
		l.TotalPercent, l.PacketsLost, l.PacketsExpected, l.Subscribers.P50, l.Subscribers.P95, l.Subscribers.Max, l.Worst)
	ja, jv := r.Jitter.Audio, r.Jitter.Video
	fmt.Fprintf(w, "jitter        audio p50 %.2f ms  p95 %.2f ms  max %.2f ms; video p50 %.2f ms  p95 %.2f ms  max %.2f ms; worst %s\n",
		ja.P50, ja.P95, ja.Max, jv.P50, jv.P95, jv.Max, r.Jitter.Worst)
	lt := r.LatencyMs
	fmt.Fprintf(w, "latency       p50 %.2f ms  p99 %.2f ms  max %.2f ms  mean %.2f ms  (end to end, %d samples)\n",
		lt.P50, lt.P99, lt.Max, lt.Mean, lt.Samples)
	f := r.Forwarded
	server := "server counter unavailable: " + f.ServerError
	if f.ServerCounter != nil {
		server = fmt.Sprintf("server counter %d", *f.ServerCounter)
	}
	fmt.Fprintf(w, "forwarded     %d packets received by clients (%.0f/s); %s; %d in the media window\n",
		f.ReceivedByClients, f.PerSecond, server, f.MediaWindow)
	if sl := r.ServerLatencyMs; sl != nil {
		fmt.Fprintf(w, "server fwd    p50 %.3f ms  p99 %.3f ms  (ingress read → egress write, from the server's histogram)\n", sl.P50, sl.P99)
	} else {
		fmt.Fprintln(w, "server fwd    unavailable (/metrics not readable)")
	}
	if sv := r.Server; sv != nil {
		fmt.Fprintf(w, "server        pid %d: CPU %.2f s (media window %.2f s = %.1f%% of a core, %.0f%% in the kernel), %.2f µs per forwarded packet; peak RSS %.1f MB (VmHWM), max sampled %.1f MB, at start %.1f MB\n",
			sv.PID, sv.CPUSeconds, sv.MediaCPUSeconds, sv.CPUPercent, 100*sv.MediaSystemSeconds/max(sv.MediaCPUSeconds, 1e-9), sv.CPUMicrosPerPacket,
			mb(sv.PeakRSSBytes), mb(sv.MaxSampledRSSBytes), mb(sv.StartRSSBytes))
	} else {
		fmt.Fprintln(w, "server        not measured (--server-pid with the server on this host)")
	}
}

// perNodeText is "aa01 10, bb02 9, cc03 11 (3 nodes)", by node id.
func perNodeText(m map[string]int) string {
	ids := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s %d", id, m[id]))
	}
	return fmt.Sprintf("%s (%d node%s, by start-call pid)", strings.Join(parts, ", "), len(ids),
		map[bool]string{true: "s"}[len(ids) != 1])
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// sortSubscribers orders rows by call, then id.
func sortSubscribers(rows []SubscriberReport) {
	slices.SortFunc(rows, func(a, b SubscriberReport) int {
		return cmp.Or(cmp.Compare(a.Call, b.Call), cmp.Compare(a.ID, b.ID))
	})
}

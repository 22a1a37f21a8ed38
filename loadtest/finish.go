package loadtest

import (
	"context"
	"maps"
	"strings"
	"time"

	"github.com/orville/orville/client"
)

// finish closes the media window and fills in the report from the clients'
// final statistics, the server's counter and its /proc entries.
func (s *sampler) finish(ctx context.Context, rep *Report) {
	end := s.sample()
	serverEnd, serverErr := scrapeServer(ctx, s.r.hc, s.r.cfg.APIURL, s.r.cfg.APISecret)
	var procEnd procSample
	var procErr error
	if pid := s.r.cfg.ServerPID; pid != 0 {
		procEnd, procErr = readProc(s.r.cfg.ProcRoot, pid)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	media := end.at.Sub(s.mediaStart.at)
	rep.MediaSeconds = media.Seconds()
	rep.Timeline = s.points
	if rep.Timeline == nil {
		rep.Timeline = []Point{}
	}
	s.subscribers(rep)
	s.byKind(rep)
	s.videoReport(rep, media)
	if s.mediaServer != nil && serverErr == nil && media > 0 {
		if a, ok := rep.ByKind[client.KindAudio]; ok {
			a.ForwardedPerSecond = float64(serverEnd.forwardedAudio-s.mediaServer.forwardedAudio) / media.Seconds()
			rep.ByKind[client.KindAudio] = a
		}
	}

	lat := distOf(s.latency)
	rep.LatencyMs.Samples, rep.LatencyMs.P50, rep.LatencyMs.P99 = lat.N, lat.P50, lat.P99

	f := &rep.Forwarded
	f.ReceivedByClients = end.packets
	if media > 0 {
		f.PerSecond = float64(end.packets-s.mediaStart.packets) / media.Seconds()
	}
	f.MediaWindow = end.packets - s.mediaStart.packets
	switch {
	case s.serverErr != nil:
		f.ServerError = s.serverErr.Error()
	case serverErr != nil:
		f.ServerError = serverErr.Error()
	default:
		n := serverEnd.forwarded - s.serverStart.forwarded
		f.ServerCounter = &n
		if s.mediaServer != nil {
			f.MediaWindow = serverEnd.forwarded - s.mediaServer.forwarded
			p50, ok50 := histogramQuantile(.50, s.mediaServer.buckets, serverEnd.buckets)
			p99, ok99 := histogramQuantile(.99, s.mediaServer.buckets, serverEnd.buckets)
			if ok50 && ok99 {
				rep.ServerLatencyMs = &ServerLatency{P50: p50 * 1e3, P99: p99 * 1e3}
			}
		}
	}

	if pid := s.r.cfg.ServerPID; pid != 0 && procErr == nil && s.procErr == nil {
		sv := &ServerReport{PID: pid,
			CPUSeconds:         (procEnd.cpu - s.startProc.cpu).Seconds(),
			MediaCPUSeconds:    (procEnd.cpu - s.mediaProc.cpu).Seconds(),
			MediaSystemSeconds: (procEnd.sys - s.mediaProc.sys).Seconds(),
			PeakRSSBytes:       procEnd.peakRSS, StartRSSBytes: s.startProc.rss,
			MaxSampledRSSBytes: max(s.maxRSS, procEnd.rss),
		}
		if w := procEnd.at.Sub(s.mediaProc.at); w > 0 {
			sv.CPUPercent = 100 * sv.MediaCPUSeconds / w.Seconds()
		}
		if f.MediaWindow > 0 {
			sv.CPUMicrosPerPacket = sv.MediaCPUSeconds * 1e6 / float64(f.MediaWindow)
		}
		rep.Server = sv
	}
}

// subscribers computes the per-subscriber rows and their summaries: join
// time, loss, jitter and the latency mean and maximum.
func (s *sampler) subscribers(rep *Report) {
	var joins, dialJoins, losses, jitA, jitV, stJoined, stPub, stSub []float64
	var latSum time.Duration
	var latFrames uint64
	var tot totals
	worstLoss, worstJit := -1.0, -1.0
	rep.Subscribers = []SubscriberReport{}
	s.r.mu.Lock()
	rep.CallsPerNode = maps.Clone(s.r.perNode)
	s.r.mu.Unlock()
	if rep.CallsPerNode == nil {
		rep.CallsPerNode = map[string]int{}
	}
	rep.Transports = map[string]int{}
	for _, p := range s.r.clients() {
		st, ok := p.stats()
		if !ok {
			continue
		}
		if st.Subscribe.Path != "" {
			rep.Transports[st.Subscribe.Path]++
		}
		for _, rt := range st.Received {
			rep.DecryptFailures += rt.FramesDecryptFailed
		}
		if len(st.Received) == 0 {
			continue
		}
		row := SubscriberReport{Call: p.call, ID: p.id, Tracks: len(st.Received)}
		var mine totals
		var first time.Time
		var myLat time.Duration
		var myMarked uint64
		for _, rt := range st.Received {
			addTrack(&mine, rt)
			if !rt.FirstPacketAt.IsZero() && (first.IsZero() || rt.FirstPacketAt.Before(first)) {
				first = rt.FirstPacketAt
			}
			j := ms(rt.Jitter)
			if rt.Kind == client.KindAudio {
				row.JitterAudioMs = max(row.JitterAudioMs, j)
			} else {
				row.JitterVideoMs = max(row.JitterVideoMs, j)
			}
			myLat += rt.LatencyMean * time.Duration(rt.MarkedFrames)
			myMarked += rt.MarkedFrames
			rep.LatencyMs.Max = max(rep.LatencyMs.Max, ms(rt.LatencyMax))
		}
		if first.IsZero() {
			continue // tracks announced, nothing arrived: counted as no join
		}
		row.JoinMs = ms(first.Sub(p.callStart))
		dialJoins = append(dialJoins, ms(first.Sub(p.dialStart)))
		stJoined = append(stJoined, ms(st.JoinDuration))
		if st.Publish.ConnectedAfter > 0 {
			stPub = append(stPub, ms(st.Publish.ConnectedAfter))
		}
		stSub = append(stSub, ms(st.Subscribe.ConnectedAfter))
		row.Packets = mine.packets
		if mine.expected > 0 {
			row.LossPercent = 100 * float64(mine.lost) / float64(mine.expected)
		}
		if myMarked > 0 {
			row.LatencyMeanMs = ms(myLat / time.Duration(myMarked))
		}
		latSum += myLat
		latFrames += myMarked
		tot.lost += mine.lost
		tot.expected += mine.expected
		joins = append(joins, row.JoinMs)
		losses = append(losses, row.LossPercent)
		if hasKind(st.Received, client.KindAudio) {
			jitA = append(jitA, row.JitterAudioMs)
		}
		if hasKind(st.Received, client.KindVideo) {
			jitV = append(jitV, row.JitterVideoMs)
		}
		if row.LossPercent > worstLoss {
			worstLoss, rep.Loss.Worst = row.LossPercent, row.ID
		}
		if j := max(row.JitterAudioMs, row.JitterVideoMs); j > worstJit {
			worstJit, rep.Jitter.Worst, rep.Jitter.WorstMs = j, row.ID, j
		}
		rep.Subscribers = append(rep.Subscribers, row)
	}
	sortSubscribers(rep.Subscribers)
	rep.JoinTimeMs = distOf(joins)
	rep.JoinFromDialMs = distOf(dialJoins)
	rep.JoinStagesMs = JoinStages{Joined: distOf(stJoined), PublishConnected: distOf(stPub), SubscribeConnected: distOf(stSub)}
	rep.Loss.Subscribers = distOf(losses)
	rep.Loss.PacketsLost, rep.Loss.PacketsExpected = tot.lost, tot.expected
	if tot.expected > 0 {
		rep.Loss.TotalPercent = 100 * float64(tot.lost) / float64(tot.expected)
	}
	rep.Jitter.Audio, rep.Jitter.Video = distOf(jitA), distOf(jitV)
	if latFrames > 0 {
		rep.LatencyMs.Mean = ms(latSum / time.Duration(latFrames))
	}
}

func hasKind(rs []client.ReceivedTrackStats, kind string) bool {
	for _, r := range rs {
		if r.Kind == kind {
			return true
		}
	}
	return false
}

// byKind fills the per-kind totals and the audio streams per subscriber
// (s.mu held).
func (s *sampler) byKind(rep *Report) {
	rep.ByKind = map[string]KindReport{}
	end := audioBySender(s.r.clients())
	perSub := map[string]int{}
	for key, n := range end {
		sub, _, _ := strings.Cut(key, "|")
		if _, ok := perSub[sub]; !ok {
			perSub[sub] = 0
		}
		if n > s.mediaAudio[key] {
			perSub[sub]++
		}
	}
	total := 0
	for _, n := range perSub {
		total += n
		rep.AudioStreams.Max = max(rep.AudioStreams.Max, n)
	}
	if len(perSub) > 0 {
		rep.AudioStreams.Mean = float64(total) / float64(len(perSub))
	}
	for _, p := range s.r.clients() {
		st, ok := p.stats()
		if !ok {
			continue
		}
		for _, rt := range st.Received {
			k := rep.ByKind[rt.Kind]
			lost := uint64(max(rt.PacketsLost, 0))
			k.Packets += rt.Packets
			k.PacketsLost += lost
			k.PacketsExpected += rt.Packets + lost
			rep.ByKind[rt.Kind] = k
		}
	}
	for kind, k := range rep.ByKind {
		if k.PacketsExpected > 0 {
			k.LossPercent = 100 * float64(k.PacketsLost) / float64(k.PacketsExpected)
		}
		rep.ByKind[kind] = k
	}
}

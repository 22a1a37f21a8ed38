package loadtest

import (
	"context"
	"sync"
	"time"

	"github.com/orville/orville/client"
)

// totals adds up every received track of every client.
type totals struct {
	at                             time.Time
	packets, bytes, lost, expected uint64
}

// sampler reads the clients' statistics, the server's /proc entries and its
// /metrics counter while the run goes on.
type sampler struct {
	r     *runner
	start time.Time

	mu          sync.Mutex
	latency     []float64         // ms, one per new frame seen at a sample
	lastMarked  map[string]uint64 // per received track: frames with a marker seen so far
	points      []Point
	lastPoint   totals
	lastProc    procSample
	maxRSS      uint64
	procErr     error
	serverStart *serverSample
	serverErr   error
	mediaStart  totals
	mediaAudio  map[string]uint64 // "subscriber|publisher" → audio packets at the media start
	mediaVideo  map[string]uint64 // "subscriber|publisher" → video bytes at the media start (video.go)
	mediaProc   procSample
	mediaServer *serverSample
	startProc   procSample
}

func newSampler(r *runner, start time.Time) *sampler {
	return &sampler{r: r, start: start, lastMarked: map[string]uint64{}, lastPoint: totals{at: start}}
}

// begin takes the baseline: the server counter and process before any call.
func (s *sampler) begin(ctx context.Context) error {
	if sv, err := scrapeServer(ctx, s.r.hc, s.r.cfg.APIURL, s.r.cfg.APISecret); err == nil {
		s.serverStart = &sv
	} else {
		s.serverErr = err
	}
	if pid := s.r.cfg.ServerPID; pid != 0 {
		p, err := readProc(s.r.cfg.ProcRoot, pid)
		if err != nil {
			return err // a wrong --server-pid is a usage error, found before any call starts
		}
		s.startProc, s.lastProc, s.maxRSS = p, p, p.rss
	}
	return nil
}

// loop samples until the returned stop function is called.
func (s *sampler) loop(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.r.cfg.SampleInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return func() { cancel(); <-done }
}

// sample reads every client once; latency samples come from tracks whose
// marked-frame count moved since the previous sample.
func (s *sampler) sample() totals {
	parts := s.r.clients()
	tot := totals{at: time.Now()}
	var lat []float64
	s.mu.Lock()
	for _, p := range parts {
		st, ok := p.stats()
		if !ok {
			continue
		}
		for _, rt := range st.Received {
			addTrack(&tot, rt)
			key := p.id + "|" + rt.ParticipantID + "|" + rt.TrackID
			if rt.MarkedFrames > s.lastMarked[key] {
				s.lastMarked[key] = rt.MarkedFrames
				lat = append(lat, ms(rt.LatencyLast))
			}
		}
	}
	s.latency = append(s.latency, lat...)
	s.mu.Unlock()
	s.maybePoint(tot, len(parts))
	return tot
}

func addTrack(t *totals, rt client.ReceivedTrackStats) {
	lost := uint64(max(rt.PacketsLost, 0))
	t.packets += rt.Packets
	t.bytes += rt.Bytes
	t.lost += lost
	t.expected += rt.Packets + lost
}

// maybePoint adds a timeline point once a second has passed since the last.
func (s *sampler) maybePoint(tot totals, joined int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dt := tot.at.Sub(s.lastPoint.at)
	if dt < time.Second-s.r.cfg.SampleInterval/2 {
		return
	}
	p := Point{Seconds: tot.at.Sub(s.start).Seconds(), Joined: joined, ServerCPUPercent: -1}
	p.RxMbps = float64(tot.bytes-s.lastPoint.bytes) * 8 / dt.Seconds() / 1e6
	if de := tot.expected - s.lastPoint.expected; de > 0 && tot.lost >= s.lastPoint.lost {
		p.LossPercent = 100 * float64(tot.lost-s.lastPoint.lost) / float64(de)
	}
	if pid := s.r.cfg.ServerPID; pid != 0 && s.procErr == nil {
		pr, err := readProc(s.r.cfg.ProcRoot, pid)
		if err != nil {
			s.procErr = err
		} else {
			p.ServerCPUPercent = 100 * (pr.cpu - s.lastProc.cpu).Seconds() / pr.at.Sub(s.lastProc.at).Seconds()
			p.ServerRSSBytes = pr.rss
			s.maxRSS = max(s.maxRSS, pr.rss)
			s.lastProc = pr
		}
	}
	s.points = append(s.points, p)
	s.lastPoint = tot
	s.r.prog.update(p)
}

// markMediaStart opens the measured window once everybody has joined.
func (s *sampler) markMediaStart(ctx context.Context) {
	tot := s.sample()
	audio := audioBySender(s.r.clients())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mediaStart, s.mediaAudio = tot, audio
	s.mediaVideo = videoBySender(s.r.clients())
	if sv, err := scrapeServer(ctx, s.r.hc, s.r.cfg.APIURL, s.r.cfg.APISecret); err == nil {
		s.mediaServer = &sv
	}
	if pid := s.r.cfg.ServerPID; pid != 0 {
		if p, err := readProc(s.r.cfg.ProcRoot, pid); err == nil {
			s.mediaProc = p
		} else {
			s.procErr = err
		}
	}
}

// audioBySender counts, per subscriber and publisher, the audio packets
// received so far.
func audioBySender(parts []*participant) map[string]uint64 {
	return perSender(parts, client.KindAudio, func(rt client.ReceivedTrackStats) uint64 { return rt.Packets })
}

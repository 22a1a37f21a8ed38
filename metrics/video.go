package metrics

import (
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/sfu"
	"github.com/prometheus/client_golang/prometheus"
)

// Video allocation, read from the calls at scrape time and aggregated over
// all of them: no label names a participant, whatever the call sizes.

// estimateBuckets are the histogram bounds of subscriber estimates (bits/s).
var estimateBuckets = []float64{100e3, 250e3, 500e3, 1e6, 2e6, 4e6, 8e6, 16e6}

// videoLayers are the label values of video_downtracks (sfu.VideoSummary).
var videoLayers = []string{"q", "h", "f", "single", "paused", "starting"}

type videoDescs struct {
	downtracks, estimates *prometheus.Desc
}

func newVideoDescs(ns string) videoDescs {
	return videoDescs{
		downtracks: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "video_downtracks"),
			"Videos forwarded to subscribers, by the simulcast layer forwarded (q, h, f: the first, second and third of a track's layers; single: a track without simulcast), or paused (bandwidth or not selected), or starting (waiting for a key frame).",
			[]string{"layer"}, nil),
		estimates: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "video_subscriber_estimate_bits"),
			"Send-side bandwidth estimates toward the participants (bits per second), from their transport-wide feedback.",
			nil, nil),
	}
}

func (v videoDescs) describe(ch chan<- *prometheus.Desc) {
	ch <- v.downtracks
	ch <- v.estimates
}

func (v videoDescs) collect(ch chan<- prometheus.Metric, rooms []*roommgr.Room) {
	sums := make([]sfu.VideoSummary, 0, len(rooms))
	for _, r := range rooms {
		sums = append(sums, r.VideoSummary())
	}
	a := aggregateVideo(sums)
	for _, l := range videoLayers {
		ch <- prometheus.MustNewConstMetric(v.downtracks, prometheus.GaugeValue, float64(a.layers[l]), l)
	}
	ch <- prometheus.MustNewConstHistogram(v.estimates, a.count, a.sum, a.buckets)
}

// videoTotals is every call's video allocation added up.
type videoTotals struct {
	layers  map[string]int
	count   uint64
	sum     float64
	buckets map[float64]uint64 // cumulative, as Prometheus wants them
}

func aggregateVideo(sums []sfu.VideoSummary) videoTotals {
	a := videoTotals{layers: map[string]int{}, buckets: make(map[float64]uint64, len(estimateBuckets))}
	for _, b := range estimateBuckets {
		a.buckets[b] = 0
	}
	for _, s := range sums {
		for l, n := range s.ByLayer {
			a.layers[l] += n
		}
		for _, e := range s.Estimates {
			a.count++
			a.sum += float64(e)
			for _, b := range estimateBuckets {
				if float64(e) <= b {
					a.buckets[b]++
				}
			}
		}
	}
	return a
}

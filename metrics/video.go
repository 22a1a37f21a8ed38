package metrics

import (
	"github.com/orville/orville/roommgr"
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
	layers := map[string]int{}
	buckets := make(map[float64]uint64, len(estimateBuckets))
	var count uint64
	var sum float64
	for _, r := range rooms {
		s := r.VideoSummary()
		for l, n := range s.ByLayer {
			layers[l] += n
		}
		for _, e := range s.Estimates {
			count++
			sum += float64(e)
			for _, b := range estimateBuckets {
				if float64(e) <= b {
					buckets[b]++
				}
			}
		}
	}
	for _, l := range videoLayers {
		ch <- prometheus.MustNewConstMetric(v.downtracks, prometheus.GaugeValue, float64(layers[l]), l)
	}
	ch <- prometheus.MustNewConstHistogram(v.estimates, count, sum, buckets)
}

package loadtest

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/orville/orville/client"
)

// Video in a load test: simulcast publishers (--simulcast), participants
// that show a few tiles (--tiles, --tile-height: a `subscription`), and
// what each subscriber received of video during the media window.

// VideoReport is each subscriber's received video over the media window.
type VideoReport struct {
	// KbpsPerSubscriber is the video payload bitrate each subscriber
	// received, in kbit/s.
	KbpsPerSubscriber Dist `json:"kbpsPerSubscriber"`
	// Streams is how many publishers' video each subscriber received.
	Streams StreamCount `json:"streamsPerSubscriber"`
}

func (v VideoReport) writeText(w io.Writer) {
	if v.KbpsPerSubscriber.N == 0 {
		return
	}
	k := v.KbpsPerSubscriber
	fmt.Fprintf(w, "video         per subscriber p50 %.0f kb/s  p95 %.0f kb/s  max %.0f kb/s; streams per subscriber mean %.1f, max %d\n",
		k.P50, k.P95, k.Max, v.Streams.Mean, v.Streams.Max)
}

// shows reports whether participant p shows q's video: with --tiles, q is
// among the Tiles video publishers after p in its call (wrapping around).
func (r *runner) shows(p, q *participant) bool {
	if r.cfg.Tiles == 0 {
		return true
	}
	for _, id := range r.tilesOf(p) {
		if id == q.id {
			return true
		}
	}
	return false
}

// tilesOf lists the participants whose video p shows (--tiles).
func (r *runner) tilesOf(p *participant) []string {
	var call, j int
	if _, err := fmt.Sscanf(p.id, "lt-%d-%d", &call, &j); err != nil {
		return nil
	}
	var out []string
	pubs := r.cfg.VideoPublishers
	for k := 1; k <= r.cfg.Participants && len(out) < r.cfg.Tiles; k++ {
		q := (j + k) % r.cfg.Participants
		if q != j && q < pubs {
			out = append(out, fmt.Sprintf("lt-%d-%d", call, q))
		}
	}
	return out
}

// subscribeTiles sends p's subscription (--tiles).
func (r *runner) subscribeTiles(c *client.Client, p *participant) error {
	if r.cfg.Tiles == 0 {
		return nil
	}
	var list []client.VideoSubscription
	for _, id := range r.tilesOf(p) {
		list = append(list, client.VideoSubscription{ParticipantID: id, MaxHeight: r.cfg.TileHeight})
	}
	return c.Subscribe(list)
}

// videoBySender sums, per subscriber and publisher, the video bytes
// received.
func videoBySender(parts []*participant) map[string]uint64 {
	return perSender(parts, client.KindVideo, func(rt client.ReceivedTrackStats) uint64 { return rt.Bytes })
}

// perSender sums f over the received tracks of kind, per
// "subscriber|publisher".
func perSender(parts []*participant, kind string, f func(client.ReceivedTrackStats) uint64) map[string]uint64 {
	out := map[string]uint64{}
	for _, p := range parts {
		st, ok := p.stats()
		if !ok {
			continue
		}
		for _, rt := range st.Received {
			if rt.Kind == kind {
				out[p.id+"|"+rt.ParticipantID] += f(rt)
			}
		}
	}
	return out
}

// videoReport fills rep.Video from the media window's start and end (s.mu
// held).
func (s *sampler) videoReport(rep *Report, media time.Duration) {
	if media <= 0 {
		return
	}
	bytes, streams := map[string]uint64{}, map[string]int{}
	for key, n := range videoBySender(s.r.clients()) {
		sub, _, _ := strings.Cut(key, "|")
		if n > s.mediaVideo[key] {
			bytes[sub] += n - s.mediaVideo[key]
			streams[sub]++
		}
	}
	var kbps []float64
	total := 0
	for sub, b := range bytes {
		kbps = append(kbps, float64(b)*8/media.Seconds()/1000)
		total += streams[sub]
		rep.Video.Streams.Max = max(rep.Video.Streams.Max, streams[sub])
	}
	rep.Video.KbpsPerSubscriber = distOf(kbps)
	if len(bytes) > 0 {
		rep.Video.Streams.Mean = float64(total) / float64(len(bytes))
	}
}

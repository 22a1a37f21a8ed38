package loadtest

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// forwardedMetric is the server's count of packets written to subscribers
// (package metrics: orville_packets_out_total, one series per kind).
const forwardedMetric = "orville_packets_out_total"

// maxScrapeBytes bounds how much of /metrics is read.
const maxScrapeBytes = 8 << 20

// latencyMetric is the server's forwarding latency histogram (seconds).
const latencyMetric = "orville_forwarding_latency_seconds_bucket"

// serverSample is what one scrape of /metrics gives the report.
type serverSample struct {
	forwarded      uint64
	forwardedAudio uint64 // the kind="audio" series
	// buckets are the latency histogram's cumulative counts by upper bound,
	// all kinds added up, in increasing order of bound.
	buckets []bucket
}

type bucket struct {
	le    float64
	count float64
}

// scrapeServer reads GET /metrics: the forwarded-packets counter and the
// forwarding latency histogram.
func scrapeServer(ctx context.Context, hc *http.Client, apiURL, secret string) (serverSample, error) {
	var s serverSample
	body, err := getMetrics(ctx, hc, apiURL, secret)
	if err != nil {
		return s, err
	}
	if s.forwarded, err = sumCounter(strings.NewReader(body), forwardedMetric); err != nil {
		return s, err
	}
	if s.forwardedAudio, err = sumCounter(strings.NewReader(body), forwardedMetric+`{kind="audio"}`); err != nil {
		s.forwardedAudio = 0 // a server without audio counts yet
	}
	s.buckets, err = histogramBuckets(strings.NewReader(body), latencyMetric)
	return s, err
}

func getMetrics(ctx context.Context, hc *http.Client, apiURL, secret string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(apiURL, "/")+"/metrics", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("loadtest: /metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxScrapeBytes))
	if err != nil {
		return "", fmt.Errorf("loadtest: /metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("loadtest: /metrics: HTTP %d", resp.StatusCode)
	}
	return string(b), nil
}

// sumCounter adds up the samples of one metric in the Prometheus text
// exposition format: lines "name value" or "name{labels} value".
func sumCounter(r io.Reader, name string) (uint64, error) {
	var sum float64
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (len(rest) > 0 && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("loadtest: /metrics: bad sample %q", line)
		}
		sum += v
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("loadtest: /metrics has no %s", name)
	}
	return uint64(sum), nil
}

// histogramBuckets adds up the buckets of a histogram over all its series,
// by the "le" label.
func histogramBuckets(r io.Reader, name string) ([]bucket, error) {
	byLE := map[float64]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		_, rest, ok := strings.Cut(line, `le="`)
		le, _, ok2 := strings.Cut(rest, `"`)
		i := strings.LastIndexByte(line, ' ')
		bound, err1 := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		v, err2 := strconv.ParseFloat(line[i+1:], 64)
		if !ok || !ok2 || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("loadtest: /metrics: bad bucket %q", line)
		}
		byLE[bound] += v
	}
	out := make([]bucket, 0, len(byLE))
	for le, c := range byLE {
		out = append(out, bucket{le, c})
	}
	slices.SortFunc(out, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	return out, sc.Err()
}

// histogramQuantile estimates quantile q of the observations between two
// scrapes (end minus start), interpolating linearly inside a bucket as
// Prometheus' histogram_quantile does. ok is false without observations.
func histogramQuantile(q float64, start, end []bucket) (v float64, ok bool) {
	prev := map[float64]float64{}
	for _, b := range start {
		prev[b.le] = b.count
	}
	d := make([]bucket, len(end))
	for i, b := range end {
		d[i] = bucket{b.le, b.count - prev[b.le]}
	}
	if len(d) == 0 || d[len(d)-1].count <= 0 {
		return 0, false
	}
	rank := q * d[len(d)-1].count
	lower, below := 0.0, 0.0
	for _, b := range d {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return lower, true // beyond the last finite bound: report that bound
			}
			if b.count == below {
				return b.le, true
			}
			return lower + (b.le-lower)*(rank-below)/(b.count-below), true
		}
		lower, below = b.le, b.count
	}
	return lower, true
}

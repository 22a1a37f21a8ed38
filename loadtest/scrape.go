package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// forwardedMetric is the server's count of packets written to subscribers
// (package metrics: orville_packets_out_total, one series per kind).
const forwardedMetric = "orville_packets_out_total"

// maxScrapeBytes bounds how much of /metrics is read.
const maxScrapeBytes = 8 << 20

// scrapeForwarded reads GET /metrics and sums every series of the
// forwarded-packets counter.
func scrapeForwarded(ctx context.Context, hc *http.Client, apiURL, secret string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(apiURL, "/")+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("loadtest: /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxScrapeBytes))
		return 0, fmt.Errorf("loadtest: /metrics: HTTP %d", resp.StatusCode)
	}
	return sumCounter(io.LimitReader(resp.Body, maxScrapeBytes), forwardedMetric)
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

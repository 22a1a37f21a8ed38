// Package metrics exports Orville's Prometheus metrics: media-plane counters
// fed by the SFU (it implements sfu.Observer), API requests by route and
// status (signaling.APIMetrics), call, participant, track and port-pair
// gauges read from the room manager at scrape time, and the process's CPU
// and memory. Everything lives in the Metrics value's own registry, never in
// the client library's global default registry.
package metrics

import (
	"errors"
	"net/http"
	"sync"

	"github.com/orville/orville/roommgr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

// Config configures Metrics.
type Config struct {
	// Namespace prefixes every metric name (default "orville").
	Namespace string
	// Logger receives scrape errors. Required.
	Logger *zap.Logger
	// LatencyBuckets are the forwarding latency histogram's upper bounds in
	// seconds (default DefaultLatencyBuckets).
	LatencyBuckets []float64
}

// DefaultLatencyBuckets cover forwarding inside one host: from 10 µs (a
// packet written by an idle writer) to 100 ms (a writer stalled far beyond
// any jitter buffer). The 1 ms bound is the forwarding latency target.
var DefaultLatencyBuckets = []float64{
	10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3,
}

func (c *Config) validate() error {
	if c.Logger == nil {
		return errors.New("metrics: Logger is required")
	}
	if c.Namespace == "" {
		c.Namespace = "orville"
	}
	if len(c.LatencyBuckets) == 0 {
		c.LatencyBuckets = DefaultLatencyBuckets
	}
	for i := 1; i < len(c.LatencyBuckets); i++ {
		if c.LatencyBuckets[i] <= c.LatencyBuckets[i-1] {
			return errors.New("metrics: LatencyBuckets must increase")
		}
	}
	return nil
}

// Metrics is the server's metric set. Its Observer methods are safe on the
// packet path: every counter is resolved once in New, so a packet costs a
// few atomic adds and no allocation.
type Metrics struct {
	cfg Config
	log *zap.Logger
	reg *prometheus.Registry

	media
	lifecycle
	webhooks    webhookCounters
	apiRequests *prometheus.CounterVec

	mu        sync.Mutex
	rooms     prometheus.Collector // read at scrape time: WatchRooms
	edges     prometheus.Collector // and WatchEdges
	closed    bool
	closeOnce sync.Once
}

// New builds the metric set and its registry, with the process and Go
// runtime collectors already registered.
func New(cfg Config) (*Metrics, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Metrics{cfg: cfg, log: cfg.Logger.Named("metrics"), reg: prometheus.NewRegistry()}
	m.media = newMedia(cfg.Namespace, cfg.LatencyBuckets)
	m.lifecycle = newLifecycle(cfg.Namespace)
	m.webhooks = newWebhookCounters(cfg.Namespace)
	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: cfg.Namespace, Name: "api_requests_total",
		Help: "HTTP API requests by route pattern and status code.",
	}, []string{"route", "code"})
	cs := append(append(append(m.media.collectors(), m.lifecycle.collectors()...), m.webhooks.collectors()...), m.apiRequests,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: cfg.Namespace}),
		collectors.NewGoCollector(),
	)
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// WatchRooms adds the gauges read from rooms at each scrape: calls,
// participants, tracks by kind, participants by transport, port pairs used
// and free. The room manager is built with this Metrics as its observer, so
// it is attached afterwards; a second call replaces the first.
func (m *Metrics) WatchRooms(rooms *roommgr.Manager) error {
	if rooms == nil {
		return errors.New("metrics: WatchRooms needs a room manager")
	}
	return m.watch(&m.rooms, newRoomsCollector(m.cfg.Namespace, rooms))
}

// watch registers c in place of what slot held.
func (m *Metrics) watch(slot *prometheus.Collector, c prometheus.Collector) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("metrics: closed")
	}
	if *slot != nil {
		m.reg.Unregister(*slot)
	}
	*slot = c
	return m.reg.Register(c)
}

// Registry is the registry holding every metric (for tests and embedding).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format. Mount it
// behind the API's access check: the API listener is for the messaging
// server's network only.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(m.log),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // promhttp's own scrape counters
	})
}

// APIRequest implements signaling.APIMetrics. route is the mux pattern (or
// "unmatched"), never a raw path, so the label set stays bounded.
func (m *Metrics) APIRequest(route string, status int) {
	m.apiRequests.WithLabelValues(route, statusCode(status)).Inc()
}

// Packets is how many RTP packets were received and forwarded since start
// (a cluster node's load is its rate).
func (m *Metrics) Packets() float64 {
	var sum float64
	var d dto.Metric
	for k := range numKinds {
		for _, c := range []prometheus.Counter{m.packetsIn[k], m.packetsOut[k]} {
			if c.Write(&d) == nil {
				sum += d.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// Close stops reading the room manager and the edges. Idempotent; counters
// stay readable.
func (m *Metrics) Close() {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.closed = true
		for _, c := range []*prometheus.Collector{&m.rooms, &m.edges} {
			if *c != nil {
				m.reg.Unregister(*c)
				*c = nil
			}
		}
	})
}

// statusCode formats common codes without allocating a new string each time.
func statusCode(s int) string {
	switch s {
	case 200:
		return "200"
	case 201:
		return "201"
	case 204:
		return "204"
	case 400:
		return "400"
	case 401:
		return "401"
	case 403:
		return "403"
	case 404:
		return "404"
	case 503:
		return "503"
	}
	if s < 100 || s > 999 {
		return "other"
	}
	return string([]byte{byte('0' + s/100), byte('0' + s/10%10), byte('0' + s%10)})
}

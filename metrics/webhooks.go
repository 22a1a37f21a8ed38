package metrics

import "github.com/prometheus/client_golang/prometheus"

// webhookCounters implement webhooks.Observer. endpoint is a URL's
// host[:port] (a handful per server: a bounded label).
type webhookCounters struct {
	delivered, retried, dropped *prometheus.CounterVec
}

func newWebhookCounters(ns string) webhookCounters {
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	return webhookCounters{
		delivered: c("webhook_delivered_total", "Webhook events a receiver accepted (2xx), by endpoint (host:port).", "endpoint"),
		retried:   c("webhook_retries_total", "Failed webhook attempts that will be retried, by endpoint.", "endpoint"),
		dropped: c("webhook_dropped_total",
			"Webhook events given up, by endpoint and reason: queue_full, expired (retried for --webhook-retry-for), shutdown.",
			"endpoint", "reason"),
	}
}

func (w *webhookCounters) collectors() []prometheus.Collector {
	return []prometheus.Collector{w.delivered, w.retried, w.dropped}
}

// WebhookDelivered implements webhooks.Observer.
func (m *Metrics) WebhookDelivered(endpoint string) {
	m.webhooks.delivered.WithLabelValues(endpoint).Inc()
}

// WebhookRetried implements webhooks.Observer.
func (m *Metrics) WebhookRetried(endpoint string) { m.webhooks.retried.WithLabelValues(endpoint).Inc() }

// WebhookDropped implements webhooks.Observer.
func (m *Metrics) WebhookDropped(endpoint, reason string) {
	m.webhooks.dropped.WithLabelValues(endpoint, reason).Inc()
}

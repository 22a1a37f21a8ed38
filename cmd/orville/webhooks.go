package main

import (
	"github.com/orville/orville/events"
	"github.com/orville/orville/internal/config"
	"github.com/orville/orville/metrics"
	"github.com/orville/orville/webhooks"
	"go.uber.org/zap"
)

// startWebhooks subscribes a webhook sender to the bus when --webhook-url is
// set; the returned close (never nil) flushes it, and must run after the
// bus has closed so that the last calls' events go out too.
func startWebhooks(cfg *config.Config, bus *events.Bus, mets *metrics.Metrics, log *zap.Logger) (func(), error) {
	if len(cfg.WebhookURLs) == 0 {
		return func() {}, nil
	}
	s, err := webhooks.New(webhooks.Config{
		URLs: cfg.WebhookURLs, Secret: cfg.WebhookSecret, Node: cfg.NodeID, Logger: log,
		Timeout: cfg.WebhookTimeout, RetryFor: cfg.WebhookRetryFor, Observer: mets,
		UserAgent: "orville/" + version,
	})
	if err != nil {
		return nil, err
	}
	if _, err := bus.Subscribe("webhooks", s.HandleEvent); err != nil {
		s.Close()
		return nil, err
	}
	return s.Close, nil
}

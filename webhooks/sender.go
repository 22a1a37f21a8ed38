package webhooks

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/orville/orville/events"
	"go.uber.org/zap"
)

// Sender delivers events to the configured URLs.
type Sender struct {
	cfg       Config
	log       *zap.Logger
	endpoints []*endpoint
	ctx       context.Context // cancelled when Close's flush time runs out
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// New validates cfg and starts each URL's workers.
func New(cfg Config) (*Sender, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Sender{cfg: cfg, log: cfg.Logger.Named("webhooks")}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, raw := range cfg.URLs {
		u, _ := url.Parse(raw) // validated
		ep := newEndpoint(s, u, newClient(&cfg))
		s.endpoints = append(s.endpoints, ep)
		s.log.Info("webhook endpoint", zap.String("url", u.Redacted()))
	}
	for _, ep := range s.endpoints {
		ep.start()
	}
	return s, nil
}

// newClient is the outbound HTTP client of one URL: proxies from the
// environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), every phase bounded by
// Timeout, no redirects (a POST must not turn into a GET elsewhere).
func newClient(cfg *Config) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   cfg.Workers,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr, Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// HandleEvent is the events subscriber: it queues e for every URL and
// returns at once.
func (s *Sender) HandleEvent(e events.Event) {
	body := encode(e, s.cfg.Node)
	for _, ep := range s.endpoints {
		ep.enqueue(item{id: e.ID, typ: string(e.Type), call: e.CallID, body: body, at: e.Time})
	}
}

// Close stops taking events, keeps delivering what is queued for up to
// FlushTimeout, then abandons the rest (counted as dropped, reason
// shutdown). Idempotent.
func (s *Sender) Close() {
	s.closeOnce.Do(func() {
		for _, ep := range s.endpoints {
			ep.close()
		}
		t := time.AfterFunc(s.cfg.FlushTimeout, s.cancel)
		for _, ep := range s.endpoints {
			ep.wg.Wait()
			ep.client.CloseIdleConnections()
		}
		t.Stop()
		s.cancel()
	})
}

// QueueLength is the number of events waiting (not yet being delivered), by
// endpoint.
func (s *Sender) QueueLength() map[string]int {
	out := map[string]int{}
	for _, ep := range s.endpoints {
		ep.mu.Lock()
		out[ep.name] += ep.queued
		ep.mu.Unlock()
	}
	return out
}

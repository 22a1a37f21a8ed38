// Package webhooks tells the messaging server what happens on this server:
// it is an events subscriber that POSTs each life-cycle event as JSON to
// every configured URL, signed with HMAC-SHA256 (X-Orville-Signature, see
// docs/webhooks.md for the format and how to verify it).
//
// Delivery never blocks a call: HandleEvent only queues. Each URL has its
// own bounded queue and a few workers; a call's events go out one at a time
// in the order they happened, while different calls' events go out in
// parallel. A failed attempt (network error, timeout, non-2xx answer) is
// retried with exponential backoff and jitter until the event is RetryFor
// old; then it is dropped, logged and counted, and the call's next event
// goes. A full queue drops new events the same way. Outbound requests honour
// HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
//
// The package imports only package events of the module.
package webhooks

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.uber.org/zap"
)

// Defaults of Config.
const (
	DefaultTimeout      = 5 * time.Second
	DefaultRetryFor     = 10 * time.Minute
	DefaultQueueSize    = 4096
	DefaultWorkers      = 4
	DefaultMinBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff   = time.Minute
	DefaultFlushTimeout = 5 * time.Second
	// MinSecretLen keeps the signing key out of guessing range.
	MinSecretLen = 16
)

// Config configures a Sender.
type Config struct {
	// URLs receive every event (http or https).
	URLs []string
	// Secret keys the X-Orville-Signature HMAC; at least MinSecretLen bytes.
	Secret string
	// Node is this server's node id ("pid"), sent in every event.
	Node string
	// Logger is required.
	Logger *zap.Logger
	// Timeout bounds one attempt: connect, TLS, request and response headers.
	Timeout time.Duration
	// RetryFor is how old an event may get while it is retried; after that it
	// is dropped.
	RetryFor time.Duration
	// QueueSize bounds the events waiting per URL.
	QueueSize int
	// Workers is how many calls' events one URL receives in parallel.
	Workers int
	// MinBackoff and MaxBackoff bound the wait between attempts: it doubles
	// from MinBackoff up to MaxBackoff, each wait drawn from its upper half.
	MinBackoff, MaxBackoff time.Duration
	// FlushTimeout bounds how long Close keeps delivering queued events.
	FlushTimeout time.Duration
	// Observer counts deliveries; nil means none.
	Observer Observer
	// UserAgent is sent with every request (default "orville").
	UserAgent string
}

// Observer receives the delivery counters (package metrics implements it).
// endpoint is the URL's host[:port], never its path or credentials.
type Observer interface {
	WebhookDelivered(endpoint string)
	WebhookRetried(endpoint string)
	WebhookDropped(endpoint, reason string)
}

// Drop reasons reported to Observer.WebhookDropped.
const (
	DropQueueFull = "queue_full" // the URL's queue was full
	DropExpired   = "expired"    // retried for RetryFor without success
	DropShutdown  = "shutdown"   // still queued when Close's flush time ran out
)

type nopObserver struct{}

func (nopObserver) WebhookDelivered(string)       {}
func (nopObserver) WebhookRetried(string)         {}
func (nopObserver) WebhookDropped(string, string) {}

func (c *Config) validate() error {
	if c.Logger == nil {
		return errors.New("webhooks: Logger is required")
	}
	if len(c.URLs) == 0 {
		return errors.New("webhooks: at least one URL is required")
	}
	for _, raw := range c.URLs {
		if err := checkURL(raw); err != nil {
			return err
		}
	}
	if len(c.Secret) < MinSecretLen {
		return fmt.Errorf("webhooks: the secret must be at least %d characters", MinSecretLen)
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.Timeout, DefaultTimeout}, {&c.RetryFor, DefaultRetryFor}, {&c.MinBackoff, DefaultMinBackoff},
		{&c.MaxBackoff, DefaultMaxBackoff}, {&c.FlushTimeout, DefaultFlushTimeout},
	} {
		if *d.v < 0 {
			return errors.New("webhooks: durations must not be negative")
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.MaxBackoff < c.MinBackoff {
		return errors.New("webhooks: MaxBackoff is below MinBackoff")
	}
	if c.QueueSize < 0 || c.Workers < 0 {
		return errors.New("webhooks: QueueSize and Workers must not be negative")
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.UserAgent == "" {
		c.UserAgent = "orville"
	}
	return nil
}

// checkURL accepts absolute http and https URLs with a host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhooks: %q is not an http:// or https:// URL", raw)
	}
	return nil
}

// CheckURL is the URL rule, for configuration errors that name the setting.
func CheckURL(raw string) error { return checkURL(raw) }

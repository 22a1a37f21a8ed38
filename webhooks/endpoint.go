package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// item is one event on its way to one URL.
type item struct {
	id, typ, call string
	body          []byte
	at            time.Time // when it happened: RetryFor counts from here
}

// callQueue holds one call's events for one URL, oldest first. While busy a
// worker delivers its head; otherwise, while not empty, it waits in ready.
type callQueue struct {
	call  string
	items []item
	busy  bool
}

// endpoint is one URL: its queue of calls and its workers.
type endpoint struct {
	s      *Sender
	url    string
	name   string // host[:port]: for logs and metrics, never credentials or path
	client *http.Client

	mu      sync.Mutex
	cond    *sync.Cond
	calls   map[string]*callQueue
	ready   []*callQueue
	queued  int
	closing bool
	failing bool // the last attempt failed (logged once per outage)
	drops   map[string]uint64
	wg      sync.WaitGroup
}

func newEndpoint(s *Sender, u *url.URL, c *http.Client) *endpoint {
	ep := &endpoint{s: s, url: u.String(), name: u.Host, client: c, calls: map[string]*callQueue{}, drops: map[string]uint64{}}
	ep.cond = sync.NewCond(&ep.mu)
	return ep
}

func (ep *endpoint) start() {
	for range ep.s.cfg.Workers {
		ep.wg.Add(1)
		go ep.work()
	}
}

func (ep *endpoint) enqueue(it item) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closing {
		ep.dropLocked(it, DropShutdown, 0, nil)
		return
	}
	if ep.queued >= ep.s.cfg.QueueSize {
		ep.dropLocked(it, DropQueueFull, 0, nil)
		return
	}
	ep.queued++
	q := ep.calls[it.call]
	if q == nil {
		q = &callQueue{call: it.call}
		ep.calls[it.call] = q
		ep.ready = append(ep.ready, q)
		ep.cond.Signal()
	}
	// A queue that exists is either busy (done requeues it) or already ready.
	q.items = append(q.items, it)
}

// next takes the head of the first ready call, or reports that the endpoint
// is closed and empty.
func (ep *endpoint) next() (*callQueue, item, bool) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for len(ep.ready) == 0 {
		if ep.closing && ep.queued == 0 {
			return nil, item{}, false
		}
		ep.cond.Wait()
	}
	q := ep.ready[0]
	ep.ready = ep.ready[1:]
	it := q.items[0]
	q.items = q.items[1:]
	q.busy = true
	ep.queued--
	return q, it, true
}

// done releases q after its head was delivered or dropped.
func (ep *endpoint) done(q *callQueue) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	q.busy = false
	if len(q.items) > 0 {
		ep.ready = append(ep.ready, q)
	} else {
		delete(ep.calls, q.call)
	}
	// Workers waiting to exit must recheck, others may take q.
	ep.cond.Broadcast()
}

func (ep *endpoint) close() {
	ep.mu.Lock()
	ep.closing = true
	ep.cond.Broadcast()
	ep.mu.Unlock()
}

func (ep *endpoint) work() {
	defer ep.wg.Done()
	for {
		q, it, ok := ep.next()
		if !ok {
			return
		}
		ep.deliver(it)
		ep.done(q)
	}
}

// deliver tries it until it succeeds, is RetryFor old, or Close gives up.
func (ep *endpoint) deliver(it item) {
	cfg := &ep.s.cfg
	ctx := ep.s.ctx
	backoff := cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			ep.drop(it, DropShutdown, attempt-1, nil)
			return
		}
		retryAfter, err := ep.post(ctx, it, attempt)
		if err == nil {
			ep.succeeded()
			cfg.Observer.WebhookDelivered(ep.name)
			return
		}
		// Exponential backoff with jitter: each wait drawn from the upper
		// half of the current step, so many servers retrying one receiver
		// spread out instead of arriving together.
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, cfg.MaxBackoff)
		if retryAfter > wait {
			wait = min(retryAfter, cfg.MaxBackoff)
		}
		if time.Since(it.at)+wait > cfg.RetryFor {
			ep.drop(it, DropExpired, attempt, err)
			return
		}
		ep.failed(it, attempt, err)
		cfg.Observer.WebhookRetried(ep.name)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// post makes one attempt. A 2xx answer is success; anything else is an
// error, with the answer's Retry-After (RFC 9110 §10.2.3) when it has one.
func (ep *endpoint) post(ctx context.Context, it item, attempt int) (time.Duration, error) {
	cfg := &ep.s.cfg
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(it.body))
	if err != nil {
		return 0, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", cfg.UserAgent)
	h.Set("X-Orville-Event-Id", it.id)
	h.Set("X-Orville-Event-Type", it.typ)
	h.Set("X-Orville-Delivery-Attempt", strconv.Itoa(attempt))
	h.Set(SignatureHeader, Sign(cfg.Secret, time.Now(), it.body))
	resp, err := ep.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Read a little of the answer so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	var after time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		after = time.Duration(s) * time.Second
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return after, fmt.Errorf("answered %d (redirects are not followed: configure the final URL)", resp.StatusCode)
	}
	return after, fmt.Errorf("answered %d", resp.StatusCode)
}

func (ep *endpoint) succeeded() {
	ep.mu.Lock()
	recovered := ep.failing
	ep.failing = false
	ep.mu.Unlock()
	if recovered {
		ep.s.log.Info("webhook endpoint answers again", zap.String("endpoint", ep.name))
	}
}

func (ep *endpoint) failed(it item, attempt int, err error) {
	ep.mu.Lock()
	first := !ep.failing
	ep.failing = true
	ep.mu.Unlock()
	log := ep.s.log.Debug
	if first {
		log = ep.s.log.Warn // once per outage; then debug per attempt
	}
	log("webhook delivery failed; retrying", zap.String("endpoint", ep.name), zap.String("type", it.typ),
		zap.String("call", it.call), zap.Int("attempt", attempt), zap.Error(err))
}

func (ep *endpoint) drop(it item, reason string, attempts int, err error) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.dropLocked(it, reason, attempts, err)
}

// dropLocked counts a lost event and logs it at 1, 2, 4, 8, … drops per
// reason: visible, never a flood.
func (ep *endpoint) dropLocked(it item, reason string, attempts int, err error) {
	ep.s.cfg.Observer.WebhookDropped(ep.name, reason)
	ep.drops[reason]++
	if n := ep.drops[reason]; n&(n-1) == 0 {
		ep.s.log.Warn("webhook event dropped", zap.String("endpoint", ep.name), zap.String("reason", reason),
			zap.String("type", it.typ), zap.String("call", it.call), zap.String("id", it.id),
			zap.Int("attempts", attempts), zap.Uint64("droppedSoFar", n), zap.Error(err))
	}
}

package webhooks

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orville/orville/events"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

const testSecret = "webhook-test-secret-0123456789"

// counter is an Observer.
type counter struct {
	delivered, retried atomic.Int64
	mu                 sync.Mutex
	dropped            map[string]int
}

func (c *counter) WebhookDelivered(string) { c.delivered.Add(1) }
func (c *counter) WebhookRetried(string)   { c.retried.Add(1) }
func (c *counter) WebhookDropped(_, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped == nil {
		c.dropped = map[string]int{}
	}
	c.dropped[reason]++
}

func (c *counter) drops(reason string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped[reason]
}

// receiver is a webhook endpoint: it verifies each request and records the
// verified payloads in arrival order; fail decides, per payload and
// attempt, to answer 503 instead.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	fail func(p payload, attempt int) bool

	mu       sync.Mutex
	got      []payload
	attempts map[string]int
	bad      int
}

func newReceiver(t *testing.T, fail func(payload, int) bool) *receiver {
	r := &receiver{t: t, fail: fail, attempts: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var p payload
	err := Verify(testSecret, req.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute)
	if err == nil {
		err = json.Unmarshal(body, &p)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" ||
		req.Header.Get("X-Orville-Event-Id") != p.ID || req.Header.Get("X-Orville-Event-Type") != p.Type {
		r.bad++
		http.Error(w, "bad request", http.StatusUnauthorized)
		return
	}
	r.attempts[p.ID]++
	if n, _ := strconv.Atoi(req.Header.Get("X-Orville-Delivery-Attempt")); n != r.attempts[p.ID] {
		r.t.Errorf("attempt header %d, want %d", n, r.attempts[p.ID])
	}
	if r.fail != nil && r.fail(p, r.attempts[p.ID]) {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	r.got = append(r.got, p)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) payloads() []payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]payload(nil), r.got...)
}

func newSender(t *testing.T, obs Observer, mod func(*Config), urls ...string) *Sender {
	t.Helper()
	cfg := Config{URLs: urls, Secret: testSecret, Node: "f985", Logger: zaptest.NewLogger(t), Observer: obs,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// callEvents is a call's life cycle, as the room manager publishes it.
func callEvents(call string) []events.Event {
	out := []events.Event{{Type: events.CallStarted}}
	for _, p := range []string{"alice", "bob"} {
		out = append(out, events.Event{Type: events.ParticipantJoined, ParticipantID: p},
			events.Event{Type: events.TrackPublished, ParticipantID: p, Track: &events.Track{ID: p + "-mic", Kind: "audio"}})
	}
	for _, p := range []string{"bob", "alice"} {
		out = append(out, events.Event{Type: events.TrackUnpublished, ParticipantID: p, Track: &events.Track{ID: p + "-mic", Kind: "audio"}},
			events.Event{Type: events.ParticipantLeft, ParticipantID: p, Reason: "left"})
	}
	out = append(out, events.Event{Type: events.CallEnded, Reason: "last_left"})
	for i := range out {
		out[i].CallID = call
	}
	return out
}

// publishAll runs calls' events through a real bus into s, interleaved.
func publishAll(t *testing.T, s *Sender, calls ...string) map[string][]events.Event {
	t.Helper()
	bus, err := events.NewBus(events.Config{Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sent := map[string][]events.Event{}
	var sentMu sync.Mutex
	if _, err := bus.Subscribe("webhooks", func(e events.Event) {
		sentMu.Lock()
		sent[e.CallID] = append(sent[e.CallID], e)
		sentMu.Unlock()
		s.HandleEvent(e)
	}); err != nil {
		t.Fatal(err)
	}
	all := map[string][]events.Event{}
	for _, c := range calls {
		all[c] = callEvents(c)
	}
	for i := 0; ; i++ {
		more := false
		for _, c := range calls {
			if i < len(all[c]) {
				bus.Publish(all[c][i])
				more = true
			}
		}
		if !more {
			break
		}
	}
	bus.Close()
	return sent
}

// checkReceived: every event of every call arrived, with its id, type,
// participant, reason, track and node, in the call's order.
func checkReceived(t *testing.T, got []payload, sent map[string][]events.Event) {
	t.Helper()
	byCall := map[string][]payload{}
	for _, p := range got {
		byCall[p.EventID] = append(byCall[p.EventID], p)
	}
	for call, evs := range sent {
		ps := byCall[call]
		if len(ps) != len(evs) {
			t.Fatalf("call %s: %d events received, %d sent", call, len(ps), len(evs))
		}
		for i, e := range evs {
			p := ps[i]
			want := payload{ID: e.ID, Type: string(e.Type), Time: e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
				EventID: call, ParticipantID: e.ParticipantID, Reason: e.Reason, Node: "f985"}
			if e.Track != nil {
				want.Track = &payloadTrack{ID: e.Track.ID, Kind: e.Track.Kind}
			}
			gotJSON, _ := json.Marshal(p)
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) {
				t.Fatalf("call %s event %d: got %s, want %s", call, i, gotJSON, wantJSON)
			}
		}
	}
}

// leakCheck verifies, after every other cleanup (the test servers close in
// theirs), that no goroutine outlived the test.
func leakCheck(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Every event of every call reaches every URL, signed, in order per call.
func TestEveryEventSignedInOrderPerCall(t *testing.T) {
	leakCheck(t)
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	obs := &counter{}
	s := newSender(t, obs, nil, a.srv.URL+"/hooks", b.srv.URL)
	sent := publishAll(t, s, "call-1", "call-2", "call-3")
	waitFor(t, 10*time.Second, func() bool { return len(a.payloads()) == 30 && len(b.payloads()) == 30 })
	s.Close()
	checkReceived(t, a.payloads(), sent)
	checkReceived(t, b.payloads(), sent)
	if a.bad+b.bad != 0 || obs.delivered.Load() != 60 || obs.retried.Load() != 0 {
		t.Fatalf("bad requests %d, delivered %d, retried %d", a.bad+b.bad, obs.delivered.Load(), obs.retried.Load())
	}
}

// A receiver that fails the first attempts of each event still gets every
// event, in order, after retries.
func TestRetriesUntilDelivered(t *testing.T) {
	leakCheck(t)
	r := newReceiver(t, func(_ payload, attempt int) bool { return attempt <= 2 })
	obs := &counter{}
	s := newSender(t, obs, nil, r.srv.URL)
	sent := publishAll(t, s, "call-1", "call-2")
	waitFor(t, 20*time.Second, func() bool { return len(r.payloads()) == 20 })
	s.Close()
	checkReceived(t, r.payloads(), sent)
	if obs.retried.Load() != 40 || obs.delivered.Load() != 20 {
		t.Fatalf("retried %d (want 2 per event), delivered %d", obs.retried.Load(), obs.delivered.Load())
	}
}

// One call whose events keep failing does not hold up another call's.
func TestOneFailingCallDoesNotHoldUpOthers(t *testing.T) {
	leakCheck(t)
	r := newReceiver(t, func(p payload, _ int) bool { return p.EventID == "stuck" })
	obs := &counter{}
	s := newSender(t, obs, func(c *Config) { c.RetryFor = time.Minute }, r.srv.URL)
	publishAll(t, s, "stuck", "fine")
	waitFor(t, 10*time.Second, func() bool { return len(r.payloads()) == 10 })
	for _, p := range r.payloads() {
		if p.EventID != "fine" {
			t.Fatalf("delivered %+v", p)
		}
	}
	s.Close() // the stuck call's events are abandoned after FlushTimeout
	if n := obs.drops(DropShutdown); n != 10 {
		t.Fatalf("%d events dropped at shutdown, want the stuck call's 10", n)
	}
}

// A receiver that never answers slows nobody: HandleEvent returns at once,
// the bounded queue drops what does not fit, each event is dropped once it
// is RetryFor old, every drop is counted, and Close is bounded.
func TestReceiverThatNeverAnswers(t *testing.T) {
	leakCheck(t)
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	obs := &counter{}
	s := newSender(t, obs, func(c *Config) {
		c.Timeout, c.RetryFor, c.QueueSize, c.Workers, c.FlushTimeout = 100*time.Millisecond, 400*time.Millisecond, 20, 2, 300*time.Millisecond
	}, srv.URL)
	start := time.Now()
	const n = 500
	for i := range n {
		s.HandleEvent(events.Event{ID: strconv.Itoa(i), Type: events.ParticipantJoined, CallID: fmt.Sprint("call-", i%10),
			Time: time.Now()})
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("queueing %d events took %v", n, d)
	}
	full := obs.drops(DropQueueFull)
	// 20 fit in the queue, 2 in the workers' hands.
	if full < n-22 {
		t.Fatalf("%d dropped for a full queue, want at least %d", full, n-22)
	}
	// The queued ones expire: RetryFor is 0.4 s, each attempt 0.1 s.
	waitFor(t, 10*time.Second, func() bool { return obs.drops(DropExpired) >= 2 })
	closeStart := time.Now()
	s.Close()
	if d := time.Since(closeStart); d > 2*time.Second {
		t.Fatalf("Close took %v with a receiver that never answers", d)
	}
	total := full + obs.drops(DropExpired) + obs.drops(DropShutdown)
	if total != n || obs.delivered.Load() != 0 {
		t.Fatalf("dropped %d (full %d, expired %d, shutdown %d) of %d, delivered %d", total, full,
			obs.drops(DropExpired), obs.drops(DropShutdown), n, obs.delivered.Load())
	}
}

// Redirects are not followed (a POST must not become a GET elsewhere);
// Retry-After is honoured up to MaxBackoff.
func TestRedirectAndRetryAfter(t *testing.T) {
	leakCheck(t)
	var hits atomic.Int64
	var times []time.Time
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		switch hits.Add(1) {
		case 1:
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case 2:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			if r.URL.Path == "/elsewhere" {
				t.Error("the redirect was followed")
			}
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	obs := &counter{}
	s := newSender(t, obs, func(c *Config) { c.MaxBackoff = 5 * time.Second }, srv.URL)
	s.HandleEvent(events.Event{ID: "x", Type: events.CallStarted, CallID: "c", Time: time.Now()})
	waitFor(t, 10*time.Second, func() bool { return obs.delivered.Load() == 1 })
	s.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 3 || times[2].Sub(times[1]) < 900*time.Millisecond {
		t.Fatalf("%d attempts; the one after Retry-After: 1 came %v later", len(times), times[len(times)-1].Sub(times[1]))
	}
}

func TestConfigValidation(t *testing.T) {
	log := zaptest.NewLogger(t)
	for name, cfg := range map[string]Config{
		"no logger":    {URLs: []string{"https://x.example/h"}, Secret: testSecret},
		"no url":       {Secret: testSecret, Logger: log},
		"bad scheme":   {URLs: []string{"ftp://x.example/h"}, Secret: testSecret, Logger: log},
		"no host":      {URLs: []string{"https:///h"}, Secret: testSecret, Logger: log},
		"short secret": {URLs: []string{"https://x.example/h"}, Secret: "short", Logger: log},
		"backoff":      {URLs: []string{"https://x.example/h"}, Secret: testSecret, Logger: log, MinBackoff: time.Second, MaxBackoff: time.Millisecond},
		"negative":     {URLs: []string{"https://x.example/h"}, Secret: testSecret, Logger: log, Timeout: -1},
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

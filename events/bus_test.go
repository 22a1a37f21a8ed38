package events

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func newBus(t *testing.T, cfg Config) *Bus {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	b, err := NewBus(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recorder collects what one subscriber was handed.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) handle(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) got() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Every subscriber gets every event, in the same order, with ID, Seq and
// Time filled in.
func TestEverySubscriberGetsEveryEventInOrder(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := newBus(t, Config{})
	var recs [3]recorder
	for i := range recs {
		if _, err := b.Subscribe("r", recs[i].handle); err != nil {
			t.Fatal(err)
		}
	}
	// Four publishers at once, each with its own call, as calls' goroutines do.
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				b.Publish(Event{Type: ParticipantJoined, CallID: string(rune('a' + c)), ParticipantID: string(rune('0' + i%10))})
			}
		}()
	}
	wg.Wait()
	at := time.Now()
	b.Close()
	first := recs[0].got()
	if len(first) != 800 {
		t.Fatalf("subscriber 0 got %d events, want 800", len(first))
	}
	ids := map[string]bool{}
	for i, e := range first {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d", i, e.Seq)
		}
		if len(e.ID) != 32 || ids[e.ID] {
			t.Fatalf("event %d: id %q missing or repeated", i, e.ID)
		}
		ids[e.ID] = true
		if e.Time.IsZero() || e.Time.After(at) {
			t.Fatalf("event %d: time %v", i, e.Time)
		}
	}
	for i := 1; i < len(recs); i++ {
		got := recs[i].got()
		if len(got) != len(first) {
			t.Fatalf("subscriber %d got %d events, subscriber 0 %d", i, len(got), len(first))
		}
		for j := range got {
			if got[j] != first[j] {
				t.Fatalf("subscriber %d event %d differs: %+v vs %+v", i, j, got[j], first[j])
			}
		}
	}
}

// A stuck subscriber neither blocks Publish nor delays the others; its
// losses are counted.
func TestStuckSubscriberDropsAloneAndNeverBlocks(t *testing.T) {
	defer goleak.VerifyNone(t)
	var drops atomic.Int64
	b := newBus(t, Config{QueueSize: 8, OnDrop: func(name string) {
		if name == "stuck" {
			drops.Add(1)
		}
	}})
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	if _, err := b.Subscribe("stuck", func(Event) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}); err != nil {
		t.Fatal(err)
	}
	fast := make(chan Event, 100)
	if _, err := b.Subscribe("fast", func(e Event) { fast <- e }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 50 {
		b.Publish(Event{Type: CallStarted, CallID: "c"})
		<-fast // the fast subscriber keeps up, whatever the stuck one does
		if i == 0 {
			<-entered // the stuck one holds the first event
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("50 publishes took %v with a stuck subscriber", d)
	}
	// The stuck one holds one event in its handler and 8 in its queue.
	if n := drops.Load(); n != 50-1-8 {
		t.Fatalf("drops counted %d, want %d", n, 50-1-8)
	}
	close(release)
	b.Close()
}

// Close hands every queued event to its subscriber before returning; later
// publishes are ignored and later subscriptions refused.
func TestCloseFlushes(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := newBus(t, Config{})
	var n atomic.Int64
	if _, err := b.Subscribe("slow", func(Event) { time.Sleep(time.Millisecond); n.Add(1) }); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		b.Publish(Event{Type: CallEnded, CallID: "c", Reason: "ended_by_api"})
	}
	b.Close()
	if n.Load() != 100 {
		t.Fatalf("handled %d of 100 queued events by Close", n.Load())
	}
	b.Publish(Event{Type: CallStarted})
	b.Close() // idempotent
	if n.Load() != 100 {
		t.Fatal("an event published after Close was delivered")
	}
	if _, err := b.Subscribe("late", func(Event) {}); err != ErrClosed {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

// Unsubscribing stops delivery to that subscriber only; a panicking
// subscriber loses the event, not the process or its later events.
func TestUnsubscribeAndPanic(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := newBus(t, Config{})
	defer b.Close()
	var gone, panicky recorder
	unsub, err := b.Subscribe("gone", gone.handle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe("panicky", func(e Event) {
		if e.Type == CallStarted {
			panic("subscriber bug")
		}
		panicky.handle(e)
	}); err != nil {
		t.Fatal(err)
	}
	b.Publish(Event{Type: CallStarted, CallID: "c"})
	b.Publish(Event{Type: ParticipantJoined, CallID: "c"})
	waitFor(t, func() bool { return len(gone.got()) == 2 && len(panicky.got()) == 1 })
	unsub()
	unsub() // idempotent
	b.Publish(Event{Type: ParticipantLeft, CallID: "c"})
	waitFor(t, func() bool { return len(panicky.got()) == 2 })
	if n := len(gone.got()); n != 2 {
		t.Fatalf("unsubscribed subscriber got %d events, want 2", n)
	}
	if e := panicky.got()[1]; e.Type != ParticipantLeft {
		t.Fatalf("after the panic: %+v", e)
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := NewBus(Config{}); err == nil {
		t.Fatal("a bus without a logger was accepted")
	}
	if _, err := NewBus(Config{Logger: zaptest.NewLogger(t), QueueSize: -1}); err == nil {
		t.Fatal("a negative queue size was accepted")
	}
	b := newBus(t, Config{})
	defer b.Close()
	if _, err := b.Subscribe("nil", nil); err == nil {
		t.Fatal("a nil handler was accepted")
	}
	var p Publisher = b
	p.Publish(Event{}) // *Bus is a Publisher; so is Nop
	Nop{}.Publish(Event{})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

package events

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// DefaultQueueSize bounds each subscriber's queue: a call of 50 people
// produces a few hundred events over its life, so 4096 rides out a
// subscriber stalled for a while during a burst of many calls ending at once.
const DefaultQueueSize = 4096

// Config configures a Bus.
type Config struct {
	// Logger is required.
	Logger *zap.Logger
	// QueueSize bounds each subscriber's queue (default DefaultQueueSize).
	QueueSize int
	// OnDrop, if set, is called (on the publisher's goroutine: keep it
	// cheap) each time a full queue makes a subscriber miss an event.
	OnDrop func(subscriber string)
}

func (c *Config) validate() error {
	if c.Logger == nil {
		return errors.New("events: Logger is required")
	}
	if c.QueueSize < 0 {
		return fmt.Errorf("events: QueueSize %d is negative", c.QueueSize)
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.OnDrop == nil {
		c.OnDrop = func(string) {}
	}
	return nil
}

// Bus delivers every published event to every subscriber.
type Bus struct {
	cfg Config
	log *zap.Logger

	mu     sync.Mutex
	seq    uint64
	subs   []*subscriber
	closed bool
	wg     sync.WaitGroup
}

type subscriber struct {
	name    string
	handle  func(Event)
	queue   chan Event
	dropped uint64 // under Bus.mu
}

// NewBus returns a bus with no subscribers.
func NewBus(cfg Config) (*Bus, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Bus{cfg: cfg, log: cfg.Logger.Named("events")}, nil
}

// ErrClosed is returned by Subscribe after Close.
var ErrClosed = errors.New("events: bus is closed")

// Subscribe adds a subscriber: handle runs on the subscriber's own goroutine,
// once per event published from now on, in publish order. name labels the
// subscriber in logs and in OnDrop. The returned func unsubscribes: events
// already queued are still handled, then the goroutine ends; it does not
// wait, so a handler may call it.
func (b *Bus) Subscribe(name string, handle func(Event)) (unsubscribe func(), err error) {
	if handle == nil {
		return nil, errors.New("events: Subscribe needs a handler")
	}
	s := &subscriber{name: name, handle: handle, queue: make(chan Event, b.cfg.QueueSize)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	b.subs = append(b.subs, s)
	b.wg.Add(1)
	go b.run(s)
	var once sync.Once
	return func() { once.Do(func() { b.remove(s) }) }, nil
}

func (b *Bus) remove(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, o := range b.subs {
		if o == s {
			b.subs = append(b.subs[:i:i], b.subs[i+1:]...)
			close(s.queue)
			return
		}
	}
}

// Publish fills in e's ID, Seq and (if zero) Time and queues it for every
// subscriber. It never blocks; after Close it does nothing.
func (b *Bus) Publish(e Event) {
	e.ID = newID()
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	// Under the lock, so that every subscriber sees the same order and Seq
	// follows it; each send is non-blocking.
	b.seq++
	e.Seq = b.seq
	for _, s := range b.subs {
		select {
		case s.queue <- e:
		default:
			s.dropped++
			b.cfg.OnDrop(s.name)
			// Logged at 1, 2, 4, 8, … drops: visible, never a flood.
			if s.dropped&(s.dropped-1) == 0 {
				b.log.Warn("event subscriber is too slow; events dropped",
					zap.String("subscriber", s.name), zap.Uint64("dropped", s.dropped),
					zap.String("type", string(e.Type)), zap.String("call", e.CallID))
			}
		}
	}
}

// run is one subscriber's goroutine.
func (b *Bus) run(s *subscriber) {
	defer b.wg.Done()
	for e := range s.queue {
		b.deliver(s, e)
	}
}

// deliver runs one handler call; a panicking subscriber loses that event,
// not the process.
func (b *Bus) deliver(s *subscriber, e Event) {
	defer func() {
		if v := recover(); v != nil {
			b.log.Error("event subscriber panicked", zap.String("subscriber", s.name),
				zap.String("type", string(e.Type)), zap.Any("panic", v), zap.Stack("stack"))
		}
	}()
	s.handle(e)
}

// Close stops accepting events, lets every subscriber handle what is already
// queued and returns when all of them are done. Idempotent.
func (b *Bus) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		for _, s := range b.subs {
			close(s.queue)
		}
		b.subs = nil
	}
	b.mu.Unlock()
	b.wg.Wait()
}

package main

import (
	"context"
	"os"
	"syscall"
	"time"

	"github.com/orville/orville/events"
	"github.com/orville/orville/roommgr"
	"go.uber.org/zap"
)

// drainer decides when `orville serve` stops. SIGTERM (what systemd,
// Kubernetes and podman send to stop a service) or POST /v1/drain starts a
// drain: the room manager refuses new calls at once, running calls go on
// and can still be joined, and the process stops when the last call ends or
// at --drain-timeout, whichever comes first. SIGINT (Ctrl-C at a terminal),
// or a second SIGTERM during a drain, stops it now. Stopping ends the calls
// still running with reason server_shutdown.
//
// It learns of calls ending as a subscriber of the events bus, and checks
// the room manager's count once a second besides, so that an event lost to
// a full queue cannot keep the process alive.
type drainer struct {
	rooms   *roommgr.Manager
	timeout time.Duration
	log     *zap.Logger
	// onStart, if set, runs when the drain starts (the cluster node
	// publishes its new load at once).
	onStart func()
	ended   chan struct{}
}

// drainCheckInterval is the fallback poll of the room manager while draining.
const drainCheckInterval = time.Second

func newDrainer(rooms *roommgr.Manager, timeout time.Duration, log *zap.Logger) *drainer {
	return &drainer{rooms: rooms, timeout: timeout, log: log.Named("drain"), ended: make(chan struct{}, 1)}
}

// handleEvent is the drainer's events subscriber.
func (d *drainer) handleEvent(e events.Event) {
	if e.Type != events.CallEnded {
		return
	}
	select {
	case d.ended <- struct{}{}:
	default:
	}
}

// wait returns when the server must stop: ctx done (tests, at once), SIGINT
// or a second signal (at once), or the drain completed or timed out.
func (d *drainer) wait(ctx context.Context, sigs <-chan os.Signal) {
	select {
	case <-ctx.Done():
		d.log.Info("shutting down", zap.Int("calls", d.rooms.Count()))
		return
	case s := <-sigs:
		if s != syscall.SIGTERM {
			d.log.Warn("interrupted: ending every call now (server_shutdown)", zap.Stringer("signal", s), zap.Int("calls", d.rooms.Count()))
			return
		}
		d.rooms.Drain()
		d.log.Warn("SIGTERM: draining", d.startFields()...)
	case <-d.rooms.DrainStarted():
		d.log.Warn("drain requested through the API (POST /v1/drain): draining", d.startFields()...)
	}
	if d.onStart != nil {
		d.onStart()
	}
	start := time.Now()
	deadline := time.NewTimer(d.timeout)
	defer deadline.Stop()
	check := time.NewTicker(drainCheckInterval)
	defer check.Stop()
	last := -1
	for {
		n := d.rooms.Count()
		if n == 0 {
			d.log.Info("drained: the last call has ended; stopping", zap.Duration("after", time.Since(start).Round(time.Millisecond)))
			return
		}
		if n != last && last >= 0 {
			d.log.Info("draining: a call ended", zap.Int("callsLeft", n))
		}
		last = n
		select {
		case <-d.ended:
		case <-check.C:
		case <-deadline.C:
			d.log.Warn("drain timeout: ending the calls still running (server_shutdown)", zap.Int("calls", n),
				zap.Duration("drainTimeout", d.timeout))
			return
		case s := <-sigs:
			d.log.Warn("signal during the drain: ending the calls still running now (server_shutdown)",
				zap.Stringer("signal", s), zap.Int("calls", n))
			return
		case <-ctx.Done():
			return
		}
	}
}

func (d *drainer) startFields() []zap.Field {
	return []zap.Field{zap.String("newCalls", "refused (503 draining)"), zap.Int("calls", d.rooms.Count()),
		zap.Duration("drainTimeout", d.timeout),
		zap.String("then", "exit when the last call ends or at the timeout; SIGTERM or SIGINT again ends the calls now")}
}

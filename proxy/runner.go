package proxy

import (
	"context"
	"log/slog"
	"time"

	"github.com/minik8s/minik8s/client/workqueue"
)

// syncRunner calls a sync function when triggered, at most once per
// minInterval, and coalesces triggers: however many arrive while a sync
// runs or waits for its turn, they cause exactly one more sync. Every
// period (counted from the last successful full sync) and at start it asks
// for a full sync. A failed sync is retried as a full sync after a backoff
// that doubles from minInterval up to period.
type syncRunner struct {
	minInterval time.Duration
	period      time.Duration
	clock       workqueue.Clock
	log         *slog.Logger
	sync        func(ctx context.Context, full bool) error

	kick chan struct{} // buffered 1: "something changed"
}

func newSyncRunner(minInterval, period time.Duration, clock workqueue.Clock, log *slog.Logger, sync func(ctx context.Context, full bool) error) *syncRunner {
	if clock == nil {
		clock = workqueue.RealClock{}
	}
	return &syncRunner{minInterval: minInterval, period: period, clock: clock, log: log, sync: sync, kick: make(chan struct{}, 1)}
}

// Trigger asks for a sync; it never blocks.
func (r *syncRunner) Trigger() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// waitUntil blocks until the clock reaches t or ctx ends (false).
func (r *syncRunner) waitUntil(ctx context.Context, t time.Time) bool {
	if !t.After(r.clock.Now()) {
		return ctx.Err() == nil
	}
	ch, stop := r.clock.TimerAt(t)
	defer stop()
	select {
	case <-ctx.Done():
		return false
	case <-ch:
		return true
	}
}

// Run syncs until ctx ends. The first sync is full and immediate.
func (r *syncRunner) Run(ctx context.Context) {
	full := true
	var lastStart, nextFull, retryAt time.Time
	failures := 0
	for {
		if !full {
			// Wait for a change, the periodic resync or a retry.
			deadline, isRetry := nextFull, false
			if !retryAt.IsZero() && retryAt.Before(deadline) {
				deadline, isRetry = retryAt, true
			}
			ch, stop := r.clock.TimerAt(deadline)
			select {
			case <-ctx.Done():
				stop()
				return
			case <-r.kick:
				// Put it back: it is consumed just before the sync, so
				// changes during the rate-limit wait are folded in.
				r.Trigger()
			case <-ch:
				full = true
				if isRetry {
					r.log.Info("retrying failed sync", "failures", failures)
				}
			}
			stop()
		}
		if !lastStart.IsZero() && !r.waitUntil(ctx, lastStart.Add(r.minInterval)) {
			return
		}
		select {
		case <-r.kick:
		default:
		}
		lastStart = r.clock.Now()
		err := r.sync(ctx, full)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			backoff := r.minInterval
			for i := 1; i < failures && backoff < r.period; i++ {
				backoff *= 2
			}
			backoff = min(max(backoff, time.Second), r.period)
			retryAt = r.clock.Now().Add(backoff)
			r.log.Error("sync failed", "err", err, "full", full, "failures", failures, "retryIn", backoff)
			if nextFull.IsZero() {
				nextFull = r.clock.Now().Add(r.period)
			}
			full = false // the retry timer brings a full sync
			continue
		}
		failures, retryAt = 0, time.Time{}
		if full {
			nextFull = lastStart.Add(r.period)
		}
		full = false
	}
}

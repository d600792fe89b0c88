package kubelet

import (
	"context"
	"sync"
	"time"
)

// Clock is the kubelet's time source; tests substitute a FakeClock so that
// backoff and probe timing are checked without waiting.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// FakeClock is a Clock that moves only when told to.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a FakeClock at t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{now: t} }

// Now implements Clock.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Step moves the clock forward by d.
func (c *FakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// every runs fn each period until ctx ends, each call under a context
// bounded by timeout; with now, the first call is at once rather than
// after one period. The kubelet's background loops (node status, Lease,
// relist, housekeeping, log rotation, image GC) all have this shape.
func every(ctx context.Context, period, timeout time.Duration, now bool, fn func(context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if now {
			fctx, cancel := context.WithTimeout(ctx, timeout)
			fn(fctx)
			cancel()
		}
		now = true
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

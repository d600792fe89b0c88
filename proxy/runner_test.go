package proxy

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/minik8s/minik8s/client/workqueue/clocktest"
)

// fakeClock is the shared manually advanced clock.
type fakeClock = clocktest.FakeClock

func newFakeClock() *fakeClock { return clocktest.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) }

// syncCall is one call of the runner's sync function; the call returns
// when the test sends its result on done.
type syncCall struct {
	full bool
	at   time.Time
	done chan error
}

type runnerHarness struct {
	t     *testing.T
	clock *fakeClock
	r     *syncRunner
	calls chan syncCall
}

func startRunner(t *testing.T, minInterval, period time.Duration) *runnerHarness {
	h := &runnerHarness{t: t, clock: newFakeClock(), calls: make(chan syncCall)}
	h.r = newSyncRunner(minInterval, period, h.clock, slog.New(slog.DiscardHandler), func(ctx context.Context, full bool) error {
		c := syncCall{full: full, at: h.clock.Now(), done: make(chan error)}
		select {
		case h.calls <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err := <-c.done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h
}

// next waits for the next sync call.
func (h *runnerHarness) next() syncCall {
	h.t.Helper()
	select {
	case c := <-h.calls:
		return c
	case <-time.After(30 * time.Second):
		h.t.Fatal("no sync call")
		return syncCall{}
	}
}

// nextStepping advances the fake clock in steps until a sync call comes.
func (h *runnerHarness) nextStepping(step time.Duration) syncCall {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case c := <-h.calls:
			return c
		case <-time.After(5 * time.Millisecond):
			h.clock.Step(step)
		}
	}
	h.t.Fatal("no sync call")
	return syncCall{}
}

// none checks that no sync starts for a while of real time (the fake
// clock does not move, so only triggers could start one).
func (h *runnerHarness) none(why string) {
	h.t.Helper()
	select {
	case c := <-h.calls:
		h.t.Fatalf("unexpected sync (full=%v): %s", c.full, why)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestRunnerFirstSyncIsFullAndChangesDuringSyncCauseExactlyOneMore(t *testing.T) {
	h := startRunner(t, 0, time.Hour)
	c := h.next()
	if !c.full {
		t.Error("first sync is not full")
	}
	for range 50 {
		h.r.Trigger()
	}
	c.done <- nil
	c = h.next()
	if c.full {
		t.Error("a sync caused by changes should not be full")
	}
	c.done <- nil
	h.none("50 triggers during one sync must cause exactly one more sync")
	h.r.Trigger()
	h.next().done <- nil
}

func TestRunnerRateLimitsAndFoldsChangesIntoOneSync(t *testing.T) {
	const minInterval = 2 * time.Second
	h := startRunner(t, minInterval, time.Hour)
	first := h.next()
	first.done <- nil
	for range 10 {
		h.r.Trigger()
	}
	h.none("the minimum interval has not passed")
	second := h.nextStepping(100 * time.Millisecond)
	if got := second.at.Sub(first.at); got < minInterval {
		t.Errorf("second sync started %s after the first, want at least %s", got, minInterval)
	}
	// Changes while waiting for the turn are part of that sync.
	second.done <- nil
	h.clock.Step(10 * time.Minute) // far past minInterval, short of the resync
	h.none("10 triggers while waiting must fold into one sync")
}

func TestRunnerPeriodicFullResync(t *testing.T) {
	const period = 30 * time.Second
	h := startRunner(t, time.Second, period)
	first := h.next()
	first.done <- nil
	h.none("nothing changed and the period has not passed")
	c := h.nextStepping(time.Second)
	if !c.full {
		t.Error("periodic sync is not full")
	}
	if got := c.at.Sub(first.at); got < period {
		t.Errorf("periodic sync came %s after the first, want at least %s", got, period)
	}
	c.done <- nil
}

func TestRunnerRetriesFailureAsFullSync(t *testing.T) {
	h := startRunner(t, 100*time.Millisecond, time.Hour)
	c := h.next()
	c.done <- errors.New("iptables-restore: boom")
	h.none("retry waits for its backoff")
	c = h.nextStepping(200 * time.Millisecond)
	if !c.full {
		t.Error("a retry after a failure must be a full sync")
	}
	c.done <- errors.New("still broken")
	c = h.nextStepping(200 * time.Millisecond)
	if !c.full {
		t.Error("second retry is not full")
	}
	c.done <- nil
	h.none("after a success nothing is pending")
}

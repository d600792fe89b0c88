// Package clocktest provides FakeClock, a manually advanced
// workqueue.Clock for tests of anything that waits on time (queues, leader
// election, sync loops): timers fire only when Step moves the clock past
// their deadline, so tests check timing without sleeping.
package clocktest

import (
	"sync"
	"time"
)

// FakeClock implements workqueue.Clock.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*timer]struct{}
}

type timer struct {
	at time.Time
	ch chan time.Time
}

// New returns a FakeClock reading start.
func New(start time.Time) *FakeClock {
	return &FakeClock{now: start, timers: map[*timer]struct{}{}}
}

// Now returns the clock's current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// TimerAt returns a channel that receives once the clock reaches at (at
// once if it already has) and a function that cancels the timer.
func (c *FakeClock) TimerAt(at time.Time) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{at: at, ch: make(chan time.Time, 1)}
	if !at.After(c.now) {
		t.ch <- c.now
		return t.ch, func() {}
	}
	c.timers[t] = struct{}{}
	return t.ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.timers, t)
	}
}

// Step advances the clock by d and fires every timer now due.
func (c *FakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
			delete(c.timers, t)
		}
	}
}

// Waiting reports how many timers are armed: tests step time once the
// goroutines under test have reached their next wait.
func (c *FakeClock) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

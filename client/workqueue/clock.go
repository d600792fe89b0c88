package workqueue

import "time"

// Clock is the queue's view of time. Timers are expressed as an absolute
// deadline rather than a duration so that a test clock can advance between
// the moment the queue reads Now and the moment it arms its timer without the
// deadline drifting.
type Clock interface {
	Now() time.Time
	// TimerAt returns a channel that receives once the clock reaches t, and a
	// function that releases the timer when the caller stops waiting.
	TimerAt(t time.Time) (<-chan time.Time, func())
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// TimerAt arms a time.Timer for the remaining time until t.
func (RealClock) TimerAt(t time.Time) (<-chan time.Time, func()) {
	timer := time.NewTimer(time.Until(t))
	return timer.C, func() { timer.Stop() }
}

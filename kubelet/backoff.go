package kubelet

import (
	"sync"
	"time"
)

// Crash-loop backoff, as in Kubernetes: a container that exits again soon
// after a restart waits 10s, then 20s, 40s ... at most 5 minutes; a
// container that ran for 10 minutes has earned a fresh start.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	backoffReset   = 10 * time.Minute
)

// Backoff tracks per-key restart delays (key = pod uid + container name,
// or an image for pull backoff). Safe for concurrent use.
type Backoff struct {
	clock          Clock
	initial, limit time.Duration
	resetAfter     time.Duration

	mu      sync.Mutex
	entries map[string]*backoffEntry
}

type backoffEntry struct {
	delay time.Duration // the wait that follows the last attempt
	last  time.Time     // when the last attempt was allowed
}

// NewBackoff returns a backoff of initial doubling to limit; an entry
// untouched for resetAfter is forgotten.
func NewBackoff(clock Clock, initial, limit, resetAfter time.Duration) *Backoff {
	return &Backoff{clock: clock, initial: initial, limit: limit, resetAfter: resetAfter, entries: map[string]*backoffEntry{}}
}

// Wait reports how long key must still wait before its next attempt (0
// means go ahead now).
func (b *Backoff) Wait(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok {
		return 0
	}
	now := b.clock.Now()
	if now.Sub(e.last) >= b.resetAfter {
		delete(b.entries, key)
		return 0
	}
	if left := e.last.Add(e.delay).Sub(now); left > 0 {
		return left
	}
	return 0
}

// Next records an attempt of key now and lengthens its delay.
func (b *Backoff) Next(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	e, ok := b.entries[key]
	if !ok || now.Sub(e.last) >= b.resetAfter {
		b.entries[key] = &backoffEntry{delay: b.initial, last: now}
		return
	}
	e.delay = min(e.delay*2, b.limit)
	e.last = now
}

// Reset forgets key (after it ran long enough to count as healthy).
func (b *Backoff) Reset(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.entries, key)
}

// Delay is key's current delay (0 if none), for messages.
func (b *Backoff) Delay(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[key]; ok {
		return e.delay
	}
	return 0
}

// ForgetPrefix drops every key starting with prefix (a deleted pod's).
func (b *Backoff) ForgetPrefix(prefix string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.entries {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(b.entries, k)
		}
	}
}

package workqueue

import (
	"math"
	"sync"
	"time"
)

// RateLimiter decides how long a key waits before it is retried.
type RateLimiter interface {
	// When records one more failure of key and returns how long to wait.
	When(key string) time.Duration
	// Forget clears key's failure history (call it after a success).
	Forget(key string)
	// NumRequeues reports how many failures are recorded for key.
	NumRequeues(key string) int
}

// Defaults of DefaultRateLimiter, chosen to match Kubernetes controllers:
// a failing key backs off 5ms, 10ms, 20ms ... up to about 16 minutes, and
// the whole queue never retries faster than 10 keys/s after a burst of 100.
const (
	DefaultBaseDelay = 5 * time.Millisecond
	DefaultMaxDelay  = 1000 * time.Second
	DefaultQPS       = 10
	DefaultBurst     = 100
)

// DefaultRateLimiter is per-key exponential backoff combined with an overall
// token bucket; the longer of the two delays wins.
func DefaultRateLimiter() RateLimiter {
	return MaxOf(
		NewExponentialRateLimiter(DefaultBaseDelay, DefaultMaxDelay),
		NewBucketRateLimiter(DefaultQPS, DefaultBurst),
	)
}

// ExponentialRateLimiter waits base*2^failures for a key, capped at max.
type ExponentialRateLimiter struct {
	base, max time.Duration

	mu       sync.Mutex
	failures map[string]int
}

// NewExponentialRateLimiter returns a per-key exponential backoff. A base
// <= 0 means DefaultBaseDelay; a max < base means max = base.
func NewExponentialRateLimiter(base, max time.Duration) *ExponentialRateLimiter {
	if base <= 0 {
		base = DefaultBaseDelay
	}
	if max < base {
		max = base
	}
	return &ExponentialRateLimiter{base: base, max: max, failures: map[string]int{}}
}

// When returns the backoff for key and counts one more failure.
func (r *ExponentialRateLimiter) When(key string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.failures[key]
	r.failures[key] = n + 1
	// Compute in float64 so that a key that failed thousands of times cannot
	// overflow time.Duration into a negative delay.
	d := float64(r.base) * math.Pow(2, float64(n))
	if d >= float64(r.max) {
		return r.max
	}
	return time.Duration(d)
}

// Forget resets key's backoff.
func (r *ExponentialRateLimiter) Forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.failures, key)
}

// NumRequeues reports key's failure count.
func (r *ExponentialRateLimiter) NumRequeues(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failures[key]
}

// BucketRateLimiter is a token bucket shared by all keys: it bounds the total
// retry rate of a queue no matter how many distinct keys fail. It keeps no
// per-key state, so Forget is a no-op and NumRequeues is always 0.
type BucketRateLimiter struct {
	qps   float64
	burst float64
	clock Clock

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewBucketRateLimiter returns a bucket refilled at qps tokens per second
// holding at most burst tokens; it starts full.
func NewBucketRateLimiter(qps float64, burst int) *BucketRateLimiter {
	if qps <= 0 {
		qps = DefaultQPS
	}
	if burst < 1 {
		burst = 1
	}
	return &BucketRateLimiter{qps: qps, burst: float64(burst), clock: RealClock{}, tokens: float64(burst)}
}

// When reserves one token and returns how long until that token exists.
// Reservations may drive the bucket negative: each caller queues behind the
// ones before it, which is what spreads a burst out at qps.
func (r *BucketRateLimiter) When(string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	if !r.last.IsZero() {
		r.tokens = math.Min(r.burst, r.tokens+now.Sub(r.last).Seconds()*r.qps)
	}
	r.last = now
	r.tokens--
	if r.tokens >= 0 {
		return 0
	}
	return time.Duration(-r.tokens / r.qps * float64(time.Second))
}

// Forget does nothing: the bucket has no per-key state.
func (r *BucketRateLimiter) Forget(string) {}

// NumRequeues is always 0: the bucket has no per-key state.
func (r *BucketRateLimiter) NumRequeues(string) int { return 0 }

type maxOf []RateLimiter

// MaxOf combines limiters: When is the longest of their delays, Forget
// forgets in all of them and NumRequeues is the highest count.
func MaxOf(limiters ...RateLimiter) RateLimiter { return maxOf(limiters) }

func (m maxOf) When(key string) time.Duration {
	var d time.Duration
	for _, l := range m {
		d = max(d, l.When(key))
	}
	return d
}

func (m maxOf) Forget(key string) {
	for _, l := range m {
		l.Forget(key)
	}
}

func (m maxOf) NumRequeues(key string) int {
	n := 0
	for _, l := range m {
		n = max(n, l.NumRequeues(key))
	}
	return n
}

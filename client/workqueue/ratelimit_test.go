package workqueue

import (
	"testing"
	"time"
)

func TestExponentialRateLimiter(t *testing.T) {
	tests := []struct {
		name      string
		base, max time.Duration
		failures  int // When calls before the one checked
		want      time.Duration
	}{
		{"first failure waits base", 5 * time.Millisecond, time.Second, 0, 5 * time.Millisecond},
		{"second doubles", 5 * time.Millisecond, time.Second, 1, 10 * time.Millisecond},
		{"fifth", 5 * time.Millisecond, time.Second, 4, 80 * time.Millisecond},
		{"capped at max", 5 * time.Millisecond, time.Second, 20, time.Second},
		{"no overflow after many failures", 5 * time.Millisecond, DefaultMaxDelay, 500, DefaultMaxDelay},
		{"zero base means default", 0, time.Second, 0, DefaultBaseDelay},
		{"max below base is raised to base", time.Second, time.Millisecond, 3, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewExponentialRateLimiter(tt.base, tt.max)
			for range tt.failures {
				r.When("k")
			}
			if got := r.When("k"); got != tt.want {
				t.Errorf("When = %v, want %v", got, tt.want)
			}
			if got := r.NumRequeues("k"); got != tt.failures+1 {
				t.Errorf("NumRequeues = %d, want %d", got, tt.failures+1)
			}
		})
	}
}

func TestExponentialRateLimiterForgetAndIsolation(t *testing.T) {
	r := NewExponentialRateLimiter(time.Millisecond, time.Hour)
	r.When("a")
	r.When("a")
	if got := r.When("b"); got != time.Millisecond {
		t.Errorf("b's first delay = %v; keys must not share backoff", got)
	}
	r.Forget("a")
	if got := r.NumRequeues("a"); got != 0 {
		t.Errorf("NumRequeues after Forget = %d", got)
	}
	if got := r.When("a"); got != time.Millisecond {
		t.Errorf("delay after Forget = %v, want base", got)
	}
}

func TestBucketRateLimiter(t *testing.T) {
	clock := newFakeClock()
	r := NewBucketRateLimiter(10, 2) // a token every 100ms, 2 saved up
	r.clock = clock

	steps := []struct {
		advance time.Duration
		want    time.Duration
	}{
		{0, 0},                      // burst token 1
		{0, 0},                      // burst token 2
		{0, 100 * time.Millisecond}, // bucket empty: wait for next token
		{0, 200 * time.Millisecond}, // queued behind the previous reservation
		{300 * time.Millisecond, 0}, // three tokens refilled, two were owed
		{time.Hour, 0},              // refill caps at burst...
		{0, 0},                      // ...so exactly two are free
		{0, 100 * time.Millisecond}, // and the third waits
	}
	for i, s := range steps {
		clock.Step(s.advance)
		if got := r.When("any"); got != s.want {
			t.Errorf("step %d: When = %v, want %v", i, got, s.want)
		}
	}
	if r.NumRequeues("any") != 0 {
		t.Errorf("bucket must keep no per-key count")
	}
}

func TestMaxOf(t *testing.T) {
	exp := NewExponentialRateLimiter(time.Second, time.Hour)
	bucket := NewBucketRateLimiter(1, 1)
	bucket.clock = newFakeClock()
	m := MaxOf(exp, bucket)

	if got := m.When("k"); got != time.Second { // exp 1s, bucket 0
		t.Errorf("first When = %v, want 1s", got)
	}
	if got := m.When("k"); got != 2*time.Second { // exp 2s, bucket 1s
		t.Errorf("second When = %v, want 2s", got)
	}
	if got := m.NumRequeues("k"); got != 2 {
		t.Errorf("NumRequeues = %d, want 2", got)
	}
	m.Forget("k")
	if got := m.NumRequeues("k"); got != 0 {
		t.Errorf("NumRequeues after Forget = %d, want 0", got)
	}
}

package workqueue

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func newTestQueue(t *testing.T, opts Options) *Queue {
	t.Helper()
	q, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(q.ShutDown)
	return q
}

// mustGet fails the test if Get does not return within a generous bound;
// the bound only turns a hang into a failure, it asserts no timing.
func mustGet(t *testing.T, q *Queue) string {
	t.Helper()
	type result struct {
		key      string
		shutdown bool
	}
	ch := make(chan result, 1)
	go func() {
		k, s := q.Get()
		ch <- result{k, s}
	}()
	select {
	case r := <-ch:
		if r.shutdown {
			t.Fatalf("Get reported shutdown")
		}
		return r.key
	case <-time.After(10 * time.Second):
		q.ShutDown() // release the goroutine
		t.Fatalf("Get did not return")
		return ""
	}
}

func TestQueueOrderAndDedupe(t *testing.T) {
	tests := []struct {
		name string
		adds []string
		want []string
	}{
		{"fifo", []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"duplicates collapse to first position", []string{"a", "b", "a", "c", "b"}, []string{"a", "b", "c"}},
		{"single key many times", []string{"x", "x", "x"}, []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newTestQueue(t, Options{})
			for _, k := range tt.adds {
				q.Add(k)
			}
			if q.Len() != len(tt.want) {
				t.Fatalf("Len = %d, want %d", q.Len(), len(tt.want))
			}
			for _, want := range tt.want {
				got := mustGet(t, q)
				if got != want {
					t.Errorf("Get = %q, want %q", got, want)
				}
				q.Done(got)
			}
			if q.Len() != 0 {
				t.Errorf("Len after draining = %d", q.Len())
			}
		})
	}
}

func TestQueueReAddWhileProcessing(t *testing.T) {
	q := newTestQueue(t, Options{})
	q.Add("a")
	if got := mustGet(t, q); got != "a" {
		t.Fatalf("Get = %q", got)
	}
	q.Add("a")
	q.Add("a")
	if q.Len() != 0 {
		t.Fatalf("a processing key must not be handed out again before Done; Len = %d", q.Len())
	}
	q.Add("b")
	if got := mustGet(t, q); got != "b" {
		t.Fatalf("Get = %q, want b", got)
	}
	q.Done("a")
	if q.Len() != 1 {
		t.Fatalf("re-added key must be queued once on Done; Len = %d", q.Len())
	}
	if got := mustGet(t, q); got != "a" {
		t.Fatalf("Get = %q, want a", got)
	}
	q.Done("a")
	q.Done("b")
	if q.Len() != 0 {
		t.Errorf("Len = %d, want 0", q.Len())
	}
	q.Done("never-got") // must be harmless
}

func TestQueueGetBlocksUntilAdd(t *testing.T) {
	q := newTestQueue(t, Options{})
	got := make(chan string, 1)
	go func() {
		k, _ := q.Get()
		got <- k
	}()
	select {
	case k := <-got:
		t.Fatalf("Get returned %q from an empty queue", k)
	default:
	}
	q.Add("late")
	select {
	case k := <-got:
		if k != "late" {
			t.Errorf("Get = %q", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Get did not wake on Add")
	}
}

func TestQueueShutDown(t *testing.T) {
	q := newTestQueue(t, Options{})
	q.Add("a")
	q.Add("b")
	q.ShutDown()
	if !q.ShuttingDown() {
		t.Fatal("ShuttingDown = false after ShutDown")
	}
	q.Add("c") // dropped
	q.AddAfter("d", time.Millisecond)
	// Keys queued before ShutDown are still handed out.
	for _, want := range []string{"a", "b"} {
		if k, shut := q.Get(); shut || k != want {
			t.Fatalf("Get = %q,%v; want %q,false", k, shut, want)
		}
	}
	if k, shut := q.Get(); !shut || k != "" {
		t.Fatalf("Get on drained shut-down queue = %q,%v", k, shut)
	}
	q.ShutDown() // idempotent
}

func TestQueueShutDownWakesBlockedGetters(t *testing.T) {
	q := newTestQueue(t, Options{})
	const workers = 4
	var wg sync.WaitGroup
	shut := make(chan bool, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, s := q.Get()
			shut <- s
		}()
	}
	q.ShutDown()
	wg.Wait()
	close(shut)
	for s := range shut {
		if !s {
			t.Error("blocked Get returned without shutdown")
		}
	}
}

func TestQueueShutDownWithDrain(t *testing.T) {
	q := newTestQueue(t, Options{})
	q.Add("a")
	k := mustGet(t, q)
	drained := make(chan struct{})
	go func() {
		q.ShutDownWithDrain()
		close(drained)
	}()
	// ShutDownWithDrain must not return while "a" is processing. Wait until
	// the shutdown is visible, then check it is still waiting.
	for !q.ShuttingDown() {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-drained:
		t.Fatal("ShutDownWithDrain returned while a key was processing")
	default:
	}
	q.Done(k)
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("ShutDownWithDrain did not return after Done")
	}
}

// TestQueueNoConcurrentProcessing hammers the queue from many producers and
// workers and checks a key is never held by two workers at once and every
// key added is processed after its last Add.
func TestQueueNoConcurrentProcessing(t *testing.T) {
	q := newTestQueue(t, Options{})
	const (
		keys      = 10
		producers = 4
		addsEach  = 2000
		workers   = 8
	)
	var (
		mu        sync.Mutex
		inFlight  = map[string]bool{}
		processed = map[string]int{}
		violation string
	)
	var workersWG sync.WaitGroup
	for range workers {
		workersWG.Add(1)
		go func() {
			defer workersWG.Done()
			for {
				k, shut := q.Get()
				if shut {
					return
				}
				mu.Lock()
				if inFlight[k] {
					violation = k
				}
				inFlight[k] = true
				mu.Unlock()
				runtime.Gosched() // widen the window a second worker could hit

				mu.Lock()
				inFlight[k] = false
				processed[k]++
				mu.Unlock()
				q.Done(k)
			}
		}()
	}
	var prodWG sync.WaitGroup
	for p := range producers {
		prodWG.Add(1)
		go func() {
			defer prodWG.Done()
			for i := range addsEach {
				q.Add(fmt.Sprintf("k%d", (i+p)%keys))
			}
		}()
	}
	prodWG.Wait()
	q.ShutDownWithDrain()
	workersWG.Wait()
	if violation != "" {
		t.Fatalf("key %q was processed by two workers at once", violation)
	}
	if len(processed) != keys {
		t.Fatalf("processed %d distinct keys, want %d", len(processed), keys)
	}
	if q.Len() != 0 {
		t.Fatalf("Len after drain = %d", q.Len())
	}
}

func TestQueueAddAfter(t *testing.T) {
	clock := newFakeClock()
	q := newTestQueue(t, Options{Clock: clock})

	q.AddAfter("late", 2*time.Second)
	q.AddAfter("soon", time.Second)
	q.AddAfter("now", 0)
	if q.Len() != 1 {
		t.Fatalf("Len = %d: only the zero-delay key is ready", q.Len())
	}
	if got := mustGet(t, q); got != "now" {
		t.Fatalf("Get = %q, want now", got)
	}

	clock.Step(time.Second)
	if got := mustGet(t, q); got != "soon" {
		t.Fatalf("Get = %q, want soon", got)
	}
	// "late" must still be waiting: a marker added now comes out first.
	q.Add("marker")
	if got := mustGet(t, q); got != "marker" {
		t.Fatalf("Get = %q, want marker (late released early?)", got)
	}
	clock.Step(time.Second)
	if got := mustGet(t, q); got != "late" {
		t.Fatalf("Get = %q, want late", got)
	}
}

func TestQueueAddAfterKeepsEarliestDeadline(t *testing.T) {
	tests := []struct {
		name        string
		first, then time.Duration
		readyAfter  time.Duration
	}{
		{"second add moves earlier", 10 * time.Second, time.Second, time.Second},
		{"second add never postpones", time.Second, 10 * time.Second, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			q := newTestQueue(t, Options{Clock: clock})
			q.AddAfter("k", tt.first)
			q.AddAfter("k", tt.then)
			clock.Step(tt.readyAfter)
			if got := mustGet(t, q); got != "k" {
				t.Fatalf("Get = %q", got)
			}
			q.Done("k")
			// Only one delayed entry existed: nothing more arrives later.
			clock.Step(time.Hour)
			q.Add("marker")
			if got := mustGet(t, q); got != "marker" {
				t.Fatalf("Get = %q, want marker: the key was queued twice", got)
			}
		})
	}
}

func TestQueueAddAfterDedupesWithReadyKey(t *testing.T) {
	clock := newFakeClock()
	q := newTestQueue(t, Options{Clock: clock})
	q.Add("k")
	q.AddAfter("k", time.Second)
	clock.Step(time.Second)
	q.Add("marker")
	// Wait until the delayed "k" has been released (it is deduped into the
	// waiting "k"), observable as: after draining, nothing else is left.
	var got []string
	for range 2 {
		k := mustGet(t, q)
		got = append(got, k)
		q.Done(k)
	}
	if got[0] != "k" || got[1] != "marker" {
		t.Fatalf("got %v, want [k marker]", got)
	}
}

func TestQueueAddRateLimited(t *testing.T) {
	clock := newFakeClock()
	q := newTestQueue(t, Options{
		Clock:       clock,
		RateLimiter: NewExponentialRateLimiter(time.Second, time.Minute),
	})
	delays := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	for i, d := range delays {
		q.AddRateLimited("k")
		if n := q.NumRequeues("k"); n != i+1 {
			t.Fatalf("NumRequeues = %d, want %d", n, i+1)
		}
		clock.Step(d - time.Millisecond)
		q.Add("marker")
		if got := mustGet(t, q); got != "marker" {
			t.Fatalf("retry %d released before its backoff", i)
		}
		q.Done("marker")
		clock.Step(time.Millisecond)
		if got := mustGet(t, q); got != "k" {
			t.Fatalf("Get = %q, want k", got)
		}
		q.Done("k")
	}
	q.Forget("k")
	if n := q.NumRequeues("k"); n != 0 {
		t.Fatalf("NumRequeues after Forget = %d", n)
	}
	q.AddRateLimited("k")
	clock.Step(time.Second)
	if got := mustGet(t, q); got != "k" {
		t.Fatalf("after Forget the backoff should restart at base")
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name, queue string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelValue(m, "name") != queue {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestQueueMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	clock := newFakeClock()
	a := newTestQueue(t, Options{Name: "deployments", Registerer: reg, Clock: clock})
	b := newTestQueue(t, Options{Name: "pods", Registerer: reg, Clock: clock})

	a.Add("x")
	a.Add("x") // deduped: not an add
	a.Add("y")
	b.Add("z")
	k := mustGet(t, a)
	clock.Step(3 * time.Second)
	a.Done(k)
	a.AddRateLimited("x")

	tests := []struct {
		metric, queue string
		want          float64
	}{
		{"workqueue_adds_total", "deployments", 2},
		{"workqueue_depth", "deployments", 1},
		{"workqueue_work_duration_seconds", "deployments", 1},
		{"workqueue_queue_duration_seconds", "deployments", 1},
		{"workqueue_retries_total", "deployments", 1},
		{"workqueue_adds_total", "pods", 1},
		{"workqueue_depth", "pods", 1},
	}
	for _, tt := range tests {
		if got := metricValue(t, reg, tt.metric, tt.queue); got != tt.want {
			t.Errorf("%s{name=%q} = %v, want %v", tt.metric, tt.queue, got, tt.want)
		}
	}
}

func TestNewFailsOnConflictingMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Same name, different type and labels: registration must fail, not panic.
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "workqueue_depth", Help: "x"}))
	if _, err := New(Options{Name: "q", Registerer: reg}); err == nil {
		t.Fatal("New succeeded despite a conflicting metric")
	}
}

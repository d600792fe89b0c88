package workqueue

import (
	"container/heap"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Interface is what a controller needs from its queue. *Queue implements it;
// a controller's unit test may substitute its own.
type Interface interface {
	Add(key string)
	AddAfter(key string, d time.Duration)
	AddRateLimited(key string)
	Forget(key string)
	NumRequeues(key string) int
	Get() (key string, shutdown bool)
	Done(key string)
	Len() int
	ShutDown()
	ShutDownWithDrain()
	ShuttingDown() bool
}

// Options configure a Queue. The zero value is a usable unnamed queue with
// the default rate limiter and no metrics.
type Options struct {
	// Name labels the queue's metrics; use the controller's name.
	Name string
	// RateLimiter decides AddRateLimited delays; nil means DefaultRateLimiter().
	RateLimiter RateLimiter
	// Registerer receives the queue's metrics; nil means no metrics.
	Registerer prometheus.Registerer
	// Clock is the time source; nil means the wall clock. Tests pass their own.
	Clock Clock
}

// Queue is a rate-limited, delaying work queue of string keys; see the
// package doc for its semantics. Create it with New and always ShutDown it:
// ShutDown stops the goroutine that releases delayed keys.
type Queue struct {
	name    string
	clock   Clock
	limiter RateLimiter
	metrics *queueMetrics

	mu   sync.Mutex
	cond *sync.Cond // signalled when queue grows, processing shrinks or on shutdown

	// queue holds keys ready for Get, in FIFO order, each at most once.
	queue []string
	// dirty holds every key that must be processed (again): those in queue,
	// and those processing that were re-added. The value is when it was added.
	dirty map[string]time.Time
	// processing holds keys handed out by Get and not yet Done, with the
	// time Get returned them.
	processing   map[string]time.Time
	shuttingDown bool

	// Delayed keys, ordered by readiness; waitingIdx finds a key's entry so
	// that a second AddAfter only ever moves it earlier.
	waiting    waitHeap
	waitingIdx map[string]*waitEntry
	loopOn     bool          // the delay loop goroutine has been started
	wake       chan struct{} // nudges the delay loop; buffered 1
	stop       chan struct{} // closed by ShutDown to end the delay loop
	loopDone   chan struct{} // closed when the delay loop has returned
}

// New returns a Queue. It fails only when the metrics cannot be registered
// (a different metric with the same name already exists in Registerer).
func New(opts Options) (*Queue, error) {
	q := &Queue{
		name:       opts.Name,
		clock:      opts.Clock,
		limiter:    opts.RateLimiter,
		dirty:      map[string]time.Time{},
		processing: map[string]time.Time{},
		waitingIdx: map[string]*waitEntry{},
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		loopDone:   make(chan struct{}),
	}
	q.cond = sync.NewCond(&q.mu)
	if q.clock == nil {
		q.clock = RealClock{}
	}
	if q.limiter == nil {
		q.limiter = DefaultRateLimiter()
	}
	if opts.Registerer != nil {
		m, err := newQueueMetrics(opts.Registerer, opts.Name)
		if err != nil {
			return nil, fmt.Errorf("workqueue %q: registering metrics: %w", opts.Name, err)
		}
		q.metrics = m
	}
	return q, nil
}

// Add marks key for processing. It is a no-op if key is already waiting, or
// after ShutDown. If key is being processed it will be handed out again after
// Done.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *Queue) addLocked(key string) {
	if q.shuttingDown {
		return
	}
	if _, ok := q.dirty[key]; ok {
		return
	}
	q.dirty[key] = q.clock.Now()
	q.metrics.added()
	if _, ok := q.processing[key]; ok {
		return // Done will queue it
	}
	q.enqueueLocked(key)
}

func (q *Queue) enqueueLocked(key string) {
	q.queue = append(q.queue, key)
	q.metrics.enqueued()
	q.cond.Signal()
}

// Get blocks until a key is ready and returns it; the caller must call
// Done(key) when finished. shutdown is true (and key empty) once the queue is
// shut down and empty: the worker should return.
func (q *Queue) Get() (key string, shutdown bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.queue) == 0 && !q.shuttingDown {
		q.cond.Wait()
	}
	if len(q.queue) == 0 {
		return "", true
	}
	key = q.queue[0]
	q.queue[0] = "" // let the backing array forget the string
	q.queue = q.queue[1:]
	now := q.clock.Now()
	q.metrics.get(now.Sub(q.dirty[key]))
	delete(q.dirty, key)
	q.processing[key] = now
	return key, false
}

// Done marks key as finished. If it was re-added while processing, it is
// queued again now.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	started, ok := q.processing[key]
	if !ok {
		return
	}
	q.metrics.done(q.clock.Now().Sub(started))
	delete(q.processing, key)
	if _, ok := q.dirty[key]; ok {
		q.enqueueLocked(key)
	}
	// ShutDownWithDrain waits for processing to empty.
	q.cond.Broadcast()
}

// Len is the number of keys ready for Get (not counting delayed keys or keys
// being processed).
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// AddAfter adds key once d has passed. If key is already delayed, the
// earlier of the two deadlines wins. d <= 0 is Add.
func (q *Queue) AddAfter(key string, d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shuttingDown {
		return
	}
	if d <= 0 {
		q.addLocked(key)
		return
	}
	readyAt := q.clock.Now().Add(d)
	if e, ok := q.waitingIdx[key]; ok {
		if readyAt.Before(e.readyAt) {
			e.readyAt = readyAt
			heap.Fix(&q.waiting, e.index)
		}
	} else {
		e := &waitEntry{key: key, readyAt: readyAt}
		heap.Push(&q.waiting, e)
		q.waitingIdx[key] = e
	}
	if !q.loopOn {
		q.loopOn = true
		go q.delayLoop()
	}
	select {
	case q.wake <- struct{}{}:
	default: // a nudge is already pending
	}
}

// AddRateLimited adds key after the rate limiter's delay for it; each call
// counts as one more failure of key.
func (q *Queue) AddRateLimited(key string) {
	q.metrics.retry()
	q.AddAfter(key, q.limiter.When(key))
}

// Forget resets key's backoff; call it when key was processed successfully.
// It does not remove key from the queue.
func (q *Queue) Forget(key string) { q.limiter.Forget(key) }

// NumRequeues is how many times key was rate-limited since its last Forget.
func (q *Queue) NumRequeues(key string) int { return q.limiter.NumRequeues(key) }

// ShutDown makes Get return shutdown=true once the queue is empty, drops
// later Adds and delayed keys, and stops the delay goroutine. Keys already
// queued are still handed out so workers can finish them.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	if q.shuttingDown {
		q.mu.Unlock()
		return
	}
	q.shuttingDown = true
	loopOn := q.loopOn
	close(q.stop)
	q.cond.Broadcast()
	q.mu.Unlock()
	if loopOn {
		<-q.loopDone
	}
}

// ShutDownWithDrain is ShutDown, then waits until every key handed out by
// Get has been marked Done. Use it when workers must finish before exit.
func (q *Queue) ShutDownWithDrain() {
	q.ShutDown()
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.processing) > 0 {
		q.cond.Wait()
	}
}

// ShuttingDown reports whether ShutDown was called.
func (q *Queue) ShuttingDown() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.shuttingDown
}

// delayLoop moves delayed keys into the queue when they become ready. It is
// started by the first AddAfter and stopped by ShutDown.
func (q *Queue) delayLoop() {
	defer close(q.loopDone)
	for {
		q.mu.Lock()
		now := q.clock.Now()
		for len(q.waiting) > 0 && !q.waiting[0].readyAt.After(now) {
			e := heap.Pop(&q.waiting).(*waitEntry)
			delete(q.waitingIdx, e.key)
			q.addLocked(e.key)
		}
		var fire <-chan time.Time
		release := func() {}
		if len(q.waiting) > 0 {
			fire, release = q.clock.TimerAt(q.waiting[0].readyAt)
		}
		q.mu.Unlock()

		select {
		case <-q.stop:
			release()
			return
		case <-q.wake:
		case <-fire:
		}
		release()
	}
}

type waitEntry struct {
	key     string
	readyAt time.Time
	index   int
}

// waitHeap is a min-heap of delayed keys by readiness (container/heap).
type waitHeap []*waitEntry

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].readyAt.Before(h[j].readyAt) }
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *waitHeap) Push(x any) {
	e := x.(*waitEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *waitHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

var _ Interface = (*Queue)(nil)

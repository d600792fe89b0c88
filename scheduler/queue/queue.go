// Package queue owns the scheduler's scheduling queue, which holds every
// pod waiting for a node in one of three places:
//
//   - the active queue, popped by the scheduling loop: highest
//     spec.priority first, then the pod that entered the queue first;
//   - the backoff queue: pods whose last attempt failed wait there
//     1s, 2s, 4s ... up to 10s (per pod, doubling with each attempt)
//     before they become active again;
//   - the unschedulable pods: pods no node could take wait there until a
//     cluster event that could help them (a node added or changed, a bound
//     pod deleted, as the framework decides) moves them back, or until they
//     have waited 60s.
//
// A pod handed out by Pop is "in flight" until the scheduler reports back
// (Done, or AddUnschedulableIfNotPresent); events that arrive meanwhile are
// remembered so that a pod rejected on a stale view is retried soon.
//
// The queue is fed by the scheduler's informer handlers and drained by its
// scheduling loop; it does no I/O.
package queue

import (
	"context"
	"errors"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/workqueue"
	"github.com/minik8s/minik8s/scheduler/framework"
)

// Defaults, as in kube-scheduler except the shorter unschedulable limit.
const (
	DefaultInitialBackoff     = time.Second
	DefaultMaxBackoff         = 10 * time.Second
	DefaultMaxInUnschedulable = 60 * time.Second
)

// ErrClosed is returned by Pop once the queue is closed.
var ErrClosed = errors.New("scheduling queue is closed")

// Location says where a queued pod waits.
type Location string

// Where a pod can be.
const (
	Active        Location = "active"
	Backoff       Location = "backoff"
	Unschedulable Location = "unschedulable"
	InFlight      Location = "in-flight"
	NotQueued     Location = ""
)

// QueuedPodInfo is a pod in the queue with its scheduling history.
type QueuedPodInfo struct {
	*framework.PodInfo
	// Timestamp is when the pod last entered the queue; it orders pods of
	// equal priority (earlier first).
	Timestamp time.Time
	// FirstSeen is when the pod was first added.
	FirstSeen time.Time
	// Attempts counts Pops.
	Attempts int
	// SchedulingCycle is the queue's cycle number at the pod's last Pop.
	SchedulingCycle int64
	// UnschedulablePlugins are the plugins that rejected the pod in its
	// last attempt; the scheduler sets them before handing the pod back.
	UnschedulablePlugins map[string]struct{}

	backoffExpiry time.Time
	seq           uint64
	loc           Location
	index         int // in its heap
}

// Options configure a queue; zero values mean the defaults.
type Options struct {
	Clock              workqueue.Clock
	InitialBackoff     time.Duration
	MaxBackoff         time.Duration
	MaxInUnschedulable time.Duration
	// IsInterested decides whether a cluster event may help a pod that the
	// named plugins rejected; nil means every event helps every pod.
	IsInterested func(ev framework.ClusterEvent, rejectedBy map[string]struct{}) bool
}

type inFlight struct {
	deleted bool
	updated *corev1.Pod
}

// PriorityQueue is the scheduling queue. Safe for concurrent use.
type PriorityQueue struct {
	opts  Options
	clock workqueue.Clock

	mu               sync.Mutex
	active           podHeap
	backoff          podHeap
	unschedulable    map[types.UID]*QueuedPodInfo
	pods             map[types.UID]*QueuedPodInfo // every queued pod, by uid
	inFlight         map[types.UID]*inFlight
	schedulingCycle  int64
	moveRequestCycle int64
	seq              uint64
	closed           bool

	wake   chan struct{} // "the active queue may be non-empty"
	kick   chan struct{} // "the backoff queue's head may have changed"
	closeC chan struct{}
}

// New returns an empty queue.
func New(opts Options) *PriorityQueue {
	if opts.Clock == nil {
		opts.Clock = workqueue.RealClock{}
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = DefaultInitialBackoff
	}
	if opts.MaxBackoff < opts.InitialBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.InitialBackoff)
	}
	if opts.MaxInUnschedulable <= 0 {
		opts.MaxInUnschedulable = DefaultMaxInUnschedulable
	}
	if opts.IsInterested == nil {
		opts.IsInterested = func(framework.ClusterEvent, map[string]struct{}) bool { return true }
	}
	return &PriorityQueue{
		opts:          opts,
		clock:         opts.Clock,
		active:        podHeap{less: activeLess},
		backoff:       podHeap{less: backoffLess},
		unschedulable: map[types.UID]*QueuedPodInfo{},
		pods:          map[types.UID]*QueuedPodInfo{},
		inFlight:      map[types.UID]*inFlight{},
		wake:          make(chan struct{}, 1),
		kick:          make(chan struct{}, 1),
		closeC:        make(chan struct{}),
	}
}

// activeLess: higher priority first, then earlier Timestamp, then arrival.
func activeLess(a, b *QueuedPodInfo) bool {
	pa, pb := framework.Priority(a.Pod), framework.Priority(b.Pod)
	if pa != pb {
		return pa > pb
	}
	if !a.Timestamp.Equal(b.Timestamp) {
		return a.Timestamp.Before(b.Timestamp)
	}
	return a.seq < b.seq
}

func backoffLess(a, b *QueuedPodInfo) bool {
	if !a.backoffExpiry.Equal(b.backoffExpiry) {
		return a.backoffExpiry.Before(b.backoffExpiry)
	}
	return a.seq < b.seq
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Add queues a new pending pod (or updates it if already known).
func (q *PriorityQueue) Add(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pods[pod.UID] != nil || q.inFlight[pod.UID] != nil {
		q.updateLocked(pod)
		return
	}
	now := q.clock.Now()
	q.pushActiveLocked(&QueuedPodInfo{PodInfo: framework.NewPodInfo(pod), Timestamp: now, FirstSeen: now})
}

func (q *PriorityQueue) pushActiveLocked(p *QueuedPodInfo) {
	q.seq++
	p.seq = q.seq
	p.loc = Active
	q.pods[p.Pod.UID] = p
	q.active.push(p)
	signal(q.wake)
}

func (q *PriorityQueue) pushBackoffLocked(p *QueuedPodInfo) {
	q.seq++
	p.seq = q.seq
	p.loc = Backoff
	q.pods[p.Pod.UID] = p
	q.backoff.push(p)
	signal(q.kick)
}

func (q *PriorityQueue) parkLocked(p *QueuedPodInfo) {
	p.loc = Unschedulable
	q.pods[p.Pod.UID] = p
	q.unschedulable[p.Pod.UID] = p
}

// removeLocked takes p out of wherever it waits.
func (q *PriorityQueue) removeLocked(p *QueuedPodInfo) {
	switch p.loc {
	case Active:
		q.active.remove(p)
	case Backoff:
		q.backoff.remove(p)
	case Unschedulable:
		delete(q.unschedulable, p.Pod.UID)
	}
	delete(q.pods, p.Pod.UID)
	p.loc = NotQueued
}

// Pop blocks until a pod is active and hands it out (in flight), or fails
// when ctx ends or the queue is closed.
func (q *PriorityQueue) Pop(ctx context.Context) (*QueuedPodInfo, error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, ErrClosed
		}
		if q.active.len() > 0 {
			p := q.active.pop()
			delete(q.pods, p.Pod.UID)
			p.loc = InFlight
			q.schedulingCycle++
			p.SchedulingCycle = q.schedulingCycle
			p.Attempts++
			q.inFlight[p.Pod.UID] = &inFlight{}
			if q.active.len() > 0 {
				signal(q.wake)
			}
			q.mu.Unlock()
			return p, nil
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.closeC:
		case <-q.wake:
		}
	}
}

// Done ends a pod's flight: it was bound, or the scheduler dropped it.
func (q *PriorityQueue) Done(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, uid)
}

// backoffDuration is 1s after the first attempt, doubling per attempt up
// to the maximum.
func (q *PriorityQueue) backoffDuration(attempts int) time.Duration {
	if attempts <= 0 {
		return 0
	}
	d := q.opts.InitialBackoff
	for i := 1; i < attempts; i++ {
		d *= 2
		if d >= q.opts.MaxBackoff {
			return q.opts.MaxBackoff
		}
	}
	return min(d, q.opts.MaxBackoff)
}

// AddUnschedulableIfNotPresent hands back a pod whose attempt failed. It
// waits in the backoff queue if the attempt failed with an error (no
// UnschedulablePlugins), if a cluster event arrived while it was in
// flight, or if the pod changed meanwhile; otherwise it is parked as
// unschedulable. A pod deleted while in flight, or already queued again,
// is dropped.
func (q *PriorityQueue) AddUnschedulableIfNotPresent(p *QueuedPodInfo) {
	q.mu.Lock()
	defer q.mu.Unlock()
	uid := p.Pod.UID
	fl := q.inFlight[uid]
	delete(q.inFlight, uid)
	if fl != nil && fl.deleted {
		return
	}
	if q.pods[uid] != nil {
		return
	}
	moved := false
	if fl != nil && fl.updated != nil {
		p.PodInfo = framework.NewPodInfo(fl.updated)
		moved = true
	}
	now := q.clock.Now()
	p.Timestamp = now
	p.backoffExpiry = now.Add(q.backoffDuration(p.Attempts))
	if moved || len(p.UnschedulablePlugins) == 0 || q.moveRequestCycle >= p.SchedulingCycle {
		q.pushBackoffLocked(p)
		return
	}
	q.parkLocked(p)
}

// podChanged reports whether an update could change scheduling: spec,
// labels or annotations (not status, which the scheduler itself writes).
func podChanged(old, cur *corev1.Pod) bool {
	return !equality.Semantic.DeepEqual(old.Spec, cur.Spec) ||
		!equality.Semantic.DeepEqual(old.Labels, cur.Labels) ||
		!equality.Semantic.DeepEqual(old.Annotations, cur.Annotations)
}

// Update replaces a pending pod. A parked pod whose spec or labels changed
// gets another chance (after its backoff).
func (q *PriorityQueue) Update(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.updateLocked(pod)
}

func (q *PriorityQueue) updateLocked(pod *corev1.Pod) {
	uid := pod.UID
	if p := q.pods[uid]; p != nil {
		changed := podChanged(p.Pod, pod)
		p.PodInfo = framework.NewPodInfo(pod)
		switch p.loc {
		case Active:
			q.active.fix(p)
		case Backoff:
			q.backoff.fix(p)
		case Unschedulable:
			if changed {
				q.removeLocked(p)
				q.requeueLocked(p)
			}
		}
		return
	}
	if fl := q.inFlight[uid]; fl != nil {
		fl.updated = pod
		return
	}
	now := q.clock.Now()
	q.pushActiveLocked(&QueuedPodInfo{PodInfo: framework.NewPodInfo(pod), Timestamp: now, FirstSeen: now})
}

// requeueLocked sends a pod that may now fit to the backoff queue if its
// backoff has not expired yet, else to the active queue.
func (q *PriorityQueue) requeueLocked(p *QueuedPodInfo) {
	if p.backoffExpiry.After(q.clock.Now()) {
		q.pushBackoffLocked(p)
		return
	}
	q.pushActiveLocked(p)
}

// Delete forgets a pod (deleted, bound elsewhere, or no longer ours).
func (q *PriorityQueue) Delete(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p := q.pods[pod.UID]; p != nil {
		q.removeLocked(p)
	}
	if fl := q.inFlight[pod.UID]; fl != nil {
		fl.deleted = true
	}
}

// MoveAllToActiveOrBackoffQueue gives every parked pod that ev may help
// another attempt, and makes pods now in flight retry soon if they fail.
func (q *PriorityQueue) MoveAllToActiveOrBackoffQueue(ev framework.ClusterEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moveLocked(ev, nil)
	q.moveRequestCycle = q.schedulingCycle
}

func (q *PriorityQueue) moveLocked(ev framework.ClusterEvent, keep func(*QueuedPodInfo) bool) int {
	n := 0
	for _, p := range q.unschedulable {
		if keep != nil && keep(p) {
			continue
		}
		if !q.opts.IsInterested(ev, p.UnschedulablePlugins) {
			continue
		}
		q.removeLocked(p)
		q.requeueLocked(p)
		n++
	}
	return n
}

// flushBackoffCompleted moves pods whose backoff expired to the active
// queue.
func (q *PriorityQueue) flushBackoffCompleted() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	for q.backoff.len() > 0 && !q.backoff.peek().backoffExpiry.After(now) {
		p := q.backoff.pop()
		delete(q.pods, p.Pod.UID)
		q.pushActiveLocked(p)
	}
}

// flushUnschedulableLeftover moves pods parked longer than
// MaxInUnschedulable.
func (q *PriorityQueue) flushUnschedulableLeftover() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	q.moveLocked(framework.UnschedulableTimeout, func(p *QueuedPodInfo) bool {
		return now.Sub(p.Timestamp) < q.opts.MaxInUnschedulable
	})
}

// leftoverCheckInterval is how often parked pods are checked for the
// MaxInUnschedulable limit.
func (q *PriorityQueue) leftoverCheckInterval() time.Duration {
	return min(30*time.Second, max(q.opts.MaxInUnschedulable/2, time.Second))
}

// Run moves pods out of the backoff queue as their backoff expires and
// flushes long-parked pods, until ctx ends; then it closes the queue.
func (q *PriorityQueue) Run(ctx context.Context) {
	defer q.Close()
	nextLeftover := q.clock.Now().Add(q.leftoverCheckInterval())
	for {
		q.mu.Lock()
		next := nextLeftover
		if q.backoff.len() > 0 {
			if e := q.backoff.peek().backoffExpiry; e.Before(next) {
				next = e
			}
		}
		q.mu.Unlock()
		fire, release := q.clock.TimerAt(next)
		select {
		case <-ctx.Done():
			release()
			return
		case <-fire:
		case <-q.kick:
		}
		release()
		q.flushBackoffCompleted()
		if now := q.clock.Now(); !now.Before(nextLeftover) {
			q.flushUnschedulableLeftover()
			nextLeftover = now.Add(q.leftoverCheckInterval())
		}
	}
}

// Close makes Pop fail from now on.
func (q *PriorityQueue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.closeC)
	}
}

// Counts are the number of pods in each place.
type Counts struct {
	Active, Backoff, Unschedulable, InFlight int
}

// Counts reports how many pods wait where.
func (q *PriorityQueue) Counts() Counts {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Counts{Active: q.active.len(), Backoff: q.backoff.len(), Unschedulable: len(q.unschedulable), InFlight: len(q.inFlight)}
}

// Where reports where the pod with uid waits, with its attempts so far.
func (q *PriorityQueue) Where(uid types.UID) (Location, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p := q.pods[uid]; p != nil {
		return p.loc, p.Attempts
	}
	if q.inFlight[uid] != nil {
		return InFlight, 0
	}
	return NotQueued, 0
}

// PendingPods lists every queued pod (not those in flight).
func (q *PriorityQueue) PendingPods() []*corev1.Pod {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(q.pods))
	for _, p := range q.pods {
		out = append(out, p.Pod)
	}
	return out
}

package queue

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/workqueue/clocktest"
	"github.com/minik8s/minik8s/scheduler/framework"
	st "github.com/minik8s/minik8s/scheduler/internal/schedtest"
)

// fakeClock is the shared manually advanced clock.
type fakeClock = clocktest.FakeClock

func newFakeClock() *fakeClock { return clocktest.New(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) }

// onlyFit says a pod rejected by NodeResourcesFit is helped by pod
// deletions and node adds, nothing else.
func onlyFit(ev framework.ClusterEvent, by map[string]struct{}) bool {
	if len(by) == 0 || ev == framework.NodeAdd || ev == framework.UnschedulableTimeout {
		return true
	}
	_, fit := by["NodeResourcesFit"]
	return fit && ev == framework.AssignedPodDelete
}

func newQueue() (*PriorityQueue, *fakeClock) {
	clock := newFakeClock()
	return New(Options{Clock: clock, IsInterested: onlyFit}), clock
}

// popNow pops without blocking; nil if the active queue is empty.
func popNow(t *testing.T, q *PriorityQueue) *QueuedPodInfo {
	t.Helper()
	if q.Counts().Active == 0 {
		return nil
	}
	p, err := q.Pop(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func names(t *testing.T, q *PriorityQueue) []string {
	t.Helper()
	var out []string
	for p := popNow(t, q); p != nil; p = popNow(t, q) {
		out = append(out, p.Pod.Name)
	}
	return out
}

func rejectedBy(plugins ...string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, p := range plugins {
		m[p] = struct{}{}
	}
	return m
}

func TestActiveQueueOrdersByPriorityThenAge(t *testing.T) {
	q, clock := newQueue()
	q.Add(st.Pod("ns", "low-oldest", st.Priority(0)))
	clock.Step(time.Second)
	q.Add(st.Pod("ns", "high-new", st.Priority(100)))
	clock.Step(time.Second)
	q.Add(st.Pod("ns", "default-newer"))
	q.Add(st.Pod("ns", "default-newest")) // same timestamp: arrival order
	clock.Step(time.Second)
	q.Add(st.Pod("ns", "negative", st.Priority(-5)))
	q.Add(st.Pod("ns", "high-newest", st.Priority(100)))

	got := names(t, q)
	want := []string{"high-new", "high-newest", "low-oldest", "default-newer", "default-newest", "negative"}
	if !slices.Equal(got, want) {
		t.Errorf("pop order %v, want %v", got, want)
	}
}

func TestBackoffDoublesUpToTenSeconds(t *testing.T) {
	q, clock := newQueue()
	q.Add(st.Pod("ns", "p"))
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i, w := range want {
		p := popNow(t, q)
		if p == nil {
			t.Fatalf("attempt %d: pod not active", i+1)
		}
		if p.Attempts != i+1 {
			t.Fatalf("attempts = %d, want %d", p.Attempts, i+1)
		}
		// An error (no rejecting plugins) always backs off.
		q.AddUnschedulableIfNotPresent(p)
		if c := q.Counts(); c.Backoff != 1 {
			t.Fatalf("attempt %d: counts %+v, want the pod in backoff", i+1, c)
		}
		clock.Step(w*time.Second - time.Millisecond)
		q.flushBackoffCompleted()
		if q.Counts().Active != 0 {
			t.Fatalf("attempt %d: pod active before its %ds backoff ended", i+1, w)
		}
		clock.Step(time.Millisecond)
		q.flushBackoffCompleted()
		if q.Counts().Active != 1 {
			t.Fatalf("attempt %d: pod not active after its %ds backoff", i+1, w)
		}
	}
}

func TestUnschedulablePodWaitsForARelevantEvent(t *testing.T) {
	q, clock := newQueue()
	q.Add(st.Pod("ns", "big"))
	p := popNow(t, q)
	p.UnschedulablePlugins = rejectedBy("NodeResourcesFit")
	q.AddUnschedulableIfNotPresent(p)
	if c := q.Counts(); c.Unschedulable != 1 || c.InFlight != 0 {
		t.Fatalf("counts %+v, want one parked pod", c)
	}
	// Long past its backoff, it still waits: nothing happened.
	clock.Step(20 * time.Second)
	q.flushBackoffCompleted()
	if q.Counts().Unschedulable != 1 {
		t.Fatal("parked pod left without an event")
	}
	// A label change cannot help a pod that needs resources.
	q.MoveAllToActiveOrBackoffQueue(framework.NodeLabelChange)
	if q.Counts().Unschedulable != 1 {
		t.Fatal("irrelevant event moved the pod")
	}
	// A deleted pod frees resources: straight to active (backoff over).
	q.MoveAllToActiveOrBackoffQueue(framework.AssignedPodDelete)
	if c := q.Counts(); c.Active != 1 || c.Unschedulable != 0 {
		t.Fatalf("counts %+v after a pod deletion, want the pod active", c)
	}
}

func TestEventDuringBackoffGoesThroughBackoffQueue(t *testing.T) {
	q, clock := newQueue()
	q.Add(st.Pod("ns", "p"))
	p := popNow(t, q)
	p.UnschedulablePlugins = rejectedBy("NodeResourcesFit")
	q.AddUnschedulableIfNotPresent(p)
	clock.Step(500 * time.Millisecond)
	q.MoveAllToActiveOrBackoffQueue(framework.NodeAdd)
	if c := q.Counts(); c.Backoff != 1 {
		t.Fatalf("counts %+v, want the pod in backoff (1s not over)", c)
	}
	clock.Step(500 * time.Millisecond)
	q.flushBackoffCompleted()
	if c := q.Counts(); c.Active != 1 {
		t.Fatalf("counts %+v, want the pod active after 1s", c)
	}
}

func TestEventWhileInFlightMeansRetrySoon(t *testing.T) {
	q, _ := newQueue()
	q.Add(st.Pod("ns", "p"))
	p := popNow(t, q)
	// A node appears while the pod is being scheduled on the old snapshot.
	q.MoveAllToActiveOrBackoffQueue(framework.NodeAdd)
	p.UnschedulablePlugins = rejectedBy("NodeResourcesFit")
	q.AddUnschedulableIfNotPresent(p)
	if c := q.Counts(); c.Backoff != 1 || c.Unschedulable != 0 {
		t.Fatalf("counts %+v: a pod rejected on a stale view must not be parked", c)
	}
	// The next attempt, with no event in between, parks it.
	q.flushBackoffCompleted()
	q.clock.(*fakeClock).Step(time.Second)
	q.flushBackoffCompleted()
	p = popNow(t, q)
	if p == nil {
		t.Fatal("pod did not come back")
	}
	p.UnschedulablePlugins = rejectedBy("NodeResourcesFit")
	q.AddUnschedulableIfNotPresent(p)
	if c := q.Counts(); c.Unschedulable != 1 {
		t.Fatalf("counts %+v, want parked", c)
	}
}

func TestLongParkedPodsAreFlushed(t *testing.T) {
	q, clock := newQueue()
	q.Add(st.Pod("ns", "p"))
	p := popNow(t, q)
	p.UnschedulablePlugins = rejectedBy("NodeAffinity")
	q.AddUnschedulableIfNotPresent(p)
	clock.Step(59 * time.Second)
	q.flushUnschedulableLeftover()
	if q.Counts().Unschedulable != 1 {
		t.Fatal("flushed before 60s")
	}
	clock.Step(time.Second)
	q.flushUnschedulableLeftover()
	if c := q.Counts(); c.Active != 1 {
		t.Fatalf("counts %+v, want active after 60s parked", c)
	}
}

func TestDeleteAndUpdateWhileInFlight(t *testing.T) {
	q, _ := newQueue()
	q.Add(st.Pod("ns", "deleted"))
	q.Add(st.Pod("ns", "updated"))
	a, b := popNow(t, q), popNow(t, q)
	q.Delete(a.Pod)
	newer := b.Pod.DeepCopy()
	newer.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	q.Update(newer)
	a.UnschedulablePlugins = rejectedBy("NodeAffinity")
	b.UnschedulablePlugins = rejectedBy("NodeAffinity")
	q.AddUnschedulableIfNotPresent(a)
	q.AddUnschedulableIfNotPresent(b)
	if c := q.Counts(); c.Backoff != 1 || c.Unschedulable != 0 || c.InFlight != 0 {
		t.Fatalf("counts %+v; want the deleted pod gone and the updated one in backoff", c)
	}
	if loc, _ := q.Where(b.Pod.UID); loc != Backoff {
		t.Fatalf("updated pod is %q", loc)
	}
	if b.Pod.Spec.NodeSelector["disk"] != "ssd" {
		t.Error("the queue kept the stale pod object")
	}
}

func TestUpdatesOfParkedPods(t *testing.T) {
	q, clock := newQueue()
	q.Add(st.Pod("ns", "p"))
	p := popNow(t, q)
	p.UnschedulablePlugins = rejectedBy("TaintToleration")
	q.AddUnschedulableIfNotPresent(p)
	clock.Step(2 * time.Second)

	// The scheduler's own status write changes nothing relevant.
	statusOnly := p.Pod.DeepCopy()
	statusOnly.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
	statusOnly.ResourceVersion = "42"
	q.Update(statusOnly)
	if c := q.Counts(); c.Unschedulable != 1 {
		t.Fatalf("status update moved the pod: %+v", c)
	}
	// A new toleration might help.
	tolerant := statusOnly.DeepCopy()
	tolerant.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	q.Update(tolerant)
	if c := q.Counts(); c.Active != 1 {
		t.Fatalf("spec update did not move the pod: %+v", c)
	}
	got := popNow(t, q)
	if len(got.Pod.Spec.Tolerations) != 1 || got.Pod.ResourceVersion != "42" {
		t.Error("popped a stale pod object")
	}
}

func TestAddOfKnownPodUpdatesIt(t *testing.T) {
	q, _ := newQueue()
	p := st.Pod("ns", "p")
	q.Add(p)
	p2 := p.DeepCopy()
	p2.Labels["v"] = "2"
	q.Add(p2)
	if c := q.Counts(); c.Active != 1 {
		t.Fatalf("counts %+v, want one pod", c)
	}
	if got := popNow(t, q); got.Pod.Labels["v"] != "2" {
		t.Error("second Add did not replace the pod")
	}
	q.Delete(p2)
	if c := q.Counts(); c != (Counts{InFlight: 1}) {
		t.Errorf("counts %+v", c)
	}
	q.Done(p2.UID)
	if c := q.Counts(); c != (Counts{}) {
		t.Errorf("counts after Done %+v", c)
	}
}

func TestRunMovesPodsWhenBackoffEnds(t *testing.T) {
	q, clock := newQueue()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); q.Run(ctx) }()
	defer func() { cancel(); <-done }()

	q.Add(st.Pod("ns", "p"))
	p, err := q.Pop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q.AddUnschedulableIfNotPresent(p) // error: 1s backoff

	got := make(chan *QueuedPodInfo, 1)
	popCtx, popCancel := context.WithTimeout(ctx, 30*time.Second)
	defer popCancel()
	go func() {
		p, err := q.Pop(popCtx)
		if err != nil {
			t.Errorf("Pop: %v", err)
		}
		got <- p
	}()
	// Step until Run has armed its timer for the backoff expiry; the
	// Pop must not return before the clock reaches it.
	deadline := time.After(20 * time.Second)
	for stepped := time.Duration(0); ; {
		select {
		case p := <-got:
			if p == nil {
				t.Fatal("no pod")
			}
			if stepped < time.Second {
				t.Fatalf("pod popped after %v of fake time, before its 1s backoff", stepped)
			}
			return
		case <-deadline:
			t.Fatal("pod never left the backoff queue")
		case <-time.After(10 * time.Millisecond):
			clock.Step(100 * time.Millisecond)
			stepped += 100 * time.Millisecond
		}
	}
}

func TestPopBlocksAndCloseUnblocks(t *testing.T) {
	q, _ := newQueue()
	errc := make(chan error, 1)
	go func() {
		_, err := q.Pop(context.Background())
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("Pop on an empty queue returned %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	q.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Pop after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Pop")
	}
}

package scheduler

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik8s/minik8s/client/informer"
)

// Starting to schedule needs more than synced informers:
//
//   - An informer counts as synced once its first list is in its store and
//     the notifications are queued; the scheduler's handlers, which fill
//     the cache and the queue, run in their own goroutines and may not have
//     seen them yet. Scheduling then would miss nodes, or pods bound
//     before the start that hold a node's resources.
//   - The pod and node informers list independently. When the node list
//     is older than the pod list, pending pods are scheduled against a
//     node set that lacks nodes created before them, and land on whatever
//     nodes the older list had.
//
// So Run waits until the handlers have delivered every pod in the pod
// informer's store and every node as of a point no older than the pod
// list (the node informer's own store if it is that new, else a fresh
// node list).

// deliveryTracker records, per key, the newest resourceVersion a handler
// has delivered, so that the start can wait for the handler to catch up
// with a given state. It stops recording once the scheduler has started.
type deliveryTracker struct {
	stopped atomic.Bool

	mu   sync.Mutex
	seen map[string]uint64 // key -> newest resourceVersion delivered
	want map[string]uint64 // what waitFor still waits for; nil if nobody waits
	done chan struct{}     // closed when want empties
}

// rvDeleted is recorded for deletions whose resourceVersion is unknown
// (tombstones after a relist): the object is gone, whatever it was.
const rvDeleted = math.MaxUint64

func newDeliveryTracker() *deliveryTracker {
	return &deliveryTracker{seen: map[string]uint64{}}
}

// parseRV reads a resourceVersion; minik8s's are etcd revisions. One that
// does not parse counts as 0: any delivery of the key satisfies it.
func parseRV(rv string) uint64 {
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// wrap returns h reporting every delivered notification to t.
func (t *deliveryTracker) wrap(h informer.Handler) informer.Handler {
	return informer.Handler{
		AddFunc: func(obj runtime.Object) {
			h.AddFunc(obj)
			t.delivered(obj, false)
		},
		UpdateFunc: func(oldObj, newObj runtime.Object) {
			h.UpdateFunc(oldObj, newObj)
			t.delivered(newObj, false)
		},
		DeleteFunc: func(obj any) {
			h.DeleteFunc(obj)
			t.delivered(obj, true)
		},
	}
}

func (t *deliveryTracker) delivered(obj any, deleted bool) {
	if t.stopped.Load() {
		return
	}
	key, err := informer.MetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	var rv uint64
	switch o := obj.(type) {
	case informer.DeletedFinalStateUnknown, *informer.DeletedFinalStateUnknown:
		rv = rvDeleted
	default:
		if m, err := meta.Accessor(o); err == nil {
			rv = parseRV(m.GetResourceVersion())
		}
		if deleted && rv == 0 {
			rv = rvDeleted
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		return
	}
	if prev, ok := t.seen[key]; !ok || rv > prev {
		t.seen[key] = rv
	}
	if w, ok := t.want[key]; ok && t.seen[key] >= w {
		delete(t.want, key)
		if len(t.want) == 0 {
			t.want = nil
			close(t.done)
		}
	}
}

// waitFor blocks until, for every key in want, the handler has delivered
// that resourceVersion or a newer one (or a deletion), or ctx ends.
// Every wanted object must be in the informer's store or be on its way
// there, so that its notification is certain to come.
func (t *deliveryTracker) waitFor(ctx context.Context, want map[string]uint64) error {
	t.mu.Lock()
	for key, rv := range want {
		if seen, ok := t.seen[key]; ok && seen >= rv {
			delete(want, key)
		}
	}
	if len(want) == 0 {
		t.mu.Unlock()
		return nil
	}
	t.want, t.done = want, make(chan struct{})
	done := t.done
	t.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.mu.Lock()
		t.want = nil
		t.mu.Unlock()
		return ctx.Err()
	}
}

// pending counts the keys waitFor still waits for.
func (t *deliveryTracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.want)
}

// stop ends recording and frees what was recorded.
func (t *deliveryTracker) stop() {
	t.stopped.Store(true)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen, t.want = nil, nil
}

// storeVersions lists the objects in an informer's store with their
// resourceVersions.
func storeVersions(inf *informer.Informer) map[string]uint64 {
	objs := inf.Indexer().List()
	out := make(map[string]uint64, len(objs))
	for _, obj := range objs {
		key, err := informer.MetaNamespaceKeyFunc(obj)
		if err != nil {
			continue
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			continue
		}
		out[key] = parseRV(m.GetResourceVersion())
	}
	return out
}

// startupRetryPeriod is how long to wait before listing nodes again after
// a failed list, and how often a slow catch-up is logged.
const startupRetryPeriod = time.Second

// waitForHandlers returns once the cache and the queue hold every pod the
// pod informer has stored and every node as of a state no older than the
// pod informer's (see the comment at the top of this file), or when ctx
// ends (false).
func (s *Scheduler) waitForHandlers(ctx context.Context) bool {
	// The pod informer's position first: whatever the nodes are compared
	// with must not be older than the pods in the store.
	podRV := s.podInformer.LastSyncResourceVersion()
	pods := storeVersions(s.podInformer.Informer)
	var nodes map[string]uint64
	if nodeRV := s.nodeInf.LastSyncResourceVersion(); parseRV(nodeRV) >= parseRV(podRV) && parseRV(podRV) > 0 {
		// The node informer has seen every change up to the pods'
		// position: its store will do.
		nodes = storeVersions(s.nodeInf.Informer)
	} else {
		var err error
		if nodes, err = s.listNodes(ctx); err != nil {
			return false
		}
	}
	for _, w := range []struct {
		what string
		t    *deliveryTracker
		want map[string]uint64
	}{{"pods", s.podDeliveries, pods}, {"nodes", s.nodeDeliveries, nodes}} {
		n := len(w.want)
		if !s.waitLogging(ctx, w.what, w.t, w.want) {
			return false
		}
		s.log.Debug("cache caught up", "objects", w.what, "count", n)
	}
	s.podDeliveries.stop()
	s.nodeDeliveries.stop()
	return true
}

// listNodes reads the current nodes from the API server (a consistent
// read, as new as anything the pod informer has seen), retrying failures
// until ctx ends.
func (s *Scheduler) listNodes(ctx context.Context) (map[string]uint64, error) {
	for {
		l, err := s.cfg.Client.Nodes.List(ctx, metav1.ListOptions{})
		if err == nil {
			out := make(map[string]uint64, len(l.Items))
			for i := range l.Items {
				out[l.Items[i].Name] = parseRV(l.Items[i].ResourceVersion)
			}
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.log.Warn("listing nodes before scheduling failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(startupRetryPeriod):
		}
	}
}

// waitLogging waits for t to deliver want, logging every ten seconds
// while it waits.
func (s *Scheduler) waitLogging(ctx context.Context, what string, t *deliveryTracker, want map[string]uint64) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- t.waitFor(ctx, want) }()
	tick := time.NewTicker(10 * startupRetryPeriod)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err == nil
		case <-tick.C:
			s.log.Info(fmt.Sprintf("waiting for the %s cache to catch up with the informer", what), "remaining", t.pending())
		}
	}
}

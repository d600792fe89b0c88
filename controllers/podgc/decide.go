package podgc

import (
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/controllers"
)

// TaintNodeOutOfService is the taint an operator puts on a node that is
// down and will not come back as it was (Kubernetes' non-graceful node
// shutdown). It is conventionally NoExecute; like Kubernetes, pod GC looks
// at the key only.
const TaintNodeOutOfService = "node.kubernetes.io/out-of-service"

// ReasonDeletionByPodGC is the reason of the DisruptionTarget condition an
// orphaned pod gets before it is deleted, and of the event.
const ReasonDeletionByPodGC = "DeletionByPodGC"

// reasonEvicted is the status.reason a kubelet gives the pods it evicts;
// they are the first terminated pods to go.
const reasonEvicted = "Evicted"

// verdict is what pod GC does with one pod.
type verdict int

const (
	keep verdict = iota
	// orphaned: bound to a node missing from the cache; deleted once the
	// quarantine has passed and a live GET agrees.
	orphaned
	// outOfService: terminating on a not-ready node tainted out-of-service.
	outOfService
	// unscheduledTerminating: terminating without ever having been bound.
	unscheduledTerminating
)

func (v verdict) String() string {
	switch v {
	case orphaned:
		return "node no longer exists"
	case outOfService:
		return "terminating on an out-of-service node"
	case unscheduledTerminating:
		return "terminating and never scheduled"
	}
	return "keep"
}

// classify decides about pod given its node as the cache has it (nil: the
// cache has no such node).
func classify(pod *corev1.Pod, node *corev1.Node) verdict {
	terminating := pod.DeletionTimestamp != nil
	switch {
	case pod.Spec.NodeName == "":
		if terminating {
			return unscheduledTerminating
		}
		return keep
	case node == nil:
		return orphaned
	case terminating && !controllers.IsNodeReady(node) && hasOutOfServiceTaint(node):
		return outOfService
	}
	return keep
}

func hasOutOfServiceTaint(n *corev1.Node) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == TaintNodeOutOfService })
}

func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// terminatedVictims returns the terminated pods to delete so that at most
// threshold remain, in deletion order: evicted pods first (they are
// clutter nobody asked to keep), then oldest first by creationTimestamp,
// then by namespace/name so the order is total. threshold <= 0 disables
// it.
//
// Pods already on their way out do not count: those being deleted (a
// finalizer holds them) and those pod GC has just marked Failed to
// force-delete them, which the cache shows a moment before their
// deletion. Kubernetes counts them, but it decides from one snapshot
// every 20s; counted here, a force-deleted orphan could take a
// terminated pod with it. A pod this sweep deleted but the cache still
// shows does count, and is the oldest, so the next sweep picks it again
// (a harmless NotFound) rather than one pod too many.
func terminatedVictims(pods []*corev1.Pod, threshold int) []*corev1.Pod {
	if threshold <= 0 {
		return nil
	}
	var terminated []*corev1.Pod
	for _, p := range pods {
		if isTerminal(p) && p.DeletionTimestamp == nil && !markedByPodGC(p) {
			terminated = append(terminated, p)
		}
	}
	n := len(terminated) - threshold
	if n <= 0 {
		return nil
	}
	slices.SortFunc(terminated, func(a, b *corev1.Pod) int {
		ae, be := isEvicted(a), isEvicted(b)
		switch {
		case ae && !be:
			return -1
		case be && !ae:
			return 1
		}
		if c := a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return terminated[:n]
}

// markedByPodGC: the pod has the DisruptionTarget condition pod GC sets
// right before it force-deletes an orphan.
func markedByPodGC(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.DisruptionTarget {
			return c.Status == corev1.ConditionTrue && c.Reason == ReasonDeletionByPodGC
		}
	}
	return false
}

func isEvicted(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed && p.Status.Reason == reasonEvicted
}

// quarantine remembers when each orphaned pod was first seen orphaned, by
// the controller's clock. It is per pod rather than per node so that every
// entry is forgotten by reconciling its own key (the pod is gone, or its
// node is back) and none can outlive what it describes.
type quarantine struct {
	period time.Duration

	mu    sync.Mutex
	since map[string]orphanMark // pod key -> mark
}

type orphanMark struct {
	uid  types.UID
	node string
	at   time.Time
}

func newQuarantine(period time.Duration) *quarantine {
	return &quarantine{period: period, since: map[string]orphanMark{}}
}

// wait marks the pod under key as orphaned at now unless it already is,
// and returns how much of the quarantine is left (<= 0: it has passed). A
// mark for another pod of the same name, or for another node, starts over.
func (q *quarantine) wait(key string, pod *corev1.Pod, now time.Time) time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	m, ok := q.since[key]
	if !ok || m.uid != pod.UID || m.node != pod.Spec.NodeName {
		m = orphanMark{uid: pod.UID, node: pod.Spec.NodeName, at: now}
		q.since[key] = m
	}
	return q.period - now.Sub(m.at)
}

// forget drops key's mark: the pod is gone or its node exists.
func (q *quarantine) forget(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.since, key)
}

func (q *quarantine) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.since)
}

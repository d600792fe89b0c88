package scheduler

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// statusWriteTimeout bounds one status write.
const statusWriteTimeout = 10 * time.Second

// setPodScheduledFalse records on the pod's status why it has no node:
// PodScheduled=False with reason and message. It writes through
// pods/{name}/status with the resourceVersion it read, so it never
// overwrites a binding that happened meanwhile; on a conflict it re-reads
// and tries again while the pod is still unbound. Unchanged conditions are
// not rewritten. It gives up as soon as current reports false: a later
// attempt has a newer message to write, which a retry after a conflict
// must not overwrite.
func (s *Scheduler) setPodScheduledFalse(ctx context.Context, pod *corev1.Pod, reason, message string, current func() bool) {
	ctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
	defer cancel()
	pods := s.client.Pods.Namespace(pod.Namespace)
	for attempt := 0; attempt < 3; attempt++ {
		if pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil || !current() {
			return
		}
		next, changed := withPodScheduledFalse(pod, reason, message, metav1.Now())
		if !changed {
			return
		}
		_, err := pods.UpdateStatus(ctx, next, metav1.UpdateOptions{})
		switch {
		case err == nil:
			return
		case apierrors.IsNotFound(err) || ctx.Err() != nil:
			return
		case !apierrors.IsConflict(err):
			s.log.Warn("could not set the PodScheduled condition", "pod", podKey(pod), "err", err)
			return
		}
		fresh, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			if !apierrors.IsNotFound(err) {
				s.log.Warn("could not re-read pod to set the PodScheduled condition", "pod", podKey(pod), "err", err)
			}
			return
		}
		if fresh.UID != pod.UID {
			return
		}
		pod = fresh
	}
	s.log.Warn("gave up setting the PodScheduled condition after repeated conflicts", "pod", podKey(pod))
}

// withPodScheduledFalse returns a copy of pod with the condition set, and
// whether anything changed. The transition time moves only when the
// status flips, as in Kubernetes.
func withPodScheduledFalse(pod *corev1.Pod, reason, message string, now metav1.Time) (*corev1.Pod, bool) {
	want := corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: reason, Message: message, LastTransitionTime: now,
	}
	for i, c := range pod.Status.Conditions {
		if c.Type != corev1.PodScheduled {
			continue
		}
		if c.Status == want.Status && c.Reason == want.Reason && c.Message == want.Message {
			return pod, false
		}
		if c.Status == want.Status {
			want.LastTransitionTime = c.LastTransitionTime
		}
		cp := pod.DeepCopy()
		cp.Status.Conditions[i] = want
		return cp, true
	}
	cp := pod.DeepCopy()
	cp.Status.Conditions = append(cp.Status.Conditions, want)
	if cp.Status.Phase == "" {
		cp.Status.Phase = corev1.PodPending
	}
	return cp, true
}

// statusWrites numbers the PodScheduled=False writes of each pod, so that
// a write outrun by a later attempt's (both run in goroutines and may be
// slowed down by retries) does not put an older message back.
type statusWrites struct {
	mu    sync.Mutex
	next  uint64
	byPod map[types.UID]uint64 // pods with a write in progress
}

// begin registers a write for uid, superseding any earlier one.
func (w *statusWrites) begin(uid types.UID) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byPod == nil {
		w.byPod = map[types.UID]uint64{}
	}
	w.next++
	w.byPod[uid] = w.next
	return w.next
}

// latest reports whether seq is uid's newest write.
func (w *statusWrites) latest(uid types.UID, seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byPod[uid] == seq
}

// end forgets seq once its write is over, unless a newer one started.
func (w *statusWrites) end(uid types.UID, seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byPod[uid] == seq {
		delete(w.byPod, uid)
	}
}

package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/controllers"
)

// reconcile makes the ReplicaSet key own exactly spec.replicas active
// pods and reports what it owns in status.
func (c *Controller) reconcile(ctx context.Context, key string) (controllers.Result, error) {
	ns, name, err := informer.SplitMetaNamespaceKey(key)
	if err != nil {
		return controllers.Result{}, nil // malformed key: nothing to retry
	}
	rs, err := c.rsList.Get(ns, name)
	if apierrors.IsNotFound(err) {
		c.exp.Forget(key)
		return controllers.Result{}, nil
	}
	if err != nil {
		return controllers.Result{}, fmt.Errorf("replicaset %s: %w", key, err)
	}
	needsSync := c.exp.Satisfied(key)
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil || sel.Empty() {
		// Validation forbids this; never act on "select everything".
		c.log.Warn("invalid selector; not managing pods", "object", key, "reason", "InvalidSelector", "err", err)
		return controllers.Result{}, nil
	}

	all, err := c.podList.ListNamespace(ns, labels.Everything())
	if err != nil {
		return controllers.Result{}, fmt.Errorf("replicaset %s: listing pods: %w", key, err)
	}
	active := make([]*corev1.Pod, 0, len(all))
	for _, p := range all {
		if controllers.IsPodActive(p) {
			active = append(active, p)
		}
	}
	pods, err := c.claimer(rs, sel).Claim(ctx, active)
	if err != nil {
		return controllers.Result{}, fmt.Errorf("replicaset %s: claiming pods: %w", key, err)
	}

	var manageErr error
	if needsSync && rs.DeletionTimestamp == nil {
		manageErr = c.manageReplicas(ctx, key, rs, pods)
	}
	now := c.now()
	status := calculateStatus(rs, pods, manageErr, now)
	if err := c.updateStatus(ctx, rs, status); err != nil {
		return controllers.Result{}, errors.Join(manageErr, fmt.Errorf("replicaset %s: %w", key, err))
	}
	if manageErr != nil {
		return controllers.Result{}, fmt.Errorf("replicaset %s: %w", key, manageErr)
	}
	return controllers.Result{RequeueAfter: nextAvailable(pods, rs.Spec.MinReadySeconds, now)}, nil
}

func (c *Controller) claimer(rs *appsv1.ReplicaSet, sel labels.Selector) *controllers.Claimer[*corev1.Pod] {
	pods := c.cs.Pods.Namespace(rs.Namespace)
	return &controllers.Claimer[*corev1.Pod]{
		Owner:    rs,
		Selector: sel,
		CanAdopt: func(ctx context.Context) error {
			fresh, err := c.cs.ReplicaSets.Namespace(rs.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
			return controllers.RecheckOwner(fresh, err, rs.UID)
		},
		Adopt: func(ctx context.Context, p *corev1.Pod) error {
			_, err := pods.Patch(ctx, p.Name, types.StrategicMergePatchType, controllers.AdoptPatch(rs, controllerKind), metav1.PatchOptions{})
			if err == nil {
				c.recorder.Eventf(rs, corev1.EventTypeNormal, "Adopted", "Adopted pod: %s", p.Name)
			}
			return err
		},
		Release: func(ctx context.Context, p *corev1.Pod) error {
			_, err := pods.Patch(ctx, p.Name, types.StrategicMergePatchType, controllers.ReleasePatch(rs.UID), metav1.PatchOptions{})
			if err == nil {
				c.recorder.Eventf(rs, corev1.EventTypeNormal, "Released", "Released pod: %s (labels no longer match)", p.Name)
			}
			return err
		},
	}
}

// manageReplicas creates or deletes pods so that len(pods) approaches
// spec.replicas, at most BurstReplicas at a time.
func (c *Controller) manageReplicas(ctx context.Context, key string, rs *appsv1.ReplicaSet, pods []*corev1.Pod) error {
	want := int(replicas(rs))
	diff := len(pods) - want
	switch {
	case diff < 0:
		n := min(-diff, BurstReplicas)
		c.exp.ExpectCreations(key, n)
		attempted, err := slowStartBatch(n, 1, func() error { return c.createPod(ctx, key, rs) })
		if skipped := n - attempted; skipped > 0 {
			// Never issued: stop expecting them.
			c.exp.LowerCreations(key, skipped)
		}
		return err
	case diff > 0:
		n := min(diff, BurstReplicas)
		victims := PodsToDelete(pods, n)
		keys := make([]string, len(victims))
		for i, p := range victims {
			keys[i] = p.Namespace + "/" + p.Name
		}
		c.exp.ExpectDeletions(key, keys)
		errs := make([]error, len(victims))
		var wg sync.WaitGroup
		for i, p := range victims {
			wg.Go(func() { errs[i] = c.deletePodFor(ctx, key, rs, p) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	return nil
}

func (c *Controller) createPod(ctx context.Context, key string, rs *appsv1.ReplicaSet) error {
	pod := PodFromTemplate(rs)
	created, err := c.cs.Pods.Namespace(rs.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		c.exp.CreationObserved(key) // it will never be observed
		if controllers.IsNamespaceTerminating(err) {
			return nil // everything here is going away; nothing to retry
		}
		if ctx.Err() == nil {
			c.recorder.Eventf(rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return fmt.Errorf("creating pod: %w", err)
	}
	c.recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.Name)
	return nil
}

func (c *Controller) deletePodFor(ctx context.Context, key string, rs *appsv1.ReplicaSet, p *corev1.Pod) error {
	uid := p.UID
	err := c.cs.Pods.Namespace(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil {
		c.exp.DeletionObserved(key, p.Namespace+"/"+p.Name)
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // already gone (or replaced by a different pod)
		}
		if ctx.Err() == nil {
			c.recorder.Eventf(rs, corev1.EventTypeWarning, "FailedDelete", "Error deleting pod %s: %v", p.Name, err)
		}
		return fmt.Errorf("deleting pod %s: %w", p.Name, err)
	}
	c.recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
	return nil
}

// PodFromTemplate is the pod a ReplicaSet creates: its template, a
// generated name prefixed with the ReplicaSet's, and a controller
// reference to it.
func PodFromTemplate(rs *appsv1.ReplicaSet) *corev1.Pod {
	t := rs.Spec.Template.DeepCopy()
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    rs.Name + "-",
			Namespace:       rs.Namespace,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{controllers.NewControllerRef(rs, controllerKind)},
		},
		Spec: t.Spec,
	}
}

// slowStartBatch calls fn count times in batches of 1, 2, 4, ... (from
// initial), in parallel within a batch, stopping after the first batch
// with an error, so a systematic failure (quota, admission) costs one call
// rather than count. It returns how many calls were made and the first
// error.
func slowStartBatch(count, initial int, fn func() error) (int, error) {
	attempted := 0
	for batch := min(count, initial); batch > 0; batch = min(2*batch, count-attempted) {
		errs := make([]error, batch)
		var wg sync.WaitGroup
		for i := range batch {
			wg.Go(func() { errs[i] = fn() })
		}
		wg.Wait()
		attempted += batch
		if err := errors.Join(errs...); err != nil {
			return attempted, err
		}
	}
	return attempted, nil
}

func replicas(rs *appsv1.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}

// calculateStatus is the status that describes pods (the active pods rs
// controls).
func calculateStatus(rs *appsv1.ReplicaSet, pods []*corev1.Pod, manageErr error, now time.Time) appsv1.ReplicaSetStatus {
	st := *rs.Status.DeepCopy()
	tmpl := labels.SelectorFromSet(rs.Spec.Template.Labels)
	st.Replicas = int32(len(pods))
	st.FullyLabeledReplicas, st.ReadyReplicas, st.AvailableReplicas = 0, 0, 0
	for _, p := range pods {
		if tmpl.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if controllers.IsPodReady(p) {
			st.ReadyReplicas++
			if controllers.IsPodAvailable(p, rs.Spec.MinReadySeconds, now) {
				st.AvailableReplicas++
			}
		}
	}
	st.ObservedGeneration = rs.Generation

	idx := -1
	for i, cond := range st.Conditions {
		if cond.Type == appsv1.ReplicaSetReplicaFailure {
			idx = i
		}
	}
	switch {
	case manageErr != nil && idx < 0:
		reason := "FailedCreate"
		if int(replicas(rs)) < len(pods) {
			reason = "FailedDelete"
		}
		st.Conditions = append(st.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now), Reason: reason, Message: manageErr.Error(),
		})
	case manageErr == nil && idx >= 0:
		st.Conditions = append(st.Conditions[:idx:idx], st.Conditions[idx+1:]...)
	}
	return st
}

// updateStatus writes status if it differs from what rs has, retrying
// once on a conflict with a fresh read.
func (c *Controller) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, status appsv1.ReplicaSetStatus) error {
	if equality.Semantic.DeepEqual(rs.Status, status) {
		return nil
	}
	client := c.cs.ReplicaSets.Namespace(rs.Namespace)
	next := rs.DeepCopy()
	for attempt := 0; ; attempt++ {
		next.Status = status
		_, err := client.UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err == nil || !apierrors.IsConflict(err) || attempt > 0 {
			if err != nil {
				return fmt.Errorf("updating status: %w", err)
			}
			return nil
		}
		next, err = client.Get(ctx, rs.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("updating status: %w", err)
		}
		if next.UID != rs.UID {
			return nil // recreated: the new one gets its own sync
		}
	}
}

// nextAvailable is how long until the next ready-but-not-yet-available
// pod becomes available (0 if none).
func nextAvailable(pods []*corev1.Pod, minReadySeconds int32, now time.Time) time.Duration {
	if minReadySeconds <= 0 {
		return 0
	}
	var next time.Duration
	for _, p := range pods {
		if d := controllers.AvailableIn(p, minReadySeconds, now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	if next > 0 {
		// Ready times have one-second resolution: look a little after.
		next += 100 * time.Millisecond
	}
	return next
}

// PodsToDelete picks n victims from pods, the ones whose loss hurts least
// first (see lessValuable).
func PodsToDelete(pods []*corev1.Pod, n int) []*corev1.Pod {
	sorted := append([]*corev1.Pod(nil), pods...)
	sort.SliceStable(sorted, func(i, j int) bool { return lessValuable(sorted[i], sorted[j]) })
	return sorted[:min(n, len(sorted))]
}

// lessValuable orders pods for deletion: unscheduled before scheduled,
// Pending before Unknown before Running, not ready before ready, ready
// for less time before longer, more container restarts before fewer,
// newer before older; the name breaks ties so the order is total.
func lessValuable(a, b *corev1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if ra, rb := phaseRank(a.Status.Phase), phaseRank(b.Status.Phase); ra != rb {
		return ra < rb
	}
	if ready := controllers.IsPodReady(a); ready != controllers.IsPodReady(b) {
		return !ready
	}
	if controllers.IsPodReady(a) {
		ta, tb := readySince(a), readySince(b)
		if !ta.Equal(tb) {
			return ta.After(tb)
		}
	}
	if ra, rb := restarts(a), restarts(b); ra != rb {
		return ra > rb
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.After(b.CreationTimestamp.Time)
	}
	return a.Name < b.Name
}

func phaseRank(p corev1.PodPhase) int {
	switch p {
	case corev1.PodPending, "":
		return 0
	case corev1.PodUnknown:
		return 1
	case corev1.PodRunning:
		return 2
	}
	return 3
}

func readySince(p *corev1.Pod) time.Time {
	if c := controllers.PodCondition(p, corev1.PodReady); c != nil {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}

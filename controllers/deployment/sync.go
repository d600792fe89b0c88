package deployment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/controllers"
)

// state is one sync's view of a Deployment: the latest Deployment object
// this sync knows (updated as it writes), its ReplicaSets and their pods.
type state struct {
	key  string
	d    *appsv1.Deployment
	rss  []*appsv1.ReplicaSet
	pods map[types.UID][]*corev1.Pod
	now  time.Time

	surge, unavailable int32
	// foundNewRS names a new ReplicaSet this sync found for a Deployment
	// that had no Progressing condition yet.
	foundNewRS string
}

func replicasOf(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func rsReplicas(rs *appsv1.ReplicaSet) int32 {
	if rs == nil || rs.Spec.Replicas == nil {
		return 0
	}
	return *rs.Spec.Replicas
}

// replicasFor is what rolling-update arithmetic needs to know about rs.
func (s *state) replicasFor(rs *appsv1.ReplicaSet) Replicas {
	if rs == nil {
		return Replicas{}
	}
	spec := rsReplicas(rs)
	var active, available int32
	for _, p := range s.pods[rs.UID] {
		if !controllers.IsPodActive(p) {
			continue
		}
		active++
		if controllers.IsPodAvailable(p, s.d.Spec.MinReadySeconds, s.now) {
			available++
		}
	}
	return Replicas{Spec: spec, Pods: max(spec, active, rs.Status.Replicas), Available: min(spec, available)}
}

func (c *Controller) reconcile(ctx context.Context, key string) (controllers.Result, error) {
	ns, name, err := informer.SplitMetaNamespaceKey(key)
	if err != nil {
		return controllers.Result{}, nil
	}
	cached, err := c.dList.Get(ns, name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return controllers.Result{}, nil
	}
	if err != nil {
		return controllers.Result{}, fmt.Errorf("deployment %s: %w", key, err)
	}
	d := cached.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		if d.Status.ObservedGeneration < d.Generation {
			c.recorder.Event(d, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		}
		return controllers.Result{}, nil
	}
	rss, err := c.claimReplicaSets(ctx, d, sel)
	if err != nil {
		return controllers.Result{}, fmt.Errorf("deployment %s: %w", key, err)
	}
	if !c.cacheCurrent(key) {
		// Our last ReplicaSet writes have not come back through the watch
		// yet; their events requeue us. The delay is a safety net.
		return controllers.Result{RequeueAfter: time.Second}, nil
	}
	s := &state{key: key, d: d, rss: rss, pods: c.podsByReplicaSet(ns, rss), now: c.now()}
	if s.surge, s.unavailable, err = Fenceposts(d); err != nil {
		return controllers.Result{}, fmt.Errorf("deployment %s: %w", key, err)
	}

	var res controllers.Result
	switch {
	case d.DeletionTimestamp != nil:
		// Being deleted: the garbage collector handles the ReplicaSets.
		err = c.syncStatus(ctx, s, c.newReplicaSet(s), false)
	case d.Spec.Paused:
		err = c.syncOnly(ctx, s)
	case c.isScalingEvent(s):
		err = c.syncOnly(ctx, s)
	case d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType:
		res, err = c.rolloutRecreate(ctx, s)
	default:
		res, err = c.rolloutRolling(ctx, s)
	}
	if err != nil {
		return controllers.Result{}, fmt.Errorf("deployment %s: %w", key, err)
	}
	return res, nil
}

// claimReplicaSets returns the ReplicaSets d controls, adopting matching
// orphans and releasing ones that no longer match.
func (c *Controller) claimReplicaSets(ctx context.Context, d *appsv1.Deployment, sel labels.Selector) ([]*appsv1.ReplicaSet, error) {
	all, err := c.rsList.ListNamespace(d.Namespace, labels.Everything())
	if err != nil {
		return nil, err
	}
	client := c.cs.ReplicaSets.Namespace(d.Namespace)
	cl := &controllers.Claimer[*appsv1.ReplicaSet]{
		Owner:    d,
		Selector: sel,
		CanAdopt: func(ctx context.Context) error {
			fresh, err := c.cs.Deployments.Namespace(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
			return controllers.RecheckOwner(fresh, err, d.UID)
		},
		Adopt: func(ctx context.Context, rs *appsv1.ReplicaSet) error {
			_, err := client.Patch(ctx, rs.Name, types.StrategicMergePatchType, controllers.AdoptPatch(d, controllerKind), metav1.PatchOptions{})
			return err
		},
		Release: func(ctx context.Context, rs *appsv1.ReplicaSet) error {
			_, err := client.Patch(ctx, rs.Name, types.StrategicMergePatchType, controllers.ReleasePatch(d.UID), metav1.PatchOptions{})
			return err
		},
	}
	return cl.Claim(ctx, all)
}

// podsByReplicaSet groups the cached pods in ns by the ReplicaSet (of rss)
// controlling them, terminating and finished pods included.
func (c *Controller) podsByReplicaSet(ns string, rss []*appsv1.ReplicaSet) map[types.UID][]*corev1.Pod {
	out := make(map[types.UID][]*corev1.Pod, len(rss))
	for _, rs := range rss {
		out[rs.UID] = nil
	}
	pods, err := c.podList.ListNamespace(ns, labels.Everything())
	if err != nil {
		return out
	}
	for _, p := range pods {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil {
			continue
		}
		if list, ok := out[ref.UID]; ok {
			out[ref.UID] = append(list, p)
		}
	}
	return out
}

// newReplicaSet is the ReplicaSet whose template is the Deployment's (the
// oldest, should there be several), or nil.
func (c *Controller) newReplicaSet(s *state) *appsv1.ReplicaSet {
	var found *appsv1.ReplicaSet
	for _, rs := range s.rss {
		if EqualIgnoreHash(&rs.Spec.Template, &s.d.Spec.Template) &&
			(found == nil || rs.CreationTimestamp.Before(&found.CreationTimestamp)) {
			found = rs
		}
	}
	return found
}

// oldReplicaSets are the ReplicaSets other than newRS, oldest first.
func oldReplicaSets(s *state, newRS *appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var old []*appsv1.ReplicaSet
	for _, rs := range s.rss {
		if newRS == nil || rs.UID != newRS.UID {
			old = append(old, rs)
		}
	}
	sort.SliceStable(old, func(i, j int) bool {
		ri, rj := Revision(old[i]), Revision(old[j])
		if ri != rj {
			return ri < rj
		}
		if !old[i].CreationTimestamp.Equal(&old[j].CreationTimestamp) {
			return old[i].CreationTimestamp.Before(&old[j].CreationTimestamp)
		}
		return old[i].Name < old[j].Name
	})
	return old
}

// Revision is a ReplicaSet's deployment.kubernetes.io/revision (0 if
// unset or malformed).
func Revision(rs *appsv1.ReplicaSet) int64 {
	v, err := strconv.ParseInt(rs.Annotations[appsv1.RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// ensureNewReplicaSet finds the new ReplicaSet and brings its revision
// (and the Deployment's) up to date, or, if there is none and create is
// set, creates it. created reports that this sync created it and should
// end.
func (c *Controller) ensureNewReplicaSet(ctx context.Context, s *state, create bool) (newRS *appsv1.ReplicaSet, created bool, err error) {
	newRS = c.newReplicaSet(s)
	var maxOld int64
	for _, rs := range oldReplicaSets(s, newRS) {
		maxOld = max(maxOld, Revision(rs))
	}
	revision := maxOld + 1
	if newRS == nil {
		if !create {
			return nil, false, nil
		}
		newRS, err = c.createReplicaSet(ctx, s, revision)
		return newRS, err == nil, err
	}

	// A rollback makes an old ReplicaSet new again: it gets the next revision.
	if Revision(newRS) < revision || newRS.Spec.MinReadySeconds != s.d.Spec.MinReadySeconds {
		rev := max(Revision(newRS), revision)
		patch, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{appsv1.RevisionAnnotation: strconv.FormatInt(rev, 10)}},
			"spec":     map[string]any{"minReadySeconds": s.d.Spec.MinReadySeconds},
		})
		updated, err := c.cs.ReplicaSets.Namespace(newRS.Namespace).Patch(ctx, newRS.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil {
			return nil, false, fmt.Errorf("updating revision of replica set %s: %w", newRS.Name, err)
		}
		c.wrote(s.key, updated, false)
		if Revision(newRS) < revision && Revision(newRS) > 0 {
			c.recorder.Eventf(s.d, corev1.EventTypeNormal, "DeploymentRollback", "Rolled back to revision %d: replica set %s is new again as revision %d",
				Revision(newRS), newRS.Name, rev)
		}
		newRS = updated
	}
	if err := c.setDeploymentRevision(ctx, s, newRS.Annotations[appsv1.RevisionAnnotation]); err != nil {
		return nil, false, err
	}
	if progressing(s.d) == nil {
		// First sight of this ReplicaSet as new (e.g. adopted): say so.
		s.foundNewRS = newRS.Name
	}
	return newRS, false, nil
}

// setDeploymentRevision keeps the Deployment's revision annotation equal
// to its new ReplicaSet's.
func (c *Controller) setDeploymentRevision(ctx context.Context, s *state, rev string) error {
	if rev == "" || s.d.Annotations[appsv1.RevisionAnnotation] == rev {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{appsv1.RevisionAnnotation: rev}}})
	updated, err := c.cs.Deployments.Namespace(s.d.Namespace).Patch(ctx, s.d.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("setting revision annotation: %w", err)
	}
	s.d = updated
	return nil
}

// skipAnnotations are Deployment annotations a ReplicaSet does not inherit.
var skipAnnotations = map[string]bool{
	appsv1.RevisionAnnotation:                          true,
	appsv1.DesiredReplicasAnnotation:                   true,
	appsv1.MaxReplicasAnnotation:                       true,
	"kubectl.kubernetes.io/last-applied-configuration": true,
	"deployment.kubernetes.io/revision-history":        true,
}

// createReplicaSet creates the new ReplicaSet for the Deployment's
// template, sized for the first step of the rollout.
func (c *Controller) createReplicaSet(ctx context.Context, s *state, revision int64) (*appsv1.ReplicaSet, error) {
	d := s.d
	hash := TemplateHash(&d.Spec.Template, d.Status.CollisionCount)
	tmpl := d.Spec.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	sel := d.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash

	desired := replicasOf(d)
	size := desired
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		var old []Replicas
		for _, rs := range s.rss {
			old = append(old, s.replicasFor(rs))
		}
		size = NewReplicas(desired, s.surge, Replicas{}, old)
	}
	ann := map[string]string{}
	for k, v := range d.Annotations {
		if !skipAnnotations[k] {
			ann[k] = v
		}
	}
	ann[appsv1.RevisionAnnotation] = strconv.FormatInt(revision, 10)
	ann[appsv1.DesiredReplicasAnnotation] = strconv.Itoa(int(desired))
	ann[appsv1.MaxReplicasAnnotation] = strconv.Itoa(int(desired + s.surge))
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          maps.Clone(tmpl.Labels),
			Annotations:     ann,
			OwnerReferences: []metav1.OwnerReference{controllers.NewControllerRef(d, controllerKind)},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: &size, MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: *tmpl},
	}
	client := c.cs.ReplicaSets.Namespace(d.Namespace)
	created, err := client.Create(ctx, rs, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := client.Get(ctx, rs.Name, metav1.GetOptions{})
		if gerr != nil {
			return nil, fmt.Errorf("creating replica set %s: %w", rs.Name, gerr)
		}
		if ref := metav1.GetControllerOfNoCopy(existing); ref != nil && ref.UID == d.UID && EqualIgnoreHash(&existing.Spec.Template, &d.Spec.Template) {
			// Ours already; the cache had not shown it yet.
			c.wrote(s.key, existing, true)
			return existing, nil
		}
		// A different template hashed to the same name: bump the
		// collision count so the next hash differs.
		count := int32(1)
		if d.Status.CollisionCount != nil {
			count = *d.Status.CollisionCount + 1
		}
		next := d.DeepCopy()
		next.Status.CollisionCount = &count
		if _, uerr := c.cs.Deployments.Namespace(d.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); uerr != nil {
			return nil, fmt.Errorf("recording hash collision: %w", uerr)
		}
		c.recorder.Eventf(d, corev1.EventTypeWarning, "HashCollision", "Replica set name %s is taken by a different template; collisionCount is now %d", rs.Name, count)
		return nil, fmt.Errorf("hash collision for replica set %s: retrying with collisionCount %d", rs.Name, count)
	}
	if err != nil {
		if !controllers.IsNamespaceTerminating(err) && ctx.Err() == nil {
			next := d.DeepCopy()
			next.Status.Conditions = setCondition(next.Status.Conditions, newCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse,
				ReasonFailedRSCreate, fmt.Sprintf("Failed to create new replica set %q: %v", rs.Name, err), s.now))
			_, _ = c.cs.Deployments.Namespace(d.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
			c.recorder.Eventf(d, corev1.EventTypeWarning, ReasonFailedRSCreate, "Failed to create new replica set %q: %v", rs.Name, err)
		}
		return nil, fmt.Errorf("creating replica set %s: %w", rs.Name, err)
	}
	c.wrote(s.key, created, true)
	if size > 0 {
		c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", created.Name, size)
	}
	if err := c.setDeploymentRevision(ctx, s, created.Annotations[appsv1.RevisionAnnotation]); err != nil {
		return nil, err
	}
	next := s.d.DeepCopy()
	next.Status.Conditions = setCondition(next.Status.Conditions, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue,
		ReasonNewRSCreated, fmt.Sprintf("Created new replica set %q", created.Name), s.now))
	if _, err := c.cs.Deployments.Namespace(d.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("updating status after creating replica set %s: %w", created.Name, err)
	}
	return created, nil
}

// scale sets rs's replicas (and its desired/max replicas annotations),
// recording the change. It returns the ReplicaSet as written.
func (c *Controller) scale(ctx context.Context, s *state, rs *appsv1.ReplicaSet, n int32) (*appsv1.ReplicaSet, error) {
	desired := strconv.Itoa(int(replicasOf(s.d)))
	maxR := strconv.Itoa(int(replicasOf(s.d) + s.surge))
	if rsReplicas(rs) == n && rs.Annotations[appsv1.DesiredReplicasAnnotation] == desired && rs.Annotations[appsv1.MaxReplicasAnnotation] == maxR {
		return rs, nil
	}
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{
			appsv1.DesiredReplicasAnnotation: desired, appsv1.MaxReplicasAnnotation: maxR}},
		"spec": map[string]any{"replicas": n},
	})
	updated, err := c.cs.ReplicaSets.Namespace(rs.Namespace).Patch(ctx, rs.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("scaling replica set %s to %d: %w", rs.Name, n, err)
	}
	c.wrote(s.key, updated, false)
	if from := rsReplicas(rs); from != n {
		dir := "up"
		if n < from {
			dir = "down"
		}
		c.recorder.Eventf(s.d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", dir, rs.Name, from, n)
	}
	return updated, nil
}

// replace swaps rs's entry in s.rss for its written version.
func (s *state) replace(rs *appsv1.ReplicaSet) {
	for i := range s.rss {
		if s.rss[i].UID == rs.UID {
			s.rss[i] = rs
		}
	}
}

// rolloutRolling takes one step of a rolling update: grow the new
// ReplicaSet within the surge budget, else shrink old ones within the
// availability budget, else (done) clean up history.
func (c *Controller) rolloutRolling(ctx context.Context, s *state) (controllers.Result, error) {
	newRS, created, err := c.ensureNewReplicaSet(ctx, s, true)
	if err != nil || created {
		return controllers.Result{}, err
	}
	old := oldReplicaSets(s, newRS)
	desired := replicasOf(s.d)
	oldStates := make([]Replicas, len(old))
	for i, rs := range old {
		oldStates[i] = s.replicasFor(rs)
	}
	newState := s.replicasFor(newRS)

	if target := NewReplicas(desired, s.surge, newState, oldStates); target != rsReplicas(newRS) {
		updated, err := c.scale(ctx, s, newRS, target)
		if err != nil {
			return controllers.Result{}, err
		}
		s.replace(updated)
		return c.syncRolloutStatus(ctx, s, updated)
	}
	targets := OldReplicas(desired, s.unavailable, newState, oldStates)
	scaled := false
	for i, rs := range old {
		if targets[i] == rsReplicas(rs) {
			continue
		}
		updated, err := c.scale(ctx, s, rs, targets[i])
		if err != nil {
			return controllers.Result{}, err
		}
		s.replace(updated)
		scaled = true
	}
	if !scaled {
		updated, err := c.scale(ctx, s, newRS, rsReplicas(newRS)) // annotations only, if stale
		if err != nil {
			return controllers.Result{}, err
		}
		s.replace(updated)
		newRS = updated
		if complete(s.d, c.calculateStatus(s, newRS)) {
			if err := c.cleanup(ctx, s, old); err != nil {
				return controllers.Result{}, err
			}
		}
	}
	return c.syncRolloutStatus(ctx, s, newRS)
}

// rolloutRecreate scales every old ReplicaSet to zero, waits until none
// of their pods is left, then creates or scales up the new one.
func (c *Controller) rolloutRecreate(ctx context.Context, s *state) (controllers.Result, error) {
	newRS, _, err := c.ensureNewReplicaSet(ctx, s, false)
	if err != nil {
		return controllers.Result{}, err
	}
	old := oldReplicaSets(s, newRS)
	scaled := false
	for _, rs := range old {
		if rsReplicas(rs) == 0 {
			continue
		}
		updated, err := c.scale(ctx, s, rs, 0)
		if err != nil {
			return controllers.Result{}, err
		}
		s.replace(updated)
		scaled = true
	}
	if scaled || c.oldPodsRemain(s, old) {
		return c.syncRolloutStatus(ctx, s, newRS)
	}
	if newRS == nil {
		if _, _, err := c.ensureNewReplicaSet(ctx, s, true); err != nil {
			return controllers.Result{}, err
		}
		return controllers.Result{}, nil // its creation event brings us back
	}
	if rsReplicas(newRS) != replicasOf(s.d) {
		updated, err := c.scale(ctx, s, newRS, replicasOf(s.d))
		if err != nil {
			return controllers.Result{}, err
		}
		s.replace(updated)
		newRS = updated
	}
	if complete(s.d, c.calculateStatus(s, newRS)) {
		if err := c.cleanup(ctx, s, old); err != nil {
			return controllers.Result{}, err
		}
	}
	return c.syncRolloutStatus(ctx, s, newRS)
}

// oldPodsRemain reports whether any pod of the old ReplicaSets still
// exists and has not finished (terminating ones included: Recreate means
// the versions never run side by side).
func (c *Controller) oldPodsRemain(s *state, old []*appsv1.ReplicaSet) bool {
	for _, rs := range old {
		if rs.Status.Replicas > 0 {
			return true
		}
		for _, p := range s.pods[rs.UID] {
			if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				return true
			}
		}
	}
	return false
}

// isScalingEvent reports whether the Deployment's replicas changed since
// its active ReplicaSets were sized (their desired-replicas annotation).
func (c *Controller) isScalingEvent(s *state) bool {
	want := strconv.Itoa(int(replicasOf(s.d)))
	for _, rs := range s.rss {
		if rsReplicas(rs) == 0 {
			continue
		}
		if v, ok := rs.Annotations[appsv1.DesiredReplicasAnnotation]; ok && v != want {
			return true
		}
	}
	return false
}

// syncOnly is the sync of a paused Deployment or of a scaling event:
// resize without rolling out, clean up history if paused, report status.
func (c *Controller) syncOnly(ctx context.Context, s *state) error {
	newRS, _, err := c.ensureNewReplicaSet(ctx, s, false)
	if err != nil {
		return err
	}
	if c.isScalingEvent(s) {
		if err := c.scaleProportionally(ctx, s, newRS); err != nil {
			return err
		}
	}
	newRS = c.newReplicaSet(s)
	if s.d.Spec.Paused {
		if err := c.cleanup(ctx, s, oldReplicaSets(s, newRS)); err != nil {
			return err
		}
	}
	return c.syncStatus(ctx, s, newRS, false)
}

// scaleProportionally applies a change of the Deployment's replicas to
// its ReplicaSets: all of it to the only active one (or the newest), none
// to old ones once the new one is full, else in proportion to sizes.
func (c *Controller) scaleProportionally(ctx context.Context, s *state, newRS *appsv1.ReplicaSet) error {
	desired := replicasOf(s.d)
	var active []*appsv1.ReplicaSet
	for _, rs := range s.rss {
		if rsReplicas(rs) > 0 {
			active = append(active, rs)
		}
	}
	apply := func(rs *appsv1.ReplicaSet, n int32) error {
		updated, err := c.scale(ctx, s, rs, n)
		if err == nil {
			s.replace(updated)
		}
		return err
	}
	switch {
	case len(active) == 0:
		target := newRS
		if target == nil {
			target = newest(s.rss)
		}
		if target == nil {
			return nil
		}
		return apply(target, desired)
	case len(active) == 1:
		return apply(active[0], desired)
	case newRS != nil && rsReplicas(newRS) == desired && newRS.Status.AvailableReplicas == desired:
		var errs []error
		for _, rs := range active {
			if rs.UID != newRS.UID {
				errs = append(errs, apply(rs, 0))
			}
		}
		return errors.Join(errs...)
	case s.d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType:
		// Old ReplicaSets are going to zero anyway: only the new (or
		// newest) one takes the change.
		target := newRS
		if target == nil || rsReplicas(target) == 0 {
			target = newest(active)
		}
		return apply(target, desired)
	}
	allowed := desired
	if desired > 0 {
		allowed += s.surge
	}
	var total int32
	sizes := make([]int32, len(active))
	for i, rs := range active {
		sizes[i] = rsReplicas(rs)
		total += sizes[i]
	}
	delta := allowed - total
	// Leftovers from rounding go to the largest ReplicaSet first (the
	// newer on ties when growing, the older when shrinking).
	order := make([]int, len(active))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ra, rb := active[order[a]], active[order[b]]
		if rsReplicas(ra) != rsReplicas(rb) {
			return rsReplicas(ra) > rsReplicas(rb)
		}
		if delta > 0 {
			return rb.CreationTimestamp.Before(&ra.CreationTimestamp)
		}
		return ra.CreationTimestamp.Before(&rb.CreationTimestamp)
	})
	targets := Proportional(sizes, delta, order)
	var errs []error
	for i, rs := range active {
		errs = append(errs, apply(rs, targets[i]))
	}
	return errors.Join(errs...)
}

func newest(rss []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	var out *appsv1.ReplicaSet
	for _, rs := range rss {
		if out == nil || Revision(rs) > Revision(out) {
			out = rs
		}
	}
	return out
}

// cleanup deletes the oldest ReplicaSets beyond revisionHistoryLimit that
// are scaled to zero and have no pods left.
func (c *Controller) cleanup(ctx context.Context, s *state, old []*appsv1.ReplicaSet) error {
	if s.d.Spec.RevisionHistoryLimit == nil {
		return nil
	}
	var alive []*appsv1.ReplicaSet
	for _, rs := range old {
		if rs.DeletionTimestamp == nil {
			alive = append(alive, rs)
		}
	}
	excess := len(alive) - int(*s.d.Spec.RevisionHistoryLimit)
	for _, rs := range alive { // oldest first
		if excess <= 0 {
			break
		}
		if rsReplicas(rs) != 0 || rs.Status.Replicas != 0 || rs.Status.ObservedGeneration < rs.Generation || len(s.pods[rs.UID]) > 0 {
			continue
		}
		uid := rs.UID
		err := c.cs.ReplicaSets.Namespace(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting old replica set %s: %w", rs.Name, err)
		}
		c.log.Info("deleted old replica set beyond revision history limit", "object", s.key, "reason", "RevisionHistoryLimit",
			"replicaset", rs.Name, "revision", Revision(rs))
		excess--
	}
	return nil
}

package deployment

import (
	"context"
	"fmt"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/controllers"
)

// Condition reasons, as Kubernetes spells them.
const (
	ReasonNewRSCreated       = "NewReplicaSetCreated"
	ReasonFoundNewRS         = "FoundNewReplicaSet"
	ReasonRSUpdated          = "ReplicaSetUpdated"
	ReasonNewRSAvailable     = "NewReplicaSetAvailable"
	ReasonTimedOut           = "ProgressDeadlineExceeded"
	ReasonFailedRSCreate     = "ReplicaSetCreateError"
	ReasonPaused             = "DeploymentPaused"
	ReasonResumed            = "DeploymentResumed"
	ReasonMinimumAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumUnavailable = "MinimumReplicasUnavailable"
)

func newCondition(t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string, now time.Time) appsv1.DeploymentCondition {
	ts := metav1.NewTime(now)
	return appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: msg, LastUpdateTime: ts, LastTransitionTime: ts}
}

// setCondition puts c into conds. An existing condition of the same type,
// status, reason and message is left alone (so an unchanged state causes
// no write); one with the same status keeps its lastTransitionTime.
func setCondition(conds []appsv1.DeploymentCondition, c appsv1.DeploymentCondition) []appsv1.DeploymentCondition {
	out := make([]appsv1.DeploymentCondition, 0, len(conds)+1)
	for _, cur := range conds {
		if cur.Type != c.Type {
			out = append(out, cur)
			continue
		}
		if cur.Status == c.Status && cur.Reason == c.Reason && cur.Message == c.Message {
			return conds
		}
		if cur.Status == c.Status {
			c.LastTransitionTime = cur.LastTransitionTime
		}
	}
	return append(out, c)
}

// touchCondition is setCondition that always refreshes lastUpdateTime:
// for Progressing, whose lastUpdateTime is when progress was last seen.
func touchCondition(conds []appsv1.DeploymentCondition, c appsv1.DeploymentCondition) []appsv1.DeploymentCondition {
	out := removeCondition(conds, c.Type)
	for _, cur := range conds {
		if cur.Type == c.Type && cur.Status == c.Status {
			c.LastTransitionTime = cur.LastTransitionTime
		}
	}
	return append(out, c)
}

func removeCondition(conds []appsv1.DeploymentCondition, t appsv1.DeploymentConditionType) []appsv1.DeploymentCondition {
	var out []appsv1.DeploymentCondition
	for _, c := range conds {
		if c.Type != t {
			out = append(out, c)
		}
	}
	return out
}

func findCondition(conds []appsv1.DeploymentCondition, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

func progressing(d *appsv1.Deployment) *appsv1.DeploymentCondition {
	return findCondition(d.Status.Conditions, appsv1.DeploymentProgressing)
}

// calculateStatus derives the Deployment's status from its ReplicaSets'.
func (c *Controller) calculateStatus(s *state, newRS *appsv1.ReplicaSet) appsv1.DeploymentStatus {
	st := *s.d.Status.DeepCopy()
	st.ObservedGeneration = s.d.Generation
	st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas = 0, 0, 0, 0
	var specTotal int32
	for _, rs := range s.rss {
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
		specTotal += rsReplicas(rs)
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	st.UnavailableReplicas = max(0, specTotal-st.AvailableReplicas)

	if s.foundNewRS != "" && findCondition(st.Conditions, appsv1.DeploymentProgressing) == nil {
		st.Conditions = setCondition(st.Conditions, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue,
			ReasonFoundNewRS, fmt.Sprintf("Found new replica set %q", s.foundNewRS), s.now))
	}
	if st.AvailableReplicas >= replicasOf(s.d)-s.unavailable {
		st.Conditions = setCondition(st.Conditions, newCondition(appsv1.DeploymentAvailable, corev1.ConditionTrue,
			ReasonMinimumAvailable, "Deployment has minimum availability.", s.now))
	} else {
		st.Conditions = setCondition(st.Conditions, newCondition(appsv1.DeploymentAvailable, corev1.ConditionFalse,
			ReasonMinimumUnavailable, "Deployment does not have minimum availability.", s.now))
	}
	// A ReplicaSet that cannot create or delete pods makes the Deployment
	// report it too.
	var failure *appsv1.ReplicaSetCondition
	for _, rs := range s.rss {
		for i, rc := range rs.Status.Conditions {
			if rc.Type == appsv1.ReplicaSetReplicaFailure && rc.Status == corev1.ConditionTrue && failure == nil {
				failure = &rs.Status.Conditions[i]
			}
		}
	}
	if failure != nil {
		st.Conditions = setCondition(st.Conditions, newCondition(appsv1.DeploymentReplicaFailure, corev1.ConditionTrue,
			failure.Reason, failure.Message, s.now))
	} else {
		st.Conditions = removeCondition(st.Conditions, appsv1.DeploymentReplicaFailure)
	}
	return st
}

// complete reports whether st shows a finished rollout of d.
func complete(d *appsv1.Deployment, st appsv1.DeploymentStatus) bool {
	n := replicasOf(d)
	return st.UpdatedReplicas == n && st.Replicas == n && st.AvailableReplicas == n && st.ObservedGeneration >= d.Generation
}

// madeProgress reports whether st shows progress over d's last status:
// more updated, ready or available replicas, or fewer old ones.
func madeProgress(d *appsv1.Deployment, st appsv1.DeploymentStatus) bool {
	old := d.Status
	return st.UpdatedReplicas > old.UpdatedReplicas ||
		st.Replicas-st.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		st.ReadyReplicas > old.ReadyReplicas ||
		st.AvailableReplicas > old.AvailableReplicas
}

func hasDeadline(d *appsv1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != math.MaxInt32
}

// deadlineLeft is how long until d's rollout times out, judged from when
// progress was last seen (<= 0: it has).
func deadlineLeft(d *appsv1.Deployment, conds []appsv1.DeploymentCondition, now time.Time) time.Duration {
	cond := findCondition(conds, appsv1.DeploymentProgressing)
	if cond == nil {
		return time.Duration(math.MaxInt64)
	}
	deadline := cond.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second)
	return deadline.Sub(now)
}

// syncStatus writes the status of a Deployment that is not rolling out
// (paused, scaling, being deleted).
func (c *Controller) syncStatus(ctx context.Context, s *state, newRS *appsv1.ReplicaSet, _ bool) error {
	st := c.calculateStatus(s, newRS)
	if s.d.Spec.Paused && s.d.DeletionTimestamp == nil {
		if cur := findCondition(st.Conditions, appsv1.DeploymentProgressing); cur == nil || cur.Reason != ReasonPaused {
			st.Conditions = setCondition(st.Conditions, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown,
				ReasonPaused, "Deployment is paused", s.now))
			c.recorder.Event(s.d, corev1.EventTypeNormal, ReasonPaused, "Deployment is paused")
		}
	}
	return c.writeStatus(ctx, s, st)
}

// syncRolloutStatus writes the status of a rolling-out Deployment,
// including the Progressing condition, and says when to look again for
// time-based changes (progress deadline, pods becoming available).
func (c *Controller) syncRolloutStatus(ctx context.Context, s *state, newRS *appsv1.ReplicaSet) (controllers.Result, error) {
	d := s.d
	st := c.calculateStatus(s, newRS)
	name := ""
	if newRS != nil {
		name = newRS.Name
	}
	if cur := findCondition(st.Conditions, appsv1.DeploymentProgressing); cur != nil && cur.Reason == ReasonPaused {
		// Resumed: the clock for the deadline starts now.
		st.Conditions = touchCondition(st.Conditions, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown,
			ReasonResumed, "Deployment is resumed", s.now))
		c.recorder.Event(d, corev1.EventTypeNormal, ReasonResumed, "Deployment is resumed")
	}
	var res controllers.Result
	if hasDeadline(d) {
		cur := findCondition(st.Conditions, appsv1.DeploymentProgressing)
		switch {
		case complete(d, st):
			if cur == nil || cur.Reason != ReasonNewRSAvailable {
				st.Conditions = touchCondition(st.Conditions, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue,
					ReasonNewRSAvailable, fmt.Sprintf("ReplicaSet %q has successfully progressed.", name), s.now))
			}
		case madeProgress(d, st) || cur == nil:
			st.Conditions = touchCondition(st.Conditions, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue,
				ReasonRSUpdated, fmt.Sprintf("ReplicaSet %q is progressing.", name), s.now))
		case cur.Reason != ReasonTimedOut && cur.Reason != ReasonNewRSAvailable && deadlineLeft(d, st.Conditions, s.now) <= 0:
			st.Conditions = touchCondition(st.Conditions, newCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse,
				ReasonTimedOut, fmt.Sprintf("ReplicaSet %q has timed out progressing.", name), s.now))
			c.recorder.Eventf(d, corev1.EventTypeWarning, ReasonTimedOut, "Deployment %q has timed out progressing (no progress for %ds)",
				d.Name, *d.Spec.ProgressDeadlineSeconds)
		}
		if cur := findCondition(st.Conditions, appsv1.DeploymentProgressing); cur != nil && cur.Status != corev1.ConditionFalse && !complete(d, st) {
			if left := deadlineLeft(d, st.Conditions, s.now); left > 0 {
				res.RequeueAfter = left + time.Second
			}
		}
	} else {
		st.Conditions = removeCondition(st.Conditions, appsv1.DeploymentProgressing)
	}
	if d.Spec.MinReadySeconds > 0 {
		for _, pods := range s.pods {
			for _, p := range pods {
				if w := controllers.AvailableIn(p, d.Spec.MinReadySeconds, s.now); w > 0 && controllers.IsPodActive(p) {
					w += 100 * time.Millisecond
					if res.RequeueAfter == 0 || w < res.RequeueAfter {
						res.RequeueAfter = w
					}
				}
			}
		}
	}
	return res, c.writeStatus(ctx, s, st)
}

func (c *Controller) writeStatus(ctx context.Context, s *state, st appsv1.DeploymentStatus) error {
	if equality.Semantic.DeepEqual(s.d.Status, st) {
		return nil
	}
	next := s.d.DeepCopy()
	next.Status = st
	updated, err := c.cs.Deployments.Namespace(next.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("updating status: %w", err)
	}
	s.d = updated
	return nil
}

// Package rollout holds the rules `ctl rollout` applies to Deployments:
// when a rollout is finished (read from the Deployment's status and
// conditions, exactly as kubectl reads them), and which ReplicaSets make a
// Deployment's revision history. It is pure: the caller fetches objects.
package rollout

import (
	"fmt"
	"sort"
	"strconv"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// ProgressDeadlineExceeded is the Progressing condition's reason when the
// deployment controller gave up waiting for progress.
const ProgressDeadlineExceeded = "ProgressDeadlineExceeded"

// ChangeCauseAnnotation records why a revision was made.
const ChangeCauseAnnotation = "kubernetes.io/change-cause"

// RestartedAtAnnotation is set on the pod template by `rollout restart`.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// Status says how far a deployment's rollout is. done means every desired
// replica runs the latest template and is available; a non-nil error
// means the rollout failed (its progress deadline passed). revision > 0
// asks about that revision specifically.
func Status(d *appsv1.Deployment, revision int64) (msg string, done bool, err error) {
	if revision > 0 {
		cur, err := Revision(&d.ObjectMeta)
		if err != nil {
			return "", false, fmt.Errorf("cannot read the revision of deployment %q: %w", d.Name, err)
		}
		if cur != revision {
			return "", false, fmt.Errorf("desired revision (%d) is different from the running revision (%d)", revision, cur)
		}
	}
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...\n", false, nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == ProgressDeadlineExceeded {
			return "", false, fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
		}
	}
	st := d.Status
	if d.Spec.Replicas != nil && st.UpdatedReplicas < *d.Spec.Replicas {
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...\n",
			d.Name, st.UpdatedReplicas, *d.Spec.Replicas), false, nil
	}
	if st.Replicas > st.UpdatedReplicas {
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...\n",
			d.Name, st.Replicas-st.UpdatedReplicas), false, nil
	}
	if st.AvailableReplicas < st.UpdatedReplicas {
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...\n",
			d.Name, st.AvailableReplicas, st.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out\n", d.Name), true, nil
}

// Revision reads the deployment.kubernetes.io/revision annotation (0 when
// absent).
func Revision(m *metav1.ObjectMeta) (int64, error) {
	v, ok := m.Annotations[appsv1.RevisionAnnotation]
	if !ok || v == "" {
		return 0, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

// Entry is one revision of a deployment's history.
type Entry struct {
	Revision    int64
	ReplicaSet  *appsv1.ReplicaSet
	ChangeCause string
}

// History lists the revisions of d: the ReplicaSets d controls (by owner
// uid) that carry a revision annotation, oldest first. Bad annotations are
// skipped.
func History(d *appsv1.Deployment, rss []appsv1.ReplicaSet) []Entry {
	var out []Entry
	for i := range rss {
		rs := &rss[i]
		if !ownedBy(rs, d) {
			continue
		}
		rev, err := Revision(&rs.ObjectMeta)
		if err != nil || rev <= 0 {
			continue
		}
		out = append(out, Entry{Revision: rev, ReplicaSet: rs, ChangeCause: rs.Annotations[ChangeCauseAnnotation]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	return out
}

func ownedBy(rs *appsv1.ReplicaSet, d *appsv1.Deployment) bool {
	for _, r := range rs.OwnerReferences {
		if r.Controller != nil && *r.Controller && r.UID == d.UID {
			return true
		}
	}
	return false
}

// Find returns the entry for revision n, or for n == 0 the one before the
// latest (what `rollout undo` goes back to).
func Find(h []Entry, n int64) (Entry, error) {
	if len(h) == 0 {
		return Entry{}, fmt.Errorf("no rollout history found")
	}
	if n == 0 {
		if len(h) < 2 {
			return Entry{}, fmt.Errorf("no earlier revision to roll back to (the history has only revision %d)", h[0].Revision)
		}
		return h[len(h)-2], nil
	}
	for _, e := range h {
		if e.Revision == n {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("unable to find the specified revision %d (see `ctl rollout history`)", n)
}

// Template is a ReplicaSet's pod template as the deployment had it: without
// the pod-template-hash label the controller adds.
func Template(rs *appsv1.ReplicaSet) corev1.PodTemplateSpec {
	t := *rs.Spec.Template.DeepCopy()
	delete(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(t.Labels) == 0 {
		t.Labels = nil
	}
	return t
}

// SameTemplate reports whether two pod templates are the same, ignoring
// the pod-template-hash label.
func SameTemplate(a, b corev1.PodTemplateSpec) bool {
	a, b = *a.DeepCopy(), *b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(b.Labels) == 0 {
		b.Labels = nil
	}
	return apiequality.Semantic.DeepEqual(a, b)
}

// skipOnRollback are annotations of a ReplicaSet that describe the
// ReplicaSet itself and are not copied back to the deployment on undo.
var skipOnRollback = map[string]bool{
	"kubectl.kubernetes.io/last-applied-configuration": true,
	appsv1.RevisionAnnotation:                          true,
	"deployment.kubernetes.io/revision-history":        true,
	appsv1.DesiredReplicasAnnotation:                   true,
	appsv1.MaxReplicasAnnotation:                       true,
	"deprecated.deployment.rollback.to":                true,
}

// RollbackAnnotations are the deployment's annotations after rolling back
// to rs: its own, with rs's descriptive ones (the change cause, say)
// copied over.
func RollbackAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet) map[string]string {
	out := map[string]string{}
	for k, v := range d.Annotations {
		out[k] = v
	}
	for k, v := range rs.Annotations {
		if !skipOnRollback[k] {
			out[k] = v
		}
	}
	return out
}

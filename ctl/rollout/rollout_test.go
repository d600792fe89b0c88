package rollout

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

func i32(i int32) *int32 { return &i }

func deploy(gen, observed int64, replicas int32, st appsv1.DeploymentStatus) *appsv1.Deployment {
	st.ObservedGeneration = observed
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: gen, Annotations: map[string]string{appsv1.RevisionAnnotation: "3"}},
		Spec:       appsv1.DeploymentSpec{Replicas: i32(replicas)},
		Status:     st,
	}
}

func TestStatus(t *testing.T) {
	progressing := func(reason string) []appsv1.DeploymentCondition {
		return []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: reason}}
	}
	cases := []struct {
		name     string
		d        *appsv1.Deployment
		revision int64
		msg      string
		done     bool
		err      string
	}{
		{"spec not observed", deploy(3, 2, 3, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}), 0,
			"Waiting for deployment spec update to be observed...\n", false, ""},
		{"new replicas being updated", deploy(2, 2, 3, appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1, AvailableReplicas: 3}), 0,
			"Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...\n", false, ""},
		{"old replicas terminating", deploy(2, 2, 3, appsv1.DeploymentStatus{Replicas: 5, UpdatedReplicas: 3, AvailableReplicas: 3}), 0,
			"Waiting for deployment \"web\" rollout to finish: 2 old replicas are pending termination...\n", false, ""},
		{"updated not yet available", deploy(2, 2, 3, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 1}), 0,
			"Waiting for deployment \"web\" rollout to finish: 1 of 3 updated replicas are available...\n", false, ""},
		{"done", deploy(2, 2, 3, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3,
			Conditions: progressing("NewReplicaSetAvailable")}), 0,
			"deployment \"web\" successfully rolled out\n", true, ""},
		{"scaled to zero is done", deploy(5, 5, 0, appsv1.DeploymentStatus{}), 0, "deployment \"web\" successfully rolled out\n", true, ""},
		{"deadline exceeded", deploy(2, 2, 3, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, Conditions: progressing(ProgressDeadlineExceeded)}), 0,
			"", false, `deployment "web" exceeded its progress deadline`},
		{"deadline is only judged once observed", deploy(3, 2, 3, appsv1.DeploymentStatus{Conditions: progressing(ProgressDeadlineExceeded)}), 0,
			"Waiting for deployment spec update to be observed...\n", false, ""},
		{"right revision", deploy(2, 2, 1, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}), 3,
			"deployment \"web\" successfully rolled out\n", true, ""},
		{"other revision", deploy(2, 2, 1, appsv1.DeploymentStatus{}), 2, "", false, "desired revision (2) is different from the running revision (3)"},
	}
	for _, c := range cases {
		msg, done, err := Status(c.d, c.revision)
		if msg != c.msg || done != c.done || (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("%s: Status = %q, %v, %v; want %q, %v, %q", c.name, msg, done, err, c.msg, c.done, c.err)
		}
	}
}

func rs(name string, owner types.UID, rev, image, cause string) appsv1.ReplicaSet {
	ann := map[string]string{}
	if rev != "" {
		ann[appsv1.RevisionAnnotation] = rev
	}
	if cause != "" {
		ann[ChangeCauseAnnotation] = cause
	}
	yes := true
	return appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann,
			OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", UID: owner, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: name}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}}}},
	}
}

func TestHistoryAndFind(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "d1"}}
	rss := []appsv1.ReplicaSet{
		rs("web-c", "d1", "10", "v3", "set image v3"),
		rs("web-a", "d1", "2", "v1", ""),
		rs("other", "d2", "5", "x", ""),     // another deployment's
		rs("web-b", "d1", "7", "v2", ""),    //
		rs("web-x", "d1", "", "vx", ""),     // no revision
		rs("web-y", "d1", "oops", "vy", ""), // bad revision
	}
	h := History(d, rss)
	var got []string
	for _, e := range h {
		got = append(got, e.ReplicaSet.Name)
	}
	if strings.Join(got, ",") != "web-a,web-b,web-c" {
		t.Fatalf("history = %v", got)
	}
	if h[2].ChangeCause != "set image v3" {
		t.Errorf("change cause = %q", h[2].ChangeCause)
	}
	if e, err := Find(h, 0); err != nil || e.Revision != 7 {
		t.Errorf("previous = %v, %v", e.Revision, err)
	}
	if e, err := Find(h, 2); err != nil || e.ReplicaSet.Name != "web-a" {
		t.Errorf("revision 2 = %v, %v", e, err)
	}
	if _, err := Find(h, 3); err == nil {
		t.Error("missing revision found")
	}
	if _, err := Find(h[:1], 0); err == nil {
		t.Error("previous of a single revision found")
	}
	if _, err := Find(nil, 0); err == nil {
		t.Error("empty history gives a revision")
	}
	tmpl := Template(h[0].ReplicaSet)
	if _, ok := tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; ok || tmpl.Labels["app"] != "web" {
		t.Errorf("template labels = %v", tmpl.Labels)
	}
	if _, ok := h[0].ReplicaSet.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; !ok {
		t.Error("Template changed the ReplicaSet")
	}
	if !SameTemplate(tmpl, h[0].ReplicaSet.Spec.Template) || SameTemplate(tmpl, h[1].ReplicaSet.Spec.Template) {
		t.Error("SameTemplate is wrong")
	}
	d.Annotations = map[string]string{"keep": "me", ChangeCauseAnnotation: "old"}
	ann := RollbackAnnotations(d, h[2].ReplicaSet)
	if ann["keep"] != "me" || ann[ChangeCauseAnnotation] != "set image v3" || ann[appsv1.RevisionAnnotation] != "" {
		t.Errorf("rollback annotations = %v", ann)
	}
}

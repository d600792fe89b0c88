package validation

import (
	"testing"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	autoscalingv1 "github.com/minik8s/minik8s/api/autoscaling/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValidateDeployment(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *appsv1.Deployment)
		want   []string
	}{
		{name: "valid", mutate: func(d *appsv1.Deployment) {}},
		{name: "valid recreate with expressions", mutate: func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
			d.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web"}}}}
		}},
		{name: "zero replicas is valid", mutate: func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(0)) }},
		{name: "negative replicas", mutate: func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(-1)) },
			want: []string{"spec.replicas: Invalid value"}},
		{name: "selector required", mutate: func(d *appsv1.Deployment) { d.Spec.Selector = nil },
			want: []string{"spec.selector: Required value"}},
		{name: "empty selector", mutate: func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} },
			want: []string{"spec.selector: Invalid value"}},
		{name: "selector does not match template", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "other"} },
			want: []string{"spec.template.metadata.labels: Invalid value"}},
		{name: "template restart policy must be Always", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			want: []string{"spec.template.spec.restartPolicy: Unsupported value"}},
		{name: "template container errors are nested", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" },
			want: []string{"spec.template.spec.containers[0].image: Required value"}},
		{name: "template active deadline forbidden", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.ActiveDeadlineSeconds = ptr(int64(5)) },
			want: []string{"spec.template.spec.activeDeadlineSeconds: Forbidden"}},
		{name: "surge and unavailable both zero", mutate: func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr(intstr.FromInt32(0)), MaxUnavailable: ptr(intstr.FromString("0%"))}
		}, want: []string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value"}},
		{name: "bad percentages", mutate: func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr(intstr.FromString("lots")), MaxUnavailable: ptr(intstr.FromString("150%"))}
		}, want: []string{"spec.strategy.rollingUpdate.maxSurge: Invalid value", "spec.strategy.rollingUpdate.maxUnavailable: Invalid value"}},
		{name: "negative surge", mutate: func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate.MaxSurge = ptr(intstr.FromInt32(-1))
		}, want: []string{"spec.strategy.rollingUpdate.maxSurge: Invalid value"}},
		{name: "recreate with rolling update", mutate: func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType },
			want: []string{"spec.strategy.rollingUpdate: Forbidden"}},
		{name: "unknown strategy", mutate: func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "BlueGreen" },
			want: []string{"spec.strategy.type: Unsupported value"}},
		{name: "progress deadline vs min ready", mutate: func(d *appsv1.Deployment) {
			d.Spec.MinReadySeconds = 600
			d.Spec.RevisionHistoryLimit = ptr(int32(-1))
		}, want: []string{"spec.progressDeadlineSeconds: Invalid value", "spec.revisionHistoryLimit: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDeployment()
			tt.mutate(d)
			expectErrors(t, ValidateCreate(d), tt.want...)
		})
	}
}

// TestDeploymentSelectorMessage pins the message users see when the
// template labels are not selected.
func TestDeploymentSelectorMessage(t *testing.T) {
	d := validDeployment()
	d.Spec.Template.Labels = map[string]string{"app": "other"}
	errs := ValidateDeployment(d)
	want := "spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("got %v\nwant %s", errs, want)
	}
}

func TestValidateDeploymentUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *appsv1.Deployment)
		want   []string
	}{
		{name: "scale and new image", mutate: func(d *appsv1.Deployment) {
			d.Spec.Replicas = ptr(int32(5))
			d.Spec.Template.Spec.Containers[0].Image = "minik8s.local/web:v2"
			d.Generation++
		}},
		{name: "selector immutable", mutate: func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "fe"}}
			d.Spec.Template.Labels["tier"] = "fe"
		}, want: []string{"spec.selector: Invalid value"}},
		{name: "generation may not go back", mutate: func(d *appsv1.Deployment) { d.Generation = 1 },
			want: []string{"metadata.generation: Invalid value"}},
		{name: "resourceVersion required", mutate: func(d *appsv1.Deployment) { d.ResourceVersion = "" },
			want: []string{"metadata.resourceVersion: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := stored(validDeployment())
			old.Generation = 2
			d := old.DeepCopy()
			tt.mutate(d)
			expectErrors(t, ValidateUpdate(d, old), tt.want...)
		})
	}
}

func TestValidateDeploymentStatusUpdate(t *testing.T) {
	tests := []struct {
		name string
		st   appsv1.DeploymentStatus
		want []string
	}{
		{name: "consistent", st: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 2, UnavailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}}},
		{name: "inconsistent", st: appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 2, AvailableReplicas: 3, UpdatedReplicas: -1},
			want: []string{"status.updatedReplicas: Invalid value", "status.readyReplicas: Invalid value",
				"status.availableReplicas: Invalid value", "status.availableReplicas: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := stored(validDeployment())
			d := old.DeepCopy()
			d.Status = tt.st
			expectErrors(t, ValidateStatusUpdate(d, old), tt.want...)
		})
	}
}

func TestValidateReplicaSet(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(rs *appsv1.ReplicaSet)
		want   []string
	}{
		{name: "valid", mutate: func(rs *appsv1.ReplicaSet) {}},
		{name: "selector mismatch and negative replicas", mutate: func(rs *appsv1.ReplicaSet) {
			rs.Spec.Replicas = ptr(int32(-2))
			rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
		}, want: []string{"spec.replicas: Invalid value", "spec.template.metadata.labels: Invalid value"}},
		{name: "invalid selector operator", mutate: func(rs *appsv1.ReplicaSet) {
			rs.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Like"}}}
		}, want: []string{"spec.selector.matchExpressions[0].operator: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := validReplicaSet()
			tt.mutate(rs)
			expectErrors(t, ValidateCreate(rs), tt.want...)
		})
	}

	old := stored(validReplicaSet())
	rs := old.DeepCopy()
	rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "x": "y"}}
	rs.Spec.Template.Labels["x"] = "y"
	expectErrors(t, ValidateUpdate(rs, old), "spec.selector: Invalid value")

	rs = old.DeepCopy()
	rs.Status = appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 3, ReadyReplicas: 1, AvailableReplicas: 1}
	expectErrors(t, ValidateStatusUpdate(rs, old), "status.fullyLabeledReplicas: Invalid value")
}

func TestValidateScale(t *testing.T) {
	s := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: autoscalingv1.ScaleSpec{Replicas: 3}}
	expectErrors(t, ValidateCreate(s))
	s.Spec.Replicas = -1
	expectErrors(t, ValidateUpdate(s, s.DeepCopy()), "spec.replicas: Invalid value")
}

func TestDispatch(t *testing.T) {
	// Unknown types validate to an empty list.
	if errs := ValidateCreate(&metav1.Status{}); len(errs) != 0 {
		t.Errorf("unknown type: %v", errs)
	}
	if errs := ValidateUpdate(&metav1.Status{}, &metav1.Status{}); len(errs) != 0 {
		t.Errorf("unknown type update: %v", errs)
	}
	// Mismatched old/new types are an internal error, not a panic.
	errs := ValidateUpdate(validPod(), validService())
	expectErrors(t, errs, "<nil>: Internal error")
	errs = ValidateStatusUpdate(validDeployment(), validPod())
	expectErrors(t, errs, "<nil>: Internal error")
}

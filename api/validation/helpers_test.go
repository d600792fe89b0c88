package validation

import (
	"slices"
	"testing"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/api/defaults"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// summary renders errors as "path: Type" (e.g. "spec.containers[0].image:
// Required value"), sorted, so tests pin both the field and the rule.
func summary(errs field.ErrorList) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Field+": "+e.Type.String())
	}
	slices.Sort(out)
	return out
}

// expectErrors fails unless errs is exactly want (order-insensitive).
func expectErrors(t *testing.T, errs field.ErrorList, want ...string) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	got := summary(errs)
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n  got  %q\n  want %q\n  full: %v", got, want, errs.ToAggregate())
	}
}

func defaulted[T runtime.Object](obj T) T {
	defaults.Default(obj)
	return obj
}

func ptr[T any](v T) *T { return &v }

func validPod() *corev1.Pod {
	return defaulted(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web"}}}},
				{Name: "scratch"},
			},
			Containers: []corev1.Container{{
				Name:         "web",
				Image:        "minik8s.local/web:v1",
				Ports:        []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env:          []corev1.EnvVar{{Name: "MODE", Value: "prod"}},
				VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/web"}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}},
			}},
		},
	})
}

func validService() *corev1.Service {
	return defaulted(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	})
}

func validDeployment() *appsv1.Deployment {
	return defaulted(&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "minik8s.local/web:v1"}}},
			},
		},
	})
}

func validReplicaSet() *appsv1.ReplicaSet {
	d := validDeployment()
	return defaulted(&appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "default"},
		Spec:       appsv1.ReplicaSetSpec{Replicas: ptr(int32(2)), Selector: d.Spec.Selector, Template: d.Spec.Template},
	})
}

// stored marks an object as read back from storage so that
// ValidateObjectMetaUpdate accepts it as the old or new object of an update.
func stored[T metav1.Object](obj T) T {
	obj.SetResourceVersion("7")
	obj.SetUID("uid-1")
	return obj
}

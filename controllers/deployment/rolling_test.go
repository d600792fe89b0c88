package deployment

import (
	"fmt"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

func template(image string, labels map[string]string) *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
	}
}

func TestTemplateHash(t *testing.T) {
	a := template("web:v1", map[string]string{"app": "web"})
	h := TemplateHash(a, nil)
	if h == "" || len(h) > 10 {
		t.Fatalf("hash %q: want a short non-empty label value", h)
	}
	for _, r := range h {
		if !slices.Contains([]rune(hashAlphabet), r) {
			t.Fatalf("hash %q has %q outside the alphabet", h, r)
		}
	}
	if again := TemplateHash(template("web:v1", map[string]string{"app": "web"}), nil); again != h {
		t.Errorf("same template hashed to %q and %q", h, again)
	}
	withLabel := template("web:v1", map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: "zzz"})
	if got := TemplateHash(withLabel, nil); got != h {
		t.Errorf("pod-template-hash label changed the hash: %q vs %q", got, h)
	}
	if got := TemplateHash(template("web:v2", map[string]string{"app": "web"}), nil); got == h {
		t.Error("different images hashed the same")
	}
	one := int32(1)
	if got := TemplateHash(a, &one); got == h {
		t.Error("collisionCount did not change the hash")
	}
	if !EqualIgnoreHash(a, withLabel) || EqualIgnoreHash(a, template("web:v2", map[string]string{"app": "web"})) {
		t.Error("EqualIgnoreHash")
	}
}

func deploy(replicas int32, surge, unavailable intstr.IntOrString) *appsv1.Deployment {
	return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &replicas, Strategy: appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}}}}
}

func TestFenceposts(t *testing.T) {
	i, s := intstr.FromInt32, intstr.FromString
	tests := []struct {
		d              *appsv1.Deployment
		surge, unavail int32
	}{
		{deploy(10, i(3), i(2)), 3, 2},
		{deploy(10, s("25%"), s("25%")), 3, 2}, // surge rounds up, unavailable down
		{deploy(4, s("10%"), s("10%")), 1, 0},
		{deploy(10, i(0), i(0)), 0, 1}, // both zero would block: unavailable becomes 1
		{deploy(10, s("0%"), s("0%")), 0, 1},
		{deploy(3, i(1), i(5)), 1, 3}, // cannot lose more than all
		{deploy(0, s("25%"), s("25%")), 0, 0},
		{&appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}, 0, 0},
	}
	for n, tt := range tests {
		surge, unavail, err := Fenceposts(tt.d)
		if err != nil || surge != tt.surge || unavail != tt.unavail {
			t.Errorf("case %d: Fenceposts = %d, %d, %v; want %d, %d", n, surge, unavail, err, tt.surge, tt.unavail)
		}
	}
}

func TestNewReplicas(t *testing.T) {
	tests := []struct {
		name           string
		desired, surge int32
		newRS          Replicas
		old            []Replicas
		want           int32
	}{
		{"start: surge budget", 10, 3, Replicas{}, []Replicas{{10, 10, 10}}, 3},
		{"budget partly used", 10, 3, Replicas{3, 3, 3}, []Replicas{{8, 8, 8}}, 5},
		{"old pods not gone yet count", 10, 3, Replicas{3, 3, 3}, []Replicas{{8, 10, 8}}, 3},
		{"no surge waits for old pods", 10, 0, Replicas{}, []Replicas{{8, 10, 8}}, 0},
		{"no surge after old pods left", 10, 0, Replicas{}, []Replicas{{8, 8, 8}}, 2},
		{"never above desired", 10, 5, Replicas{8, 8, 8}, []Replicas{{1, 1, 1}}, 10},
		{"scaled down deployment", 5, 2, Replicas{8, 8, 8}, nil, 5},
		{"new pods counted by the larger of spec and pods", 10, 3, Replicas{2, 4, 2}, []Replicas{{8, 8, 8}}, 3},
	}
	for _, tt := range tests {
		if got := NewReplicas(tt.desired, tt.surge, tt.newRS, tt.old); got != tt.want {
			t.Errorf("%s: NewReplicas = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestOldReplicas(t *testing.T) {
	tests := []struct {
		name          string
		desired, unav int32
		newRS         Replicas
		old           []Replicas
		want          []int32
	}{
		{"availability budget", 10, 2, Replicas{3, 3, 0}, []Replicas{{10, 10, 10}}, []int32{8}},
		{"new pods available widen it", 10, 2, Replicas{3, 3, 3}, []Replicas{{8, 8, 8}}, []int32{5}},
		{"no budget: nothing", 10, 0, Replicas{1, 1, 0}, []Replicas{{10, 10, 10}}, []int32{10}},
		{"unavailable old replicas kept while new ones are unavailable", 10, 0, Replicas{1, 1, 0}, []Replicas{{10, 10, 7}}, []int32{10}},
		{"unavailable old replicas go when the rest covers them", 10, 2, Replicas{3, 3, 3}, []Replicas{{10, 10, 7}}, []int32{5}},
		{"broken new template: old unready pods stay", 3, 0, Replicas{1, 1, 0}, []Replicas{{3, 3, 0}}, []int32{3}},
		{"oldest first", 10, 2, Replicas{5, 5, 5}, []Replicas{{3, 3, 3}, {4, 4, 4}}, []int32{0, 3}},
		{"finished", 10, 2, Replicas{10, 10, 10}, []Replicas{{2, 2, 2}}, []int32{0}},
		{"available capped by spec", 10, 2, Replicas{3, 3, 3}, []Replicas{{5, 8, 5}}, []int32{5}},
	}
	for _, tt := range tests {
		if got := OldReplicas(tt.desired, tt.unav, tt.newRS, tt.old); !slices.Equal(got, tt.want) {
			t.Errorf("%s: OldReplicas = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestRollingStepsKeepBounds simulates a whole rollout in which pods
// appear, become available and go exactly as the ReplicaSets say, and
// checks the bounds after every step.
func TestRollingStepsKeepBounds(t *testing.T) {
	for _, tc := range []struct{ desired, surge, unav int32 }{{10, 3, 2}, {10, 0, 1}, {10, 1, 0}, {5, 5, 5}, {3, 1, 1}} {
		t.Run(fmt.Sprint(tc), func(t *testing.T) {
			newRS := Replicas{}
			old := []Replicas{{tc.desired, tc.desired, tc.desired}}
			for step := 0; step < 100; step++ {
				n := NewReplicas(tc.desired, tc.surge, newRS, old)
				newRS.Spec = n
				newRS.Pods = max(newRS.Pods, n) // pods come up
				targets := OldReplicas(tc.desired, tc.unav, newRS, old)
				for i := range old {
					old[i].Spec = targets[i]
					old[i].Pods = targets[i]
					old[i].Available = min(old[i].Available, targets[i])
				}
				total := newRS.Pods + old[0].Pods
				avail := newRS.Available + old[0].Available
				if total > tc.desired+tc.surge {
					t.Fatalf("step %d: %d pods > %d", step, total, tc.desired+tc.surge)
				}
				if avail < tc.desired-tc.unav {
					t.Fatalf("step %d: %d available < %d", step, avail, tc.desired-tc.unav)
				}
				newRS.Available = newRS.Pods // new pods become available
				if newRS.Spec == tc.desired && newRS.Available == tc.desired && old[0].Spec == 0 {
					return
				}
			}
			t.Fatalf("rollout did not finish: new %+v old %+v", newRS, old)
		})
	}
}

func TestProportional(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int32
		delta int32
		order []int
		want  []int32
	}{
		{"grow mid-rollout", []int32{8, 5}, 12, []int{0, 1}, []int32{16, 9}},
		{"shrink", []int32{8, 5}, -6, []int{0, 1}, []int32{4, 3}},
		{"even split", []int32{5, 5}, 4, []int{1, 0}, []int32{7, 7}},
		{"leftover to the first in order", []int32{5, 5}, 3, []int{1, 0}, []int32{6, 7}},
		{"to zero", []int32{3, 1}, -4, []int{0, 1}, []int32{0, 0}},
		{"all at zero", []int32{0, 0}, 3, []int{1, 0}, []int32{0, 3}},
		{"nothing", []int32{3, 4}, 0, []int{1, 0}, []int32{3, 4}},
	}
	for _, tt := range tests {
		got := Proportional(tt.sizes, tt.delta, tt.order)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Proportional(%v, %d) = %v, want %v", tt.name, tt.sizes, tt.delta, got, tt.want)
		}
		var sumIn, sumOut int32
		for i := range got {
			sumIn += tt.sizes[i]
			sumOut += got[i]
		}
		if sumOut != max(0, sumIn+tt.delta) {
			t.Errorf("%s: total %d, want %d", tt.name, sumOut, sumIn+tt.delta)
		}
	}
}

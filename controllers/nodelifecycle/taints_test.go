package nodelifecycle

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

func TestTolerates(t *testing.T) {
	taint := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	valued := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name  string
		tol   corev1.Toleration
		taint corev1.Taint
		want  bool
	}{
		{"exists on key", corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists}, taint, true},
		{"exists with effect", corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}, taint, true},
		{"wrong effect", corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}, taint, false},
		{"other key", corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists}, taint, false},
		{"empty key exists tolerates all", corev1.Toleration{Operator: corev1.TolerationOpExists}, valued, true},
		{"equal value", corev1.Toleration{Key: "dedicated", Value: "gpu"}, valued, true},
		{"equal wrong value", corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "cpu"}, valued, false},
		{"equal needs a key", corev1.Toleration{Operator: corev1.TolerationOpEqual}, valued, false},
	}
	for _, tt := range tests {
		if got := Tolerates(tt.tol, tt.taint); got != tt.want {
			t.Errorf("%s: Tolerates = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEvictionTime(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	now := t0.Add(time.Minute)
	added := metav1.NewTime(t0)
	unreach := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}
	noSched := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule, TimeAdded: &added}
	custom := corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}
	defaults := map[string]int64{corev1.TaintNodeUnreachable: 300, corev1.TaintNodeNotReady: 300}
	secs := func(n int64) *int64 { return &n }
	pod := func(tols ...corev1.Toleration) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Tolerations: tols}}
	}
	tolUnreach := func(s *int64) corev1.Toleration {
		return corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: s}
	}
	tests := []struct {
		name   string
		pod    *corev1.Pod
		taints []corev1.Taint
		want   time.Time
	}{
		{"no NoExecute taints", pod(), []corev1.Taint{noSched}, Never},
		{"default toleration", pod(), []corev1.Taint{unreach}, t0.Add(300 * time.Second)},
		{"own toleration seconds", pod(tolUnreach(secs(30))), []corev1.Taint{unreach}, t0.Add(30 * time.Second)},
		{"shortest matching toleration wins", pod(tolUnreach(secs(30)), tolUnreach(secs(10))), []corev1.Taint{unreach}, t0.Add(10 * time.Second)},
		{"forever", pod(tolUnreach(nil)), []corev1.Taint{unreach}, Never},
		{"untolerated custom taint: at once", pod(tolUnreach(nil)), []corev1.Taint{unreach, custom}, t0},
		{"earliest taint decides", pod(tolUnreach(secs(100)), corev1.Toleration{Key: "maintenance", Operator: corev1.TolerationOpExists, TolerationSeconds: secs(20)}),
			[]corev1.Taint{unreach, custom}, t0.Add(20 * time.Second)},
		{"taint without time counts from now", pod(tolUnreach(secs(5))), []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}}, now.Add(5 * time.Second)},
	}
	for _, tt := range tests {
		if got := EvictionTime(tt.pod, tt.taints, defaults, now); !got.Equal(tt.want) {
			t.Errorf("%s: EvictionTime = %v, want %v", tt.name, got, tt.want)
		}
	}
}

package podgc

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

func node(ready corev1.ConditionStatus, taints ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
	}
	for _, t := range taints {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: t, Effect: corev1.TaintEffectNoExecute})
	}
	return n
}

func pod(nodeName string, deleting bool, phase corev1.PodPhase) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1"}}
	p.Spec.NodeName = nodeName
	p.Status.Phase = phase
	if deleting {
		now := metav1.Now()
		p.DeletionTimestamp = &now
	}
	return p
}

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		name string
		pod  *corev1.Pod
		node *corev1.Node
		want verdict
	}{
		{"running on a ready node", pod("n1", false, corev1.PodRunning), node(corev1.ConditionTrue), keep},
		{"pending, not scheduled", pod("", false, corev1.PodPending), nil, keep},
		{"unscheduled and terminating", pod("", true, corev1.PodPending), nil, unscheduledTerminating},
		{"node missing", pod("n1", false, corev1.PodRunning), nil, orphaned},
		{"node missing, pod terminating", pod("n1", true, corev1.PodRunning), nil, orphaned},
		{"node missing, pod finished", pod("n1", false, corev1.PodSucceeded), nil, orphaned},
		{"terminating, node not ready, out-of-service", pod("n1", true, corev1.PodRunning),
			node(corev1.ConditionFalse, TaintNodeOutOfService), outOfService},
		{"terminating, node unknown, out-of-service", pod("n1", true, corev1.PodRunning),
			node(corev1.ConditionUnknown, corev1.TaintNodeUnreachable, TaintNodeOutOfService), outOfService},
		{"terminating, node without Ready condition, out-of-service", pod("n1", true, corev1.PodRunning),
			node("", TaintNodeOutOfService), outOfService},
		{"terminating, node not ready, no taint", pod("n1", true, corev1.PodRunning),
			node(corev1.ConditionUnknown, corev1.TaintNodeUnreachable), keep},
		{"terminating, node ready, out-of-service", pod("n1", true, corev1.PodRunning),
			node(corev1.ConditionTrue, TaintNodeOutOfService), keep},
		{"not terminating, node not ready, out-of-service", pod("n1", false, corev1.PodRunning),
			node(corev1.ConditionFalse, TaintNodeOutOfService), keep},
	} {
		if got := classify(tt.pod, tt.node); got != tt.want {
			t.Errorf("%s: classify = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTerminatedVictims(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name string, age int, phase corev1.PodPhase, reason string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
			CreationTimestamp: metav1.NewTime(base.Add(time.Duration(age) * time.Minute))}}
		p.Status.Phase, p.Status.Reason = phase, reason
		return p
	}
	pods := []*corev1.Pod{
		mk("s3", 3, corev1.PodSucceeded, ""),
		mk("r0", 0, corev1.PodRunning, ""), // oldest, but running
		mk("f1", 1, corev1.PodFailed, ""),
		mk("e5", 5, corev1.PodFailed, "Evicted"), // newest terminated, but evicted
		mk("s2", 2, corev1.PodSucceeded, ""),
		mk("b2", 2, corev1.PodSucceeded, ""), // same age as s2: by name
		mk("p9", 9, corev1.PodPending, ""),
		mk("d0", 0, corev1.PodFailed, ""), // oldest, but being deleted
		mk("g0", 0, corev1.PodFailed, ""), // oldest, but pod GC is deleting it
	}
	now := metav1.Now()
	pods[7].DeletionTimestamp = &now
	pods[8].Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: ReasonDeletionByPodGC}}
	for _, tt := range []struct {
		threshold int
		want      string
	}{
		{0, ""}, // disabled
		{-1, ""},
		{5, ""}, // exactly 5 terminated
		{10, ""},
		{4, "e5"},
		{3, "e5 f1"},
		{2, "e5 f1 b2"},
		{1, "e5 f1 b2 s2"},
	} {
		var names []string
		for _, p := range terminatedVictims(pods, tt.threshold) {
			names = append(names, p.Name)
		}
		if got := strings.Join(names, " "); got != tt.want {
			t.Errorf("threshold %d: victims %q, want %q", tt.threshold, got, tt.want)
		}
	}
}

// TestQuarantine: the quarantine runs from the first time a pod is seen
// orphaned; a new pod under the same name, a move to another node or a
// forget starts it over. Times are given, not measured.
func TestQuarantine(t *testing.T) {
	q := newQuarantine(40 * time.Second)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1"}, Spec: corev1.PodSpec{NodeName: "gone"}}
	steps := []struct {
		what string
		at   time.Duration
		uid  types.UID
		node string
		want time.Duration
	}{
		{"first sight", 0, "u1", "gone", 40 * time.Second},
		{"10s later", 10 * time.Second, "u1", "gone", 30 * time.Second},
		{"at the end", 40 * time.Second, "u1", "gone", 0},
		{"after it", 55 * time.Second, "u1", "gone", -15 * time.Second},
		{"recreated pod", 60 * time.Second, "u2", "gone", 40 * time.Second},
		{"other node", 70 * time.Second, "u2", "other", 40 * time.Second},
		{"same again", 75 * time.Second, "u2", "other", 35 * time.Second},
	}
	for _, s := range steps {
		p.UID, p.Spec.NodeName = s.uid, s.node
		if got := q.wait("ns/p", p, t0.Add(s.at)); got != s.want {
			t.Errorf("%s: wait = %v, want %v", s.what, got, s.want)
		}
	}
	q.forget("ns/p")
	if q.len() != 0 {
		t.Fatalf("forget left %d marks", q.len())
	}
	if got := q.wait("ns/p", p, t0.Add(100*time.Second)); got != 40*time.Second {
		t.Errorf("after forget: wait = %v, want the full quarantine", got)
	}
}

func TestNegativeThreshold(t *testing.T) {
	if _, err := New(nil, nil, nil, Config{TerminatedPodThreshold: -1}); err == nil || !strings.Contains(err.Error(), "0 (disabled) or more") {
		t.Fatalf("New with threshold -1: %v", err)
	}
}

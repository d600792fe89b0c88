package replicaset

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

type podOpt func(*corev1.Pod)

func node(n string) podOpt            { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func created(d time.Duration) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t0.Add(d)) }
}
func restartsN(n int32) podOpt {
	return func(p *corev1.Pod) { p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: n}} }
}
func labelled(l map[string]string) podOpt { return func(p *corev1.Pod) { p.Labels = l } }
func readyAt(d time.Duration) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady,
			Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(d))})
	}
}

func mkPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: metav1.NewTime(t0)}}
	p.Status.Phase = corev1.PodRunning
	for _, o := range opts {
		o(p)
	}
	return p
}

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func TestPodsToDeleteOrder(t *testing.T) {
	tests := []struct {
		name string
		pods []*corev1.Pod
		n    int
		want []string
	}{
		{"unscheduled first",
			[]*corev1.Pod{mkPod("on-node", node("n1"), readyAt(0)), mkPod("pending", phase(corev1.PodPending))},
			1, []string{"pending"}},
		{"pending before unknown before running",
			[]*corev1.Pod{mkPod("running", node("n"), phase(corev1.PodRunning)), mkPod("unknown", node("n"), phase(corev1.PodUnknown)),
				mkPod("pend", node("n"), phase(corev1.PodPending))},
			3, []string{"pend", "unknown", "running"}},
		{"not ready before ready",
			[]*corev1.Pod{mkPod("ready", node("n"), readyAt(0)), mkPod("notready", node("n"))},
			1, []string{"notready"}},
		{"ready for less time first",
			[]*corev1.Pod{mkPod("old-ready", node("n"), readyAt(0)), mkPod("new-ready", node("n"), readyAt(time.Minute))},
			1, []string{"new-ready"}},
		{"more restarts first",
			[]*corev1.Pod{mkPod("calm", node("n"), readyAt(0)), mkPod("crashy", node("n"), readyAt(0), restartsN(4))},
			1, []string{"crashy"}},
		{"newest first",
			[]*corev1.Pod{mkPod("older", node("n"), created(0)), mkPod("newer", node("n"), created(time.Hour)), mkPod("mid", node("n"), created(time.Minute))},
			2, []string{"newer", "mid"}},
		{"name breaks ties", []*corev1.Pod{mkPod("b", node("n")), mkPod("a", node("n"))}, 2, []string{"a", "b"}},
		{"n larger than pods", []*corev1.Pod{mkPod("a")}, 3, []string{"a"}},
		{"zero", []*corev1.Pod{mkPod("a")}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := names(PodsToDelete(tt.pods, tt.n))
			if !slices.Equal(got, tt.want) {
				t.Errorf("PodsToDelete = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSlowStartBatch(t *testing.T) {
	tests := []struct {
		count, failAt, wantAttempted int
	}{
		{count: 0, failAt: -1, wantAttempted: 0},
		{count: 10, failAt: -1, wantAttempted: 10}, // batches 1,2,4,3
		{count: 10, failAt: 1, wantAttempted: 1},   // first call fails: stop at once
		{count: 10, failAt: 2, wantAttempted: 3},   // fails in the batch of 2
		{count: 10, failAt: 5, wantAttempted: 7},   // fails in the batch of 4
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.count, "/", tt.failAt), func(t *testing.T) {
			var calls atomic.Int32
			attempted, err := slowStartBatch(tt.count, 1, func() error {
				if n := calls.Add(1); int(n) == tt.failAt {
					return errors.New("boom")
				}
				return nil
			})
			if attempted != tt.wantAttempted || int(calls.Load()) != attempted {
				t.Errorf("attempted %d (calls %d), want %d", attempted, calls.Load(), tt.wantAttempted)
			}
			if (err != nil) != (tt.failAt > 0) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestCalculateStatus(t *testing.T) {
	three := int32(3)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "rs", Generation: 7},
		Spec: appsv1.ReplicaSetSpec{Replicas: &three, MinReadySeconds: 10,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a", "tier": "web"}}}},
	}
	now := t0.Add(time.Minute)
	pods := []*corev1.Pod{
		mkPod("full-available", labelled(map[string]string{"app": "a", "tier": "web"}), readyAt(0)),
		mkPod("full-ready-recent", labelled(map[string]string{"app": "a", "tier": "web"}), readyAt(55*time.Second)),
		mkPod("partial-notready", labelled(map[string]string{"app": "a"})),
	}
	st := calculateStatus(rs, pods, nil, now)
	want := appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 1, ObservedGeneration: 7}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Errorf("status = %+v, want %+v", st, want)
	}
	if d := nextAvailable(pods, 10, now); d < 5*time.Second || d > 6*time.Second {
		t.Errorf("nextAvailable = %v, want about 5s", d)
	}

	failed := calculateStatus(rs, pods[:1], errors.New("quota"), now)
	if len(failed.Conditions) != 1 || failed.Conditions[0].Reason != "FailedCreate" || failed.Conditions[0].Status != corev1.ConditionTrue {
		t.Fatalf("conditions after failure = %+v", failed.Conditions)
	}
	rs.Status = failed
	if healed := calculateStatus(rs, pods, nil, now); len(healed.Conditions) != 0 {
		t.Errorf("ReplicaFailure kept after success: %+v", healed.Conditions)
	}
	if len(rs.Status.Conditions) != 1 {
		t.Error("calculateStatus modified its input")
	}
}

package scheduler

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/scheduler/framework"
	st "github.com/minik8s/minik8s/scheduler/internal/schedtest"
)

func TestFitErrorMessage(t *testing.T) {
	cpu := framework.NewStatus(framework.Unschedulable, "Insufficient cpu").WithPlugin("NodeResourcesFit")
	both := framework.NewStatus(framework.Unschedulable, "Insufficient cpu", "Insufficient memory").WithPlugin("NodeResourcesFit")
	taint := framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) had untolerated taint {key: value}").WithPlugin("TaintToleration")
	cases := []struct {
		name string
		err  *FitError
		want string
	}{
		{"the issue's example", &FitError{NumAllNodes: 3, Statuses: []*framework.Status{cpu, taint, cpu}},
			"0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient cpu."},
		{"several reasons on one node count separately", &FitError{NumAllNodes: 2, Statuses: []*framework.Status{both, cpu}},
			"0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu."},
		{"nodes not checked are not counted", &FitError{NumAllNodes: 5, Statuses: []*framework.Status{nil, cpu, nil}},
			"0/5 nodes are available: 1 Insufficient cpu."},
		{"prefilter rejection", &FitError{NumAllNodes: 4, PreFilter: framework.NewStatus(framework.UnschedulableAndUnresolvable, "invalid pod anti-affinity: bad")},
			"0/4 nodes are available: invalid pod anti-affinity: bad."},
		{"no nodes", &FitError{}, "no nodes available to schedule pods"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
	plugins := (&FitError{NumAllNodes: 3, Statuses: []*framework.Status{cpu, taint, nil}}).UnschedulablePlugins()
	if len(plugins) != 2 {
		t.Errorf("UnschedulablePlugins = %v", plugins)
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	cases := []struct {
		pct        int32
		nodes, out int
	}{
		{0, 10, 10},
		{0, 99, 99},
		{0, 100, 100},   // 50% of 100 = 50, but at least 100
		{0, 1000, 420},  // 50 - 1000/125 = 42%
		{0, 5000, 500},  // 50 - 40 = 10%
		{0, 6000, 300},  // 50 - 48 = 2% → at least 5%
		{0, 1500, 570},  // 50 - 12 = 38%
		{10, 1000, 100}, // 10% = 100
		{5, 1000, 100},  // 5% = 50 → at least 100
		{100, 1000, 1000},
	}
	for _, tc := range cases {
		if got := numFeasibleNodesToFind(tc.pct, tc.nodes); got != tc.out {
			t.Errorf("numFeasibleNodesToFind(%d%%, %d) = %d, want %d", tc.pct, tc.nodes, got, tc.out)
		}
	}
}

func TestSelectHostPicksTheBestAndSharesTies(t *testing.T) {
	if got := selectHost([]int64{3, 9, 4}); got != 1 {
		t.Errorf("selectHost = %d, want 1", got)
	}
	hits := make([]int, 4)
	for range 4000 {
		hits[selectHost([]int64{5, 7, 7, 7})]++
	}
	if hits[0] != 0 {
		t.Errorf("a lower score was picked %d times", hits[0])
	}
	for i := 1; i < 4; i++ {
		// Uniform would be ~1333 each; allow generous slack.
		if hits[i] < 1000 || hits[i] > 1700 {
			t.Errorf("tie %d picked %d of 4000 times: %v", i, hits[i], hits)
		}
	}
}

func TestWithPodScheduledFalse(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	pod := st.Pod("ns", "p")
	next, changed := withPodScheduledFalse(pod, "Unschedulable", "m1", t0)
	if !changed || next == pod {
		t.Fatal("first condition not added on a copy")
	}
	c := scheduledCondition(next)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != "Unschedulable" || c.Message != "m1" || !c.LastTransitionTime.Equal(&t0) {
		t.Fatalf("condition %+v", c)
	}
	if len(pod.Status.Conditions) != 0 {
		t.Error("the original pod was modified")
	}
	if _, changed := withPodScheduledFalse(next, "Unschedulable", "m1", t1); changed {
		t.Error("an identical condition counts as a change")
	}
	again, changed := withPodScheduledFalse(next, "Unschedulable", "m2", t1)
	if c := scheduledCondition(again); !changed || c.Message != "m2" || !c.LastTransitionTime.Equal(&t0) {
		t.Errorf("new message: changed=%v condition %+v (transition time must stay %v)", changed, c, t0)
	}
	trueCond := st.Pod("ns", "p")
	trueCond.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: t0}}
	flipped, _ := withPodScheduledFalse(trueCond, "Unschedulable", "m", t1)
	if c := scheduledCondition(flipped); !c.LastTransitionTime.Equal(&t1) {
		t.Errorf("flip True→False kept transition time %v", c.LastTransitionTime)
	}
}

func scheduledCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func TestNodeChanges(t *testing.T) {
	base := st.Node("n", "1", "1Gi", 10)
	heartbeat := base.DeepCopy()
	heartbeat.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	heartbeat.ResourceVersion = "9"
	if evs := nodeChanges(base, heartbeat); len(evs) != 0 {
		t.Errorf("heartbeat: %v", evs)
	}
	changed := base.DeepCopy()
	changed.Labels["x"] = "y"
	changed.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}
	changed.Spec.Unschedulable = true
	changed.Status.Allocatable = st.Node("n", "2", "1Gi", 10).Status.Allocatable
	want := []framework.ClusterEvent{framework.NodeLabelChange, framework.NodeTaintChange, framework.NodeSpecUnschedulableChange, framework.NodeAllocatableChange}
	if evs := nodeChanges(base, changed); !slices.Equal(evs, want) {
		t.Errorf("changes %v, want %v", evs, want)
	}
}

package plugins

import (
	"context"
	"slices"
	"testing"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/scheduler/cache"
	"github.com/minik8s/minik8s/scheduler/framework"
	st "github.com/minik8s/minik8s/scheduler/internal/schedtest"
)

// scoreAll runs one Score plugin (with its PreScore and NormalizeScore) on
// all nodes of a snapshot, in the snapshot's order, and returns the scores
// by node name. skipped is true when PreScore skipped the plugin.
func scoreAll(t *testing.T, p framework.ScorePlugin, pod *corev1.Pod, nodes []*corev1.Node, bound ...*corev1.Pod) (scores map[string]int64, skipped bool) {
	t.Helper()
	ctx := context.Background()
	snap := cache.NewSnapshot(nodes, bound)
	state := framework.NewCycleState(snap)
	pi := framework.NewPodInfo(pod)
	list := snap.List()
	if ps, ok := p.(framework.PreScorePlugin); ok {
		s := ps.PreScore(ctx, state, pi, list)
		if s.IsSkip() {
			return nil, true
		}
		if !s.IsSuccess() {
			t.Fatalf("PreScore: %v", s.AsError())
		}
	}
	raw := make([]int64, len(list))
	for i, ni := range list {
		v, s := p.Score(ctx, state, pi, ni)
		if !s.IsSuccess() {
			t.Fatalf("Score %s: %v", ni.Node().Name, s.AsError())
		}
		raw[i] = v
	}
	if n, ok := p.(framework.ScoreNormalizer); ok {
		if s := n.NormalizeScore(ctx, state, pi, raw); !s.IsSuccess() {
			t.Fatalf("NormalizeScore: %v", s.AsError())
		}
	}
	scores = map[string]int64{}
	for i, ni := range list {
		if raw[i] < 0 || raw[i] > framework.MaxNodeScore {
			t.Errorf("node %s scored %d, outside [0,100]", ni.Node().Name, raw[i])
		}
		scores[ni.Node().Name] = raw[i]
	}
	return scores, false
}

func equalScores(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestLeastAllocatedScore(t *testing.T) {
	cases := []struct {
		name  string
		pod   *corev1.Pod
		nodes []*corev1.Node
		bound []*corev1.Pod
		want  map[string]int64
	}{
		{
			// cpu (4000-1000)/4000 = 75, memory (8Gi-2Gi)/8Gi = 75.
			name:  "empty nodes of different sizes",
			pod:   st.Pod("ns", "p", st.Container("1", "2Gi")),
			nodes: []*corev1.Node{st.Node("big", "4", "8Gi", 10), st.Node("small", "2", "4Gi", 10)},
			want:  map[string]int64{"big": 75, "small": 50},
		},
		{
			// busy: cpu (4000-3000)/4000=25, mem (8-6)/8=25 → 25.
			name:  "requests already on the node count",
			pod:   st.Pod("ns", "p", st.Container("1", "2Gi")),
			nodes: []*corev1.Node{st.Node("busy", "4", "8Gi", 10), st.Node("idle", "4", "8Gi", 10)},
			bound: []*corev1.Pod{st.Pod("ns", "a", st.Container("2", "4Gi"), st.OnNode("busy"))},
			want:  map[string]int64{"busy": 25, "idle": 75},
		},
		{
			// A pod without requests counts as 100m and 200Mi:
			// cpu (1000-100)/1000 = 90, memory (1000Mi-200Mi)/1000Mi = 80.
			name:  "no requests score with the defaults",
			pod:   st.Pod("ns", "p"),
			nodes: []*corev1.Node{st.Node("n", "1", "1000Mi", 10)},
			want:  map[string]int64{"n": 85},
		},
		{
			name:  "over-requested resource scores 0",
			pod:   st.Pod("ns", "p", st.Container("8", "1Gi")),
			nodes: []*corev1.Node{st.Node("n", "4", "2Gi", 10)},
			want:  map[string]int64{"n": 25},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := scoreAll(t, NodeResourcesFit{}, tc.pod, tc.nodes, tc.bound...)
			if !equalScores(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBalancedAllocationScore(t *testing.T) {
	cases := []struct {
		name  string
		pod   *corev1.Pod
		nodes []*corev1.Node
		bound []*corev1.Pod
		want  map[string]int64
	}{
		{
			// cpu 1/4 = .25, mem 2/8 = .25 → std 0 → 100.
			name:  "equal shares",
			pod:   st.Pod("ns", "p", st.Container("1", "2Gi")),
			nodes: []*corev1.Node{st.Node("n", "4", "8Gi", 10)},
			want:  map[string]int64{"n": 100},
		},
		{
			// cpu 3/4=.75, mem 2/8=.25 → std .25 → 75.
			name:  "unequal shares",
			pod:   st.Pod("ns", "p", st.Container("1", "2Gi")),
			nodes: []*corev1.Node{st.Node("n", "4", "8Gi", 10)},
			bound: []*corev1.Pod{st.Pod("ns", "a", st.Container("2", ""), st.OnNode("n"))},
			want:  map[string]int64{"n": 75},
		},
		{
			// cpu capped at 1, mem 0 → std .5 → 50.
			name:  "fractions are capped at one",
			pod:   st.Pod("ns", "p", st.Container("8", "")),
			nodes: []*corev1.Node{st.Node("n", "4", "8Gi", 10)},
			want:  map[string]int64{"n": 50},
		},
		{
			name:  "a node with one resource is balanced",
			pod:   st.Pod("ns", "p", st.Container("1", "")),
			nodes: []*corev1.Node{st.Node("n", "4", "", 10)},
			want:  map[string]int64{"n": 100},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := scoreAll(t, BalancedAllocation{}, tc.pod, tc.nodes, tc.bound...)
			if !equalScores(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNodeAffinityScore(t *testing.T) {
	nodes := []*corev1.Node{
		st.Node("ssd-a", "1", "1Gi", 10, st.NodeLabels("disk", "ssd", "zone", "a")),
		st.Node("ssd-b", "1", "1Gi", 10, st.NodeLabels("disk", "ssd", "zone", "b")),
		st.Node("hdd-a", "1", "1Gi", 10, st.NodeLabels("disk", "hdd", "zone", "a")),
		st.Node("none", "1", "1Gi", 10),
	}
	if _, skipped := scoreAll(t, NodeAffinity{}, st.Pod("ns", "p"), nodes); !skipped {
		t.Error("a pod without preferred terms is not skipped")
	}
	pod := st.Pod("ns", "p",
		st.PreferredNodeAffinity(80, st.Term(st.Expr("disk", corev1.NodeSelectorOpIn, "ssd"))),
		st.PreferredNodeAffinity(20, st.Term(st.Expr("zone", corev1.NodeSelectorOpIn, "a"))),
	)
	got, _ := scoreAll(t, NodeAffinity{}, pod, nodes)
	want := map[string]int64{"ssd-a": 100, "ssd-b": 80, "hdd-a": 20, "none": 0}
	if !equalScores(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestTaintTolerationScore(t *testing.T) {
	nodes := []*corev1.Node{
		st.Node("clean", "1", "1Gi", 10),
		st.Node("one", "1", "1Gi", 10, st.Taint("a", "1", corev1.TaintEffectPreferNoSchedule)),
		st.Node("two", "1", "1Gi", 10, st.Taint("a", "1", corev1.TaintEffectPreferNoSchedule), st.Taint("b", "2", corev1.TaintEffectPreferNoSchedule)),
		st.Node("hard", "1", "1Gi", 10, st.Taint("c", "3", corev1.TaintEffectNoSchedule)),
	}
	got, _ := scoreAll(t, TaintToleration{}, st.Pod("ns", "p"), nodes)
	want := map[string]int64{"clean": 100, "one": 50, "two": 0, "hard": 100}
	if !equalScores(got, want) {
		t.Errorf("no tolerations: got %v, want %v", got, want)
	}
	// Tolerating "a" leaves only "two" with one untolerated taint.
	got, _ = scoreAll(t, TaintToleration{}, st.Pod("ns", "p", st.Toleration("a", corev1.TolerationOpExists, "", corev1.TaintEffectPreferNoSchedule)), nodes)
	want = map[string]int64{"clean": 100, "one": 100, "two": 0, "hard": 100}
	if !equalScores(got, want) {
		t.Errorf("tolerating a: got %v, want %v", got, want)
	}
	// A NoSchedule toleration does not help against PreferNoSchedule.
	got, _ = scoreAll(t, TaintToleration{}, st.Pod("ns", "p", st.Toleration("a", corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule)), nodes)
	want = map[string]int64{"clean": 100, "one": 50, "two": 0, "hard": 100}
	if !equalScores(got, want) {
		t.Errorf("NoSchedule toleration: got %v, want %v", got, want)
	}
}

func TestOwnerSpreadScore(t *testing.T) {
	mine := func(name, node string) *corev1.Pod { return st.Pod("ns", name, st.OwnedBy("rs-1"), st.OnNode(node)) }
	other := func(name, node string) *corev1.Pod { return st.Pod("ns", name, st.OwnedBy("rs-2"), st.OnNode(node)) }
	nodes := []*corev1.Node{st.Node("a", "1", "1Gi", 10), st.Node("b", "1", "1Gi", 10), st.Node("c", "1", "1Gi", 10)}

	if _, skipped := scoreAll(t, OwnerSpread{}, st.Pod("ns", "p"), nodes); !skipped {
		t.Error("a pod without a controller is not skipped")
	}
	pod := st.Pod("ns", "p", st.OwnedBy("rs-1"))
	got, _ := scoreAll(t, OwnerSpread{}, pod, nodes)
	if want := map[string]int64{"a": 100, "b": 100, "c": 100}; !equalScores(got, want) {
		t.Errorf("no siblings: got %v, want %v", got, want)
	}
	got, _ = scoreAll(t, OwnerSpread{}, pod, nodes,
		mine("m1", "a"), mine("m2", "a"), mine("m3", "b"), other("o1", "c"), other("o2", "c"),
		st.Pod("elsewhere", "m4", st.OwnedBy("rs-1"), st.OnNode("c")))
	if want := map[string]int64{"a": 0, "b": 50, "c": 100}; !equalScores(got, want) {
		t.Errorf("siblings on a and b: got %v, want %v", got, want)
	}

	// With zones, the zone counts two thirds: zone x holds a (2 siblings)
	// and b (0); zone y holds c (1).
	zoned := []*corev1.Node{
		st.Node("a", "1", "1Gi", 10, st.NodeLabels(ZoneLabel, "x")),
		st.Node("b", "1", "1Gi", 10, st.NodeLabels(ZoneLabel, "x")),
		st.Node("c", "1", "1Gi", 10, st.NodeLabels(ZoneLabel, "y")),
	}
	got, _ = scoreAll(t, OwnerSpread{}, pod, zoned, mine("m1", "a"), mine("m2", "a"), mine("m3", "c"))
	// node: a 0, b 100, c 50; zone: x (2) 0, y (1) 50 → a 0, b 33, c 50.
	if want := map[string]int64{"a": 0, "b": 33, "c": 50}; !equalScores(got, want) {
		t.Errorf("zones: got %v, want %v", got, want)
	}
}

func TestPodInfoRequests(t *testing.T) {
	pi := framework.NewPodInfo(st.Pod("ns", "p",
		st.Container("250m", "64Mi"), st.Container("", "64Mi"), st.InitContainer("1", "")))
	if pi.Requests.MilliCPU != 1000 || pi.Requests.Memory != 128<<20 {
		t.Errorf("Requests = %+v, want 1000m and 128Mi (init container cpu wins, containers' memory sums)", pi.Requests)
	}
	// Non-zero: 250m + 100m default = 350m vs init 1000m; memory 128Mi vs init default 200Mi.
	if pi.NonZeroMilliCPU != 1000 || pi.NonZeroMemory != 200<<20 {
		t.Errorf("NonZero = %d/%d, want 1000 and 200Mi", pi.NonZeroMilliCPU, pi.NonZeroMemory)
	}
	pi = framework.NewPodInfo(st.Pod("ns", "p", st.HostPort(80, "", ""), st.OwnedBy("u")))
	if !slices.Equal(pi.HostPorts, []framework.HostPort{{IP: "0.0.0.0", Protocol: corev1.ProtocolTCP, Port: 80}}) {
		t.Errorf("HostPorts = %v", pi.HostPorts)
	}
	if pi.ControllerUID != "u" {
		t.Errorf("ControllerUID = %q", pi.ControllerUID)
	}
}

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

// filterResult runs p's PreFilter (if any) and Filter for pod on the node
// named node in a snapshot of nodes and bound pods, and returns the
// outcome as the code and reasons, "" for fits and "skip" when PreFilter
// skipped the filter.
type outcome struct {
	code    framework.Code
	reasons []string
	skipped bool
}

func runFilter(t *testing.T, p framework.Plugin, pod *corev1.Pod, node string, nodes []*corev1.Node, bound ...*corev1.Pod) outcome {
	t.Helper()
	ctx := context.Background()
	snap := cache.NewSnapshot(nodes, bound)
	state := framework.NewCycleState(snap)
	pi := framework.NewPodInfo(pod)
	if pf, ok := p.(framework.PreFilterPlugin); ok {
		_, s := pf.PreFilter(ctx, state, pi)
		if s.IsSkip() {
			return outcome{skipped: true}
		}
		if !s.IsSuccess() {
			return outcome{code: s.Code(), reasons: s.Reasons()}
		}
	}
	ni, err := snap.Get(node)
	if err != nil {
		t.Fatal(err)
	}
	s := p.(framework.FilterPlugin).Filter(ctx, state, pi, ni)
	if !s.IsSuccess() && s.Plugin() != p.Name() {
		t.Errorf("status names plugin %q, want %q", s.Plugin(), p.Name())
	}
	return outcome{code: s.Code(), reasons: s.Reasons()}
}

func fits() outcome    { return outcome{code: framework.Success} }
func skipped() outcome { return outcome{skipped: true} }
func rejected(reasons ...string) outcome {
	return outcome{code: framework.Unschedulable, reasons: reasons}
}
func unresolvable(reasons ...string) outcome {
	return outcome{code: framework.UnschedulableAndUnresolvable, reasons: reasons}
}

func (o outcome) equal(p outcome) bool {
	return o.code == p.code && o.skipped == p.skipped && slices.Equal(o.reasons, p.reasons)
}

type filterCase struct {
	name  string
	pod   *corev1.Pod
	node  *corev1.Node
	bound []*corev1.Pod
	want  outcome
}

func runFilterCases(t *testing.T, p framework.Plugin, cases []filterCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := runFilter(t, p, tc.pod, tc.node.Name, []*corev1.Node{tc.node}, tc.bound...)
			if !got.equal(tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNodeUnschedulable(t *testing.T) {
	runFilterCases(t, NodeUnschedulable{}, []filterCase{
		{"schedulable node", st.Pod("ns", "p"), st.Node("n", "1", "1Gi", 10), nil, fits()},
		{"cordoned node", st.Pod("ns", "p"), st.Node("n", "1", "1Gi", 10, st.Cordoned()), nil, unresolvable(ReasonNodeUnschedulable)},
		{"cordoned node, pod tolerates the unschedulable taint",
			st.Pod("ns", "p", st.Toleration(corev1.TaintNodeUnschedulable, corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule)),
			st.Node("n", "1", "1Gi", 10, st.Cordoned()), nil, fits()},
		{"cordoned node, toleration for another effect",
			st.Pod("ns", "p", st.Toleration(corev1.TaintNodeUnschedulable, corev1.TolerationOpExists, "", corev1.TaintEffectNoExecute)),
			st.Node("n", "1", "1Gi", 10, st.Cordoned()), nil, unresolvable(ReasonNodeUnschedulable)},
	})
}

func TestNodeName(t *testing.T) {
	runFilterCases(t, NodeName{}, []filterCase{
		{"no nodeName skips the filter", st.Pod("ns", "p"), st.Node("n", "1", "1Gi", 10), nil, skipped()},
		{"matching nodeName", st.Pod("ns", "p", st.OnNode("n")), st.Node("n", "1", "1Gi", 10), nil, fits()},
		{"other nodeName", st.Pod("ns", "p", st.OnNode("m")), st.Node("n", "1", "1Gi", 10), nil, unresolvable(ReasonNodeName)},
	})
}

func TestTaintTolerationFilter(t *testing.T) {
	node := func(opts ...st.NodeOption) *corev1.Node { return st.Node("n", "1", "1Gi", 10, opts...) }
	runFilterCases(t, TaintToleration{}, []filterCase{
		{"no taints", st.Pod("ns", "p"), node(), nil, fits()},
		{"untolerated NoSchedule taint", st.Pod("ns", "p"), node(st.Taint("key", "value", corev1.TaintEffectNoSchedule)), nil,
			unresolvable("node(s) had untolerated taint {key: value}")},
		{"untolerated NoExecute taint without value", st.Pod("ns", "p"), node(st.Taint("dedicated", "", corev1.TaintEffectNoExecute)), nil,
			unresolvable("node(s) had untolerated taint {dedicated: }")},
		{"PreferNoSchedule does not filter", st.Pod("ns", "p"), node(st.Taint("key", "value", corev1.TaintEffectPreferNoSchedule)), nil, fits()},
		{"tolerated with Equal",
			st.Pod("ns", "p", st.Toleration("key", corev1.TolerationOpEqual, "value", corev1.TaintEffectNoSchedule)),
			node(st.Taint("key", "value", corev1.TaintEffectNoSchedule)), nil, fits()},
		{"empty operator means Equal",
			st.Pod("ns", "p", st.Toleration("key", "", "value", "")),
			node(st.Taint("key", "value", corev1.TaintEffectNoSchedule)), nil, fits()},
		{"Equal with another value",
			st.Pod("ns", "p", st.Toleration("key", corev1.TolerationOpEqual, "other", corev1.TaintEffectNoSchedule)),
			node(st.Taint("key", "value", corev1.TaintEffectNoSchedule)), nil, unresolvable("node(s) had untolerated taint {key: value}")},
		{"Exists ignores the value",
			st.Pod("ns", "p", st.Toleration("key", corev1.TolerationOpExists, "", "")),
			node(st.Taint("key", "value", corev1.TaintEffectNoSchedule)), nil, fits()},
		{"Exists without key tolerates everything",
			st.Pod("ns", "p", st.Toleration("", corev1.TolerationOpExists, "", "")),
			node(st.Taint("a", "1", corev1.TaintEffectNoSchedule), st.Taint("b", "2", corev1.TaintEffectNoExecute)), nil, fits()},
		{"toleration for another effect",
			st.Pod("ns", "p", st.Toleration("key", corev1.TolerationOpExists, "", corev1.TaintEffectNoExecute)),
			node(st.Taint("key", "value", corev1.TaintEffectNoSchedule)), nil, unresolvable("node(s) had untolerated taint {key: value}")},
		{"first untolerated of several taints is reported",
			st.Pod("ns", "p", st.Toleration("a", corev1.TolerationOpExists, "", "")),
			node(st.Taint("a", "1", corev1.TaintEffectNoSchedule), st.Taint("b", "2", corev1.TaintEffectNoSchedule)), nil,
			unresolvable("node(s) had untolerated taint {b: 2}")},
	})
}

func TestNodeAffinityFilter(t *testing.T) {
	labelled := st.Node("n", "1", "1Gi", 10, st.NodeLabels("zone", "a", "disk", "ssd", "gen", "5"))
	term := st.Term
	expr := st.Expr
	runFilterCases(t, NodeAffinity{}, []filterCase{
		{"nothing to check skips", st.Pod("ns", "p"), labelled, nil, skipped()},
		{"nodeSelector matches", st.Pod("ns", "p", st.NodeSelector("zone", "a", "disk", "ssd")), labelled, nil, fits()},
		{"nodeSelector value differs", st.Pod("ns", "p", st.NodeSelector("zone", "b")), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"nodeSelector label missing", st.Pod("ns", "p", st.NodeSelector("gpu", "true")), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"In", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("zone", corev1.NodeSelectorOpIn, "b", "a")))), labelled, nil, fits()},
		{"In, no match", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("zone", corev1.NodeSelectorOpIn, "b", "c")))), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"NotIn", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("zone", corev1.NodeSelectorOpNotIn, "b")))), labelled, nil, fits()},
		{"NotIn, excluded", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("zone", corev1.NodeSelectorOpNotIn, "a")))), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"NotIn, label absent matches", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("gpu", corev1.NodeSelectorOpNotIn, "x")))), labelled, nil, fits()},
		{"Exists", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("disk", corev1.NodeSelectorOpExists)))), labelled, nil, fits()},
		{"Exists, absent", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("gpu", corev1.NodeSelectorOpExists)))), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"DoesNotExist", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("gpu", corev1.NodeSelectorOpDoesNotExist)))), labelled, nil, fits()},
		{"DoesNotExist, present", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("disk", corev1.NodeSelectorOpDoesNotExist)))), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"Gt", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("gen", corev1.NodeSelectorOpGt, "4")))), labelled, nil, fits()},
		{"Gt, equal is not greater", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("gen", corev1.NodeSelectorOpGt, "5")))), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"Lt", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("gen", corev1.NodeSelectorOpLt, "6")))), labelled, nil, fits()},
		{"Lt on a non-numeric label", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("zone", corev1.NodeSelectorOpLt, "6")))), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"Gt with a non-numeric value never matches", st.Pod("ns", "p", st.RequiredNodeAffinity(term(expr("gen", corev1.NodeSelectorOpGt, "x")))), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"expressions in a term are ANDed", st.Pod("ns", "p", st.RequiredNodeAffinity(term(
			expr("zone", corev1.NodeSelectorOpIn, "a"), expr("disk", corev1.NodeSelectorOpIn, "hdd")))), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"terms are ORed", st.Pod("ns", "p", st.RequiredNodeAffinity(
			term(expr("zone", corev1.NodeSelectorOpIn, "b")), term(expr("disk", corev1.NodeSelectorOpIn, "ssd")))), labelled, nil, fits()},
		{"empty term matches nothing", st.Pod("ns", "p", st.RequiredNodeAffinity(corev1.NodeSelectorTerm{})), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"no terms match nothing", st.Pod("ns", "p", st.RequiredNodeAffinity()), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"matchFields metadata.name In", st.Pod("ns", "p", st.RequiredNodeAffinity(corev1.NodeSelectorTerm{
			MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "n")}})), labelled, nil, fits()},
		{"matchFields metadata.name In, other node", st.Pod("ns", "p", st.RequiredNodeAffinity(corev1.NodeSelectorTerm{
			MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "m")}})), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"matchFields metadata.name NotIn", st.Pod("ns", "p", st.RequiredNodeAffinity(corev1.NodeSelectorTerm{
			MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpNotIn, "n")}})), labelled, nil, unresolvable(ReasonNodeAffinity)},
		{"nodeSelector and affinity must both hold", st.Pod("ns", "p", st.NodeSelector("zone", "a"),
			st.RequiredNodeAffinity(term(expr("disk", corev1.NodeSelectorOpIn, "hdd")))), labelled, nil, unresolvable(ReasonNodeAffinity)},
	})
}

func TestNodeAffinityPreFilterNarrowsToNamedNodes(t *testing.T) {
	pod := st.Pod("ns", "p", st.RequiredNodeAffinity(
		corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{st.Expr("metadata.name", corev1.NodeSelectorOpIn, "a")}},
		corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{st.Expr("metadata.name", corev1.NodeSelectorOpIn, "b")}},
	))
	state := framework.NewCycleState(cache.NewSnapshot(nil, nil))
	res, s := NodeAffinity{}.PreFilter(context.Background(), state, framework.NewPodInfo(pod))
	if !s.IsSuccess() || res == nil || len(res.NodeNames) != 2 {
		t.Fatalf("PreFilter = %+v, %v; want nodes a and b", res, s)
	}
	// One term without a name restriction: any node may match.
	pod = st.Pod("ns", "p", st.RequiredNodeAffinity(
		corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{st.Expr("metadata.name", corev1.NodeSelectorOpIn, "a")}},
		st.Term(st.Expr("zone", corev1.NodeSelectorOpExists)),
	))
	res, s = NodeAffinity{}.PreFilter(context.Background(), state, framework.NewPodInfo(pod))
	if !s.IsSuccess() || res != nil {
		t.Fatalf("PreFilter = %+v, %v; want no restriction", res, s)
	}
}

func TestNodePorts(t *testing.T) {
	node := st.Node("n", "1", "1Gi", 10)
	on := func(opts ...st.PodOption) *corev1.Pod { return st.Pod("ns", "other", append(opts, st.OnNode("n"))...) }
	runFilterCases(t, NodePorts{}, []filterCase{
		{"no host ports skips", st.Pod("ns", "p"), node, nil, skipped()},
		{"free port", st.Pod("ns", "p", st.HostPort(8080, "", "")), node, []*corev1.Pod{on(st.HostPort(8081, "", ""))}, fits()},
		{"same port and protocol", st.Pod("ns", "p", st.HostPort(8080, "", "")), node,
			[]*corev1.Pod{on(st.HostPort(8080, corev1.ProtocolTCP, ""))}, rejected(ReasonNodePorts)},
		{"same port, other protocol", st.Pod("ns", "p", st.HostPort(53, corev1.ProtocolUDP, "")), node,
			[]*corev1.Pod{on(st.HostPort(53, corev1.ProtocolTCP, ""))}, fits()},
		{"different specific IPs", st.Pod("ns", "p", st.HostPort(80, "", "10.0.0.1")), node,
			[]*corev1.Pod{on(st.HostPort(80, "", "10.0.0.2"))}, fits()},
		{"specific IP against all IPs", st.Pod("ns", "p", st.HostPort(80, "", "10.0.0.1")), node,
			[]*corev1.Pod{on(st.HostPort(80, "", "0.0.0.0"))}, rejected(ReasonNodePorts)},
		{"all IPs against a specific IP", st.Pod("ns", "p", st.HostPort(80, "", "")), node,
			[]*corev1.Pod{on(st.HostPort(80, "", "10.0.0.1"))}, rejected(ReasonNodePorts)},
	})
}

func TestNodeResourcesFitFilter(t *testing.T) {
	node := st.Node("n", "2", "4Gi", 3, st.Extended("example.com/gpu", 1))
	bound := func(name, cpu, mem string) *corev1.Pod {
		return st.Pod("ns", name, st.Container(cpu, mem), st.OnNode("n"))
	}
	cpu, mem := ReasonInsufficientPrefix+"cpu", ReasonInsufficientPrefix+"memory"
	runFilterCases(t, NodeResourcesFit{}, []filterCase{
		{"fits an empty node", st.Pod("ns", "p", st.Container("2", "4Gi")), node, nil, fits()},
		{"fits exactly what is left", st.Pod("ns", "p", st.Container("500m", "1Gi")), node,
			[]*corev1.Pod{bound("a", "1500m", "3Gi")}, fits()},
		{"insufficient cpu", st.Pod("ns", "p", st.Container("600m", "1Gi")), node,
			[]*corev1.Pod{bound("a", "1500m", "3Gi")}, rejected(cpu)},
		{"insufficient memory", st.Pod("ns", "p", st.Container("100m", "1025Mi")), node,
			[]*corev1.Pod{bound("a", "1500m", "3Gi")}, rejected(mem)},
		{"insufficient both", st.Pod("ns", "p", st.Container("3", "5Gi")), node, nil, rejected(cpu, mem)},
		{"containers add up", st.Pod("ns", "p", st.Container("1", "1Gi"), st.Container("1500m", "1Gi")), node, nil, rejected(cpu)},
		{"an init container larger than the sum counts",
			st.Pod("ns", "p", st.Container("500m", "1Gi"), st.InitContainer("2500m", "1Gi")), node, nil, rejected(cpu)},
		{"an init container smaller than the sum does not",
			st.Pod("ns", "p", st.Container("1", "1Gi"), st.Container("1", "1Gi"), st.InitContainer("1500m", "1Gi")), node, nil, fits()},
		{"pod count reached", st.Pod("ns", "p"), node,
			[]*corev1.Pod{bound("a", "", ""), bound("b", "", ""), bound("c", "", "")}, rejected(ReasonTooManyPods)},
		{"pod count and cpu", st.Pod("ns", "p", st.Container("3", "")), node,
			[]*corev1.Pod{bound("a", "", ""), bound("b", "", ""), bound("c", "", "")}, rejected(ReasonTooManyPods, cpu)},
		{"no requests fit even a full node", st.Pod("ns", "p"), node,
			[]*corev1.Pod{bound("a", "2", "4Gi")}, fits()},
		{"extended resource fits", st.Pod("ns", "p", st.ExtendedRequest("example.com/gpu", 1)), node, nil, fits()},
		{"extended resource exhausted", st.Pod("ns", "p", st.ExtendedRequest("example.com/gpu", 2)), node, nil,
			rejected(ReasonInsufficientPrefix + "example.com/gpu")},
		{"node without pods allocatable takes none",
			st.Pod("ns", "p"), st.Node("n", "1", "1Gi", 0), nil, rejected(ReasonTooManyPods)},
	})
}

func TestInterPodAffinityFilter(t *testing.T) {
	nodes := []*corev1.Node{
		st.Node("a1", "1", "1Gi", 10, st.NodeLabels("zone", "a")),
		st.Node("a2", "1", "1Gi", 10, st.NodeLabels("zone", "a")),
		st.Node("b1", "1", "1Gi", 10, st.NodeLabels("zone", "b")),
		st.Node("nozone", "1", "1Gi", 10),
	}
	web := map[string]string{"app": "web"}
	webOn := func(node string, opts ...st.PodOption) *corev1.Pod {
		return st.Pod("ns", "web-"+node, append([]st.PodOption{st.Labels("app", "web"), st.OnNode(node)}, opts...)...)
	}
	cases := []struct {
		name  string
		pod   *corev1.Pod
		bound []*corev1.Pod
		want  map[string]outcome // per node
	}{
		{
			name:  "no anti-affinity anywhere skips",
			pod:   st.Pod("ns", "p", st.Labels("app", "web")),
			bound: []*corev1.Pod{webOn("a1")},
			want:  map[string]outcome{"a1": skipped()},
		},
		{
			name:  "hostname anti-affinity avoids nodes running a match",
			pod:   st.Pod("ns", "p", st.Labels("app", "web"), st.AntiAffinity("kubernetes.io/hostname", web)),
			bound: []*corev1.Pod{webOn("a1")},
			want: map[string]outcome{
				"a1": rejected(ReasonAntiAffinityRulesNotMet), "a2": fits(), "b1": fits(), "nozone": fits(),
			},
		},
		{
			name:  "zone anti-affinity avoids the whole zone; nodes without the label are free",
			pod:   st.Pod("ns", "p", st.AntiAffinity("zone", web)),
			bound: []*corev1.Pod{webOn("a1")},
			want: map[string]outcome{
				"a1": rejected(ReasonAntiAffinityRulesNotMet), "a2": rejected(ReasonAntiAffinityRulesNotMet), "b1": fits(), "nozone": fits(),
			},
		},
		{
			name:  "pods in other namespaces do not count by default",
			pod:   st.Pod("other", "p", st.AntiAffinity("kubernetes.io/hostname", web)),
			bound: []*corev1.Pod{webOn("a1")},
			want:  map[string]outcome{"a1": skipped()},
		},
		{
			name:  "explicit namespaces count",
			pod:   st.Pod("other", "p", st.AntiAffinity("kubernetes.io/hostname", web, "ns")),
			bound: []*corev1.Pod{webOn("a1")},
			want:  map[string]outcome{"a1": rejected(ReasonAntiAffinityRulesNotMet), "a2": fits()},
		},
		{
			name:  "an existing pod's anti-affinity keeps matching pods away",
			pod:   st.Pod("ns", "p", st.Labels("app", "web")),
			bound: []*corev1.Pod{webOn("a1", st.AntiAffinity("zone", web))},
			want: map[string]outcome{
				"a1": rejected(ReasonExistingAntiAffinity), "a2": rejected(ReasonExistingAntiAffinity), "b1": fits(), "nozone": fits(),
			},
		},
		{
			name:  "an existing pod's anti-affinity ignores pods it does not select",
			pod:   st.Pod("ns", "p", st.Labels("app", "db")),
			bound: []*corev1.Pod{webOn("a1", st.AntiAffinity("zone", web))},
			want:  map[string]outcome{"a1": skipped()},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for node, want := range tc.want {
				got := runFilter(t, InterPodAffinity{}, tc.pod, node, nodes, tc.bound...)
				if !got.equal(want) {
					t.Errorf("node %s: got %+v, want %+v", node, got, want)
				}
			}
		})
	}
}

func TestInterPodAffinityInvalidSelector(t *testing.T) {
	pod := st.Pod("ns", "p", st.AntiAffinity("kubernetes.io/hostname", map[string]string{"bad key!": "x"}))
	got := runFilter(t, InterPodAffinity{}, pod, "n", []*corev1.Node{st.Node("n", "1", "1Gi", 10)})
	if got.code != framework.UnschedulableAndUnresolvable || len(got.reasons) != 1 {
		t.Fatalf("got %+v, want an unresolvable invalid anti-affinity", got)
	}
}

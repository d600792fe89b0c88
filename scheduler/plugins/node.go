package plugins

import (
	"context"
	"fmt"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/scheduler/framework"
)

// NodeUnschedulable rejects nodes with spec.unschedulable (cordoned),
// unless the pod tolerates the node.kubernetes.io/unschedulable taint.
type NodeUnschedulable struct{}

var (
	_ framework.FilterPlugin = NodeUnschedulable{}

	errNodeUnschedulable = framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonNodeUnschedulable).WithPlugin(NodeUnschedulableName)
	unschedulableTaint   = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}
)

// Name implements framework.Plugin.
func (NodeUnschedulable) Name() string { return NodeUnschedulableName }

// Filter implements framework.FilterPlugin.
func (NodeUnschedulable) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	if !ni.Unschedulable {
		return nil
	}
	if toleratedBy(&unschedulableTaint, pod.Pod.Spec.Tolerations) {
		return nil
	}
	return errNodeUnschedulable
}

// NodeName rejects every node but the one in spec.nodeName, when set.
type NodeName struct{}

var (
	_ framework.PreFilterPlugin = NodeName{}
	_ framework.FilterPlugin    = NodeName{}

	errNodeName = framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonNodeName).WithPlugin(NodeNameName)
)

// Name implements framework.Plugin.
func (NodeName) Name() string { return NodeNameName }

// PreFilter skips the filter for pods that name no node (all pods the
// scheduler normally sees) and narrows the search for those that do.
func (NodeName) PreFilter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	if pod.Pod.Spec.NodeName == "" {
		return nil, framework.NewStatus(framework.Skip)
	}
	return &framework.PreFilterResult{NodeNames: map[string]struct{}{pod.Pod.Spec.NodeName: {}}}, nil
}

// Filter implements framework.FilterPlugin.
func (NodeName) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	if n := pod.Pod.Spec.NodeName; n != "" && n != ni.Node().Name {
		return errNodeName
	}
	return nil
}

// TaintToleration filters out nodes with a NoSchedule or NoExecute taint
// the pod does not tolerate, and scores nodes lower the more
// PreferNoSchedule taints the pod does not tolerate.
type TaintToleration struct{}

var (
	_ framework.FilterPlugin    = TaintToleration{}
	_ framework.PreScorePlugin  = TaintToleration{}
	_ framework.ScorePlugin     = TaintToleration{}
	_ framework.ScoreNormalizer = TaintToleration{}
)

// Name implements framework.Plugin.
func (TaintToleration) Name() string { return TaintTolerationName }

// Filter implements framework.FilterPlugin.
func (TaintToleration) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	taints := ni.Taints
	for i := range taints {
		t := &taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !toleratedBy(t, pod.Pod.Spec.Tolerations) {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable,
				fmt.Sprintf(ReasonUntoleratedTaintFormat, t.Key, t.Value)).WithPlugin(TaintTolerationName)
		}
	}
	return nil
}

const taintTolerationStateKey framework.StateKey = TaintTolerationName

// PreScore keeps the tolerations that matter for PreferNoSchedule taints.
func (TaintToleration) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) *framework.Status {
	var tols []corev1.Toleration
	for _, t := range pod.Pod.Spec.Tolerations {
		if t.Effect == "" || t.Effect == corev1.TaintEffectPreferNoSchedule {
			tols = append(tols, t)
		}
	}
	state.Write(taintTolerationStateKey, tols)
	return nil
}

// Score counts the node's PreferNoSchedule taints the pod does not
// tolerate; NormalizeScore turns "fewest" into the best score.
func (TaintToleration) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	taints := ni.Taints
	if len(taints) == 0 {
		return 0, nil
	}
	tols, _ := framework.ReadAs[[]corev1.Toleration](state, taintTolerationStateKey)
	var n int64
	for i := range taints {
		if taints[i].Effect == corev1.TaintEffectPreferNoSchedule && !toleratedBy(&taints[i], tols) {
			n++
		}
	}
	return n, nil
}

// NormalizeScore implements framework.ScoreNormalizer.
func (TaintToleration) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores []int64) *framework.Status {
	framework.DefaultNormalizeScore(true, scores)
	return nil
}

// NodeAffinity filters nodes by the pod's spec.nodeSelector and required
// node affinity, and scores them by the summed weights of the preferred
// node affinity terms they match.
type NodeAffinity struct{}

var (
	_ framework.PreFilterPlugin = NodeAffinity{}
	_ framework.FilterPlugin    = NodeAffinity{}
	_ framework.PreScorePlugin  = NodeAffinity{}
	_ framework.ScorePlugin     = NodeAffinity{}
	_ framework.ScoreNormalizer = NodeAffinity{}

	errNodeAffinity = framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonNodeAffinity).WithPlugin(NodeAffinityName)
)

const (
	nodeAffinityFilterKey framework.StateKey = NodeAffinityName + "/filter"
	nodeAffinityScoreKey  framework.StateKey = NodeAffinityName + "/score"
)

type nodeAffinityFilterState struct {
	selector map[string]string // spec.nodeSelector
	required *nodeSelector     // nil when the pod has none
}

type preferredTerm struct {
	weight int64
	term   nodeSelectorTerm
}

// Name implements framework.Plugin.
func (NodeAffinity) Name() string { return NodeAffinityName }

// PreFilter compiles the pod's node selector and required affinity once.
func (NodeAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	spec := &pod.Pod.Spec
	var required *nodeSelector
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		required = compileNodeSelector(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
	}
	if len(spec.NodeSelector) == 0 && required == nil {
		return nil, framework.NewStatus(framework.Skip)
	}
	state.Write(nodeAffinityFilterKey, &nodeAffinityFilterState{selector: spec.NodeSelector, required: required})
	if required != nil {
		if names := required.nodeNames(); names != nil {
			return &framework.PreFilterResult{NodeNames: names}, nil
		}
	}
	return nil, nil
}

// Filter implements framework.FilterPlugin.
func (NodeAffinity) Filter(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	s, ok := framework.ReadAs[*nodeAffinityFilterState](state, nodeAffinityFilterKey)
	if !ok {
		return framework.AsStatus(fmt.Errorf("%s: PreFilter state missing", NodeAffinityName))
	}
	node := ni.Node()
	for k, v := range s.selector {
		if lv, ok := node.Labels[k]; !ok || lv != v {
			return errNodeAffinity
		}
	}
	if s.required != nil && !s.required.matches(node) {
		return errNodeAffinity
	}
	return nil
}

// PreScore compiles the preferred terms; Skip when there are none.
func (NodeAffinity) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) *framework.Status {
	a := pod.Pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	var terms []preferredTerm
	for i := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		p := &a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution[i]
		if p.Weight == 0 {
			continue
		}
		terms = append(terms, preferredTerm{weight: int64(p.Weight), term: compileTerm(&p.Preference)})
	}
	if len(terms) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(nodeAffinityScoreKey, terms)
	return nil
}

// Score sums the weights of the preferred terms the node matches.
func (NodeAffinity) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	terms, _ := framework.ReadAs[[]preferredTerm](state, nodeAffinityScoreKey)
	var sum int64
	node := ni.Node()
	for i := range terms {
		if terms[i].term.matches(node) {
			sum += terms[i].weight
		}
	}
	return sum, nil
}

// NormalizeScore implements framework.ScoreNormalizer.
func (NodeAffinity) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores []int64) *framework.Status {
	framework.DefaultNormalizeScore(false, scores)
	return nil
}

// NodePorts rejects nodes where a host port the pod asks for is taken.
type NodePorts struct{}

var (
	_ framework.PreFilterPlugin = NodePorts{}
	_ framework.FilterPlugin    = NodePorts{}

	errNodePorts = framework.NewStatus(framework.Unschedulable, ReasonNodePorts).WithPlugin(NodePortsName)
)

// Name implements framework.Plugin.
func (NodePorts) Name() string { return NodePortsName }

// PreFilter skips pods that claim no host port.
func (NodePorts) PreFilter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	if len(pod.HostPorts) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	return nil, nil
}

// Filter implements framework.FilterPlugin.
func (NodePorts) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	for _, want := range pod.HostPorts {
		for _, used := range ni.UsedPorts {
			if want.Conflicts(used) {
				return errNodePorts
			}
		}
	}
	return nil
}

// The cluster events that can undo each plugin's rejection.

// EventsToRegister implements framework.EnqueueExtensions.
func (NodeUnschedulable) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.NodeAdd, framework.NodeSpecUnschedulableChange}
}

// EventsToRegister implements framework.EnqueueExtensions.
func (NodeName) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.NodeAdd}
}

// EventsToRegister implements framework.EnqueueExtensions.
func (TaintToleration) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.NodeAdd, framework.NodeTaintChange}
}

// EventsToRegister implements framework.EnqueueExtensions.
func (NodeAffinity) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.NodeAdd, framework.NodeLabelChange}
}

// EventsToRegister implements framework.EnqueueExtensions.
func (NodePorts) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.NodeAdd, framework.AssignedPodDelete}
}

// EventsToRegister implements framework.EnqueueExtensions.
func (NodeResourcesFit) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.NodeAdd, framework.NodeAllocatableChange, framework.AssignedPodDelete}
}

// EventsToRegister implements framework.EnqueueExtensions.
func (InterPodAffinity) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.NodeAdd, framework.NodeLabelChange, framework.AssignedPodDelete, framework.AssignedPodLabelChange}
}

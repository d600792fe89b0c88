package plugins

import (
	"context"
	"fmt"

	"github.com/minik8s/minik8s/scheduler/framework"
)

// InterPodAffinity enforces required pod anti-affinity in both directions:
// the pod may not go where, by any topology key (kubernetes.io/hostname,
// a zone label, ...), a pod its terms select already runs; and it may not
// go where an existing pod's terms select it. Required pod affinity and
// the preferred terms are not implemented.
type InterPodAffinity struct{}

var (
	_ framework.PreFilterPlugin = InterPodAffinity{}
	_ framework.FilterPlugin    = InterPodAffinity{}

	errAntiAffinity = framework.NewStatus(framework.Unschedulable, ReasonAntiAffinityRulesNotMet).WithPlugin(InterPodAffinityName)
	errExistingAnti = framework.NewStatus(framework.Unschedulable, ReasonExistingAntiAffinity).WithPlugin(InterPodAffinityName)
)

const interPodAffinityKey framework.StateKey = InterPodAffinityName

// topologyPair is one topology domain: a node label and its value.
type topologyPair struct{ key, value string }

type interPodAffinityState struct {
	// incoming counts, per domain, the existing pods that the incoming
	// pod's anti-affinity terms select.
	incoming map[topologyPair]int
	// existing counts, per domain, existing pods whose anti-affinity terms
	// select the incoming pod.
	existing map[topologyPair]int
}

// Name implements framework.Plugin.
func (InterPodAffinity) Name() string { return InterPodAffinityName }

// PreFilter counts the conflicting pods per topology domain, looking at
// every pod only when the incoming pod has anti-affinity terms, and
// otherwise only at nodes with pods that have such terms. Skip when there
// is nothing to check.
func (InterPodAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	if pod.ParseErr != nil {
		return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable,
			fmt.Sprintf("invalid pod anti-affinity: %v", pod.ParseErr)).WithPlugin(InterPodAffinityName)
	}
	s := &interPodAffinityState{}
	for _, ni := range state.Snapshot.HavePodsWithRequiredAntiAffinity() {
		node := ni.Node()
		for _, existing := range ni.PodsWithRequiredAntiAffinity {
			for i := range existing.RequiredAntiAffinity {
				t := &existing.RequiredAntiAffinity[i]
				v, ok := node.Labels[t.TopologyKey]
				if !ok || !t.Matches(pod.Pod) {
					continue
				}
				if s.existing == nil {
					s.existing = map[topologyPair]int{}
				}
				s.existing[topologyPair{t.TopologyKey, v}]++
			}
		}
	}
	if len(pod.RequiredAntiAffinity) > 0 {
		for _, ni := range state.Snapshot.List() {
			node := ni.Node()
			for _, existing := range ni.Pods {
				if existing.Pod.UID == pod.Pod.UID {
					continue
				}
				for i := range pod.RequiredAntiAffinity {
					t := &pod.RequiredAntiAffinity[i]
					v, ok := node.Labels[t.TopologyKey]
					if !ok || !t.Matches(existing.Pod) {
						continue
					}
					if s.incoming == nil {
						s.incoming = map[topologyPair]int{}
					}
					s.incoming[topologyPair{t.TopologyKey, v}]++
				}
			}
		}
	}
	if len(s.incoming) == 0 && len(s.existing) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	state.Write(interPodAffinityKey, s)
	return nil, nil
}

// Filter implements framework.FilterPlugin.
func (InterPodAffinity) Filter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	s, ok := framework.ReadAs[*interPodAffinityState](state, interPodAffinityKey)
	if !ok {
		return framework.AsStatus(fmt.Errorf("%s: PreFilter state missing", InterPodAffinityName))
	}
	node := ni.Node()
	if len(s.incoming) > 0 {
		for i := range pod.RequiredAntiAffinity {
			key := pod.RequiredAntiAffinity[i].TopologyKey
			if v, ok := node.Labels[key]; ok && s.incoming[topologyPair{key, v}] > 0 {
				return errAntiAffinity
			}
		}
	}
	if len(s.existing) > 0 {
		for k, v := range node.Labels {
			if s.existing[topologyPair{k, v}] > 0 {
				return errExistingAnti
			}
		}
	}
	return nil
}

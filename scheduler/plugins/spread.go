package plugins

import (
	"context"
	"math"
	"slices"

	"github.com/minik8s/minik8s/scheduler/framework"
)

// ZoneLabel is the well-known node label naming a node's zone.
const ZoneLabel = framework.ZoneLabel

// zoneWeight is how much of the spread score the zone spread makes up when
// nodes have zones: 2/3, as in Kubernetes' default spreading.
const zoneWeight = 2.0 / 3.0

// OwnerSpread spreads the pods of one controller (the owner reference with
// controller: true: a ReplicaSet, a StatefulSet, ...) over nodes, and over
// zones when nodes carry topology.kubernetes.io/zone: a node scores higher
// the fewer pods of the same owner it (and its zone) already runs. Pods
// without a controller are not scored.
type OwnerSpread struct{}

var (
	_ framework.PreScorePlugin  = OwnerSpread{}
	_ framework.ScorePlugin     = OwnerSpread{}
	_ framework.ScoreNormalizer = OwnerSpread{}
)

const ownerSpreadKey framework.StateKey = OwnerSpreadName

// Name implements framework.Plugin.
func (OwnerSpread) Name() string { return OwnerSpreadName }

// PreScore remembers the scored nodes (for the zone totals); Skip for pods
// without a controller.
func (OwnerSpread) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, nodes []*framework.NodeInfo) *framework.Status {
	if pod.ControllerHash == 0 {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(ownerSpreadKey, nodes)
	return nil
}

// Score counts the pods on the node with the same controller, in the same
// namespace, that are not being deleted.
func (OwnerSpread) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	return int64(ni.ControllerPodCount(pod.ControllerHash)), nil
}

// NormalizeScore turns counts into scores: 100 for the emptiest node
// (and zone), 0 for the fullest.
func (OwnerSpread) NormalizeScore(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, scores []int64) *framework.Status {
	nodes, _ := framework.ReadAs[[]*framework.NodeInfo](state, ownerSpreadKey)
	var maxNode int64
	for _, s := range scores {
		maxNode = max(maxNode, s)
	}
	// Zones are few: a short list searched linearly beats a map here.
	var zones []zoneCount
	zoneIdx := make([]int, len(scores)) // index into zones, -1 = no zone
	for i := range scores {
		zoneIdx[i] = -1
		if len(nodes) != len(scores) {
			continue
		}
		z := nodes[i].Zone
		if z == "" {
			continue
		}
		j := slices.IndexFunc(zones, func(c zoneCount) bool { return c.zone == z })
		if j < 0 {
			j = len(zones)
			zones = append(zones, zoneCount{zone: z})
		}
		zones[j].count += scores[i]
		zoneIdx[i] = j
	}
	var maxZone int64
	for _, c := range zones {
		maxZone = max(maxZone, c.count)
	}
	for i, s := range scores {
		f := float64(framework.MaxNodeScore)
		if maxNode > 0 {
			f = float64(framework.MaxNodeScore) * float64(maxNode-s) / float64(maxNode)
		}
		if j := zoneIdx[i]; j >= 0 {
			zf := float64(framework.MaxNodeScore)
			if maxZone > 0 {
				zf = float64(framework.MaxNodeScore) * float64(maxZone-zones[j].count) / float64(maxZone)
			}
			f = f*(1-zoneWeight) + zf*zoneWeight
		}
		scores[i] = int64(math.Round(f))
	}
	return nil
}

type zoneCount struct {
	zone  string
	count int64
}

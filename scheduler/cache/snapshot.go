package cache

import (
	"fmt"
	"slices"
	"strings"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/scheduler/framework"
)

// zoneLabel (framework.ZoneLabel) orders the node list: nodes of
// different zones alternate, so that a cycle that looks at only part of
// the nodes still sees every zone.
const zoneLabel = framework.ZoneLabel

// Snapshot is a copy of the cache for one scheduling cycle: plugins read it
// while the cache keeps changing. Only the scheduling loop updates it
// (Cache.UpdateSnapshot), between cycles.
type Snapshot struct {
	nodeInfoMap  map[string]*framework.NodeInfo
	nodeInfoList []*framework.NodeInfo
	// names[i] is nodeInfoList[i]'s name; a fresh slice per rebuild, never
	// changed afterwards, so it may be kept beyond the cycle.
	names        []string
	antiAffinity []*framework.NodeInfo
	generation   int64
	nodeSetGen   int64
}

var _ framework.NodeInfoLister = (*Snapshot)(nil)

// NewEmptySnapshot returns a snapshot to be filled by UpdateSnapshot.
func NewEmptySnapshot() *Snapshot {
	// nodeSetGen -1 forces the first update to build the list.
	return &Snapshot{nodeSetGen: -1}
}

// NewSnapshot builds a snapshot straight from objects (for tests and
// tools): pods are placed on the node in their spec.nodeName.
func NewSnapshot(nodes []*corev1.Node, pods []*corev1.Pod) *Snapshot {
	s := &Snapshot{nodeInfoMap: map[string]*framework.NodeInfo{}}
	for _, n := range nodes {
		ni := framework.NewNodeInfo()
		ni.SetNode(n)
		s.nodeInfoMap[n.Name] = ni
	}
	for _, p := range pods {
		if ni, ok := s.nodeInfoMap[p.Spec.NodeName]; ok {
			ni.AddPodInfo(framework.NewPodInfo(p))
		}
	}
	s.rebuildList()
	return s
}

// List implements framework.NodeInfoLister.
func (s *Snapshot) List() []*framework.NodeInfo { return s.nodeInfoList }

// NodeNames are the names of List(), in the same order. The slice is
// never modified: it may be kept after the cycle.
func (s *Snapshot) NodeNames() []string { return s.names }

// NumNodes implements framework.NodeInfoLister.
func (s *Snapshot) NumNodes() int { return len(s.nodeInfoList) }

// HavePodsWithRequiredAntiAffinity implements framework.NodeInfoLister.
func (s *Snapshot) HavePodsWithRequiredAntiAffinity() []*framework.NodeInfo { return s.antiAffinity }

// Get implements framework.NodeInfoLister.
func (s *Snapshot) Get(name string) (*framework.NodeInfo, error) {
	ni, ok := s.nodeInfoMap[name]
	if !ok {
		return nil, fmt.Errorf("node %q not found in the scheduler snapshot", name)
	}
	return ni, nil
}

// rebuildList orders the nodes by zone round-robin (zones and the nodes in
// each sorted by name), which is stable from one cycle to the next.
func (s *Snapshot) rebuildList() {
	byZone := map[string][]*framework.NodeInfo{}
	for _, ni := range s.nodeInfoMap {
		z := ni.Zone
		byZone[z] = append(byZone[z], ni)
	}
	zones := make([]string, 0, len(byZone))
	for z, l := range byZone {
		zones = append(zones, z)
		slices.SortFunc(l, func(a, b *framework.NodeInfo) int { return strings.Compare(a.Node().Name, b.Node().Name) })
	}
	slices.Sort(zones)
	// Fresh slices: a slice handed out for an earlier cycle stays intact.
	s.nodeInfoList = make([]*framework.NodeInfo, 0, len(s.nodeInfoMap))
	s.names = make([]string, 0, len(s.nodeInfoMap))
	for i := 0; len(s.nodeInfoList) < len(s.nodeInfoMap); i++ {
		for _, z := range zones {
			if l := byZone[z]; i < len(l) {
				s.nodeInfoList = append(s.nodeInfoList, l[i])
				s.names = append(s.names, l[i].Node().Name)
			}
		}
	}
	s.rebuildAntiAffinityList()
}

func (s *Snapshot) rebuildAntiAffinityList() {
	s.antiAffinity = nil
	for _, ni := range s.nodeInfoList {
		if len(ni.PodsWithRequiredAntiAffinity) > 0 {
			s.antiAffinity = append(s.antiAffinity, ni)
		}
	}
}

package cache

import (
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/scheduler/framework"
	st "github.com/minik8s/minik8s/scheduler/internal/schedtest"
)

type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeNow) step(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func newCache(ttl time.Duration) (*Cache, *fakeNow) {
	clock := &fakeNow{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	return New(ttl, clock.now, slog.New(slog.DiscardHandler)), clock
}

// requested returns a node's requested millicores and pod count as the
// snapshot sees it.
func requested(t *testing.T, s *Snapshot, node string) (int64, int) {
	t.Helper()
	ni, err := s.Get(node)
	if err != nil {
		t.Fatal(err)
	}
	return ni.Requested.MilliCPU, len(ni.Pods)
}

func TestAssumeConfirmForget(t *testing.T) {
	c, _ := newCache(0)
	c.AddNode(st.Node("n1", "4", "8Gi", 10))
	c.AddNode(st.Node("n2", "4", "8Gi", 10))
	snap := NewEmptySnapshot()

	pending := st.Pod("ns", "a", st.Container("1", "1Gi"))
	if err := c.AssumePod(framework.NewPodInfo(pending), "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.AssumePod(framework.NewPodInfo(pending), "n1"); err == nil {
		t.Error("assuming the same pod twice worked")
	}
	c.UpdateSnapshot(snap)
	if cpu, n := requested(t, snap, "n1"); cpu != 1000 || n != 1 {
		t.Fatalf("after assume: n1 has %dm in %d pods, want 1000m in 1", cpu, n)
	}
	if !c.IsAssumedPod(pending) {
		t.Error("pod is not assumed")
	}

	// The informer shows the pod bound: confirmed, counted once.
	bound := pending.DeepCopy()
	bound.Spec.NodeName = "n1"
	c.AddPod(bound)
	c.UpdateSnapshot(snap)
	if cpu, n := requested(t, snap, "n1"); cpu != 1000 || n != 1 {
		t.Fatalf("after confirm: n1 has %dm in %d pods, want 1000m in 1", cpu, n)
	}
	if c.IsAssumedPod(pending) {
		t.Error("confirmed pod still assumed")
	}
	if err := c.ForgetPod(bound); err == nil {
		t.Error("forgetting a confirmed pod worked")
	}

	// A second pod whose binding fails is forgotten.
	other := st.Pod("ns", "b", st.Container("2", "1Gi"))
	if err := c.AssumePod(framework.NewPodInfo(other), "n2"); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(snap)
	if cpu, _ := requested(t, snap, "n2"); cpu != 2000 {
		t.Fatalf("n2 requested %dm, want 2000m", cpu)
	}
	if err := c.ForgetPod(other); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(snap)
	if cpu, n := requested(t, snap, "n2"); cpu != 0 || n != 0 {
		t.Fatalf("after forget: n2 has %dm in %d pods", cpu, n)
	}
	if got := c.Stats(); got != (Stats{Nodes: 2, Pods: 1, AssumedPods: 0}) {
		t.Errorf("stats %+v", got)
	}
}

func TestAssumedPodBoundElsewhereMoves(t *testing.T) {
	c, _ := newCache(0)
	c.AddNode(st.Node("n1", "4", "8Gi", 10))
	c.AddNode(st.Node("n2", "4", "8Gi", 10))
	pod := st.Pod("ns", "a", st.Container("1", ""))
	if err := c.AssumePod(framework.NewPodInfo(pod), "n1"); err != nil {
		t.Fatal(err)
	}
	bound := pod.DeepCopy()
	bound.Spec.NodeName = "n2"
	c.AddPod(bound)
	snap := NewEmptySnapshot()
	c.UpdateSnapshot(snap)
	if cpu, _ := requested(t, snap, "n1"); cpu != 0 {
		t.Errorf("n1 still has %dm", cpu)
	}
	if cpu, _ := requested(t, snap, "n2"); cpu != 1000 {
		t.Errorf("n2 has %dm, want 1000m", cpu)
	}
}

func TestAssumedPodsExpireOnlyAfterBinding(t *testing.T) {
	c, clock := newCache(30 * time.Second)
	c.AddNode(st.Node("n1", "4", "8Gi", 10))
	binding := st.Pod("ns", "in-flight")
	bound := st.Pod("ns", "bound")
	for _, p := range []*corev1.Pod{binding, bound} {
		if err := c.AssumePod(framework.NewPodInfo(p), "n1"); err != nil {
			t.Fatal(err)
		}
	}
	c.FinishBinding(bound)
	clock.step(29 * time.Second)
	c.CleanupExpiredAssumedPods()
	if got := c.Stats().AssumedPods; got != 2 {
		t.Fatalf("%d assumed pods before the TTL, want 2", got)
	}
	clock.step(2 * time.Second)
	c.CleanupExpiredAssumedPods()
	if c.IsAssumedPod(bound) {
		t.Error("pod whose binding finished 31s ago without confirmation did not expire")
	}
	if !c.IsAssumedPod(binding) {
		t.Error("pod whose binding is still in flight expired")
	}
	snap := NewEmptySnapshot()
	c.UpdateSnapshot(snap)
	if _, n := requested(t, snap, "n1"); n != 1 {
		t.Errorf("n1 holds %d pods, want 1", n)
	}
}

func TestPodsBeforeTheirNodeAndNodeRemoval(t *testing.T) {
	c, _ := newCache(0)
	// A bound pod arrives before its node.
	p := st.Pod("ns", "a", st.Container("500m", ""), st.OnNode("late"))
	c.AddPod(p)
	snap := NewEmptySnapshot()
	c.UpdateSnapshot(snap)
	if snap.NumNodes() != 0 {
		t.Fatalf("a node without a Node object is listed: %d nodes", snap.NumNodes())
	}
	c.AddNode(st.Node("late", "1", "1Gi", 10))
	c.UpdateSnapshot(snap)
	if cpu, n := requested(t, snap, "late"); cpu != 500 || n != 1 {
		t.Fatalf("late node: %dm in %d pods, want the early pod", cpu, n)
	}
	// Removing the node hides it even though its pod is still known.
	c.RemoveNode(st.Node("late", "1", "1Gi", 10))
	c.UpdateSnapshot(snap)
	if snap.NumNodes() != 0 {
		t.Fatalf("removed node still listed")
	}
	if _, err := snap.Get("late"); err == nil {
		t.Error("removed node still in the map")
	}
	c.RemovePod(p)
	if got := c.Stats(); got != (Stats{}) {
		t.Errorf("stats after everything is gone: %+v", got)
	}
}

func TestSnapshotCopiesOnlyChangedNodes(t *testing.T) {
	c, _ := newCache(0)
	for _, n := range []string{"a", "b", "c"} {
		c.AddNode(st.Node(n, "4", "8Gi", 10))
	}
	snap := NewEmptySnapshot()
	c.UpdateSnapshot(snap)
	before := map[string]*framework.NodeInfo{}
	gens := map[string]int64{}
	for _, ni := range snap.List() {
		before[ni.Node().Name] = ni
		gens[ni.Node().Name] = ni.Generation
	}

	c.AddPod(st.Pod("ns", "x", st.Container("1", ""), st.OnNode("b")))
	// Until the next update the snapshot does not move.
	if cpu, _ := requested(t, snap, "b"); cpu != 0 {
		t.Fatalf("snapshot changed before UpdateSnapshot: b has %dm", cpu)
	}
	c.UpdateSnapshot(snap)
	for _, ni := range snap.List() {
		name := ni.Node().Name
		if ni != before[name] {
			t.Errorf("node %s: the list holds a new pointer; it should be updated in place", name)
		}
		if changed := ni.Generation != gens[name]; changed != (name == "b") {
			t.Errorf("node %s: generation changed=%v", name, changed)
		}
	}
	if cpu, n := requested(t, snap, "b"); cpu != 1000 || n != 1 {
		t.Errorf("b: %dm in %d pods", cpu, n)
	}

	// A pod added to the cache after the snapshot does not leak into the
	// snapshot's slices through shared arrays.
	owned := st.Pod("ns", "y", st.OnNode("b"), st.OwnedBy("rs"))
	c.AddPod(owned)
	if _, n := requested(t, snap, "b"); n != 1 {
		t.Errorf("snapshot of b sees %d pods before the update", n)
	}
	hash := framework.NewPodInfo(owned).ControllerHash
	if b, _ := snap.Get("b"); b.ControllerPodCount(hash) != 0 {
		t.Error("snapshot of b counts a controller pod added after it was taken")
	}
	c.UpdateSnapshot(snap)
	if b, _ := snap.Get("b"); b.ControllerPodCount(hash) != 1 {
		t.Errorf("b counts %d pods of the controller, want 1", b.ControllerPodCount(hash))
	}
	c.RemovePod(owned)
	if b, _ := snap.Get("b"); b.ControllerPodCount(hash) != 1 {
		t.Error("removing from the cache changed the snapshot")
	}

	c.AddNode(st.Node("d", "4", "8Gi", 10))
	c.RemoveNode(st.Node("a", "4", "8Gi", 10))
	c.UpdateSnapshot(snap)
	var names []string
	for _, ni := range snap.List() {
		names = append(names, ni.Node().Name)
	}
	if !slices.Equal(names, []string{"b", "c", "d"}) {
		t.Errorf("nodes after add/remove: %v", names)
	}
}

func TestSnapshotInterleavesZones(t *testing.T) {
	var nodes []*corev1.Node
	for _, n := range []struct{ name, zone string }{{"a1", "a"}, {"a2", "a"}, {"a3", "a"}, {"b1", "b"}, {"b2", "b"}, {"c1", "c"}} {
		nodes = append(nodes, st.Node(n.name, "1", "1Gi", 10, st.NodeLabels(zoneLabel, n.zone)))
	}
	s := NewSnapshot(nodes, nil)
	var names []string
	for _, ni := range s.List() {
		names = append(names, ni.Node().Name)
	}
	if want := []string{"a1", "b1", "c1", "a2", "b2", "a3"}; !slices.Equal(names, want) {
		t.Errorf("order %v, want %v", names, want)
	}
}

func TestSnapshotTracksAntiAffinityNodes(t *testing.T) {
	c, _ := newCache(0)
	c.AddNode(st.Node("a", "1", "1Gi", 10))
	c.AddNode(st.Node("b", "1", "1Gi", 10))
	snap := NewEmptySnapshot()
	c.UpdateSnapshot(snap)
	if len(snap.HavePodsWithRequiredAntiAffinity()) != 0 {
		t.Fatal("anti-affinity nodes on an empty cluster")
	}
	p := st.Pod("ns", "x", st.OnNode("b"), st.AntiAffinity("kubernetes.io/hostname", map[string]string{"app": "x"}))
	c.AddPod(p)
	c.UpdateSnapshot(snap)
	if l := snap.HavePodsWithRequiredAntiAffinity(); len(l) != 1 || l[0].Node().Name != "b" {
		t.Fatalf("anti-affinity nodes = %v, want b", l)
	}
	c.RemovePod(p)
	c.UpdateSnapshot(snap)
	if len(snap.HavePodsWithRequiredAntiAffinity()) != 0 {
		t.Fatal("anti-affinity node kept after its pod left")
	}
}

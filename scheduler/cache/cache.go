// Package cache owns the scheduler's picture of the cluster: every node
// and the pods on it, including "assumed" pods the scheduler has placed but
// whose binding the API server has not confirmed yet, so the next decision
// already counts the last one. It hands out a Snapshot per scheduling
// cycle, copying only the nodes that changed since the last one.
//
// The cache is fed by the scheduler's informer handlers and by the
// scheduling loop (assume, forget, finish binding); it never talks to the
// API server itself.
package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/scheduler/framework"
)

// DefaultAssumedPodTTL is how long an assumed pod whose binding request
// succeeded may wait for the informer to show the pod bound before the
// cache drops it.
const DefaultAssumedPodTTL = 30 * time.Second

// cleanupPeriod is how often expired assumed pods are looked for.
const cleanupPeriod = time.Second

// Cache is safe for concurrent use.
type Cache struct {
	ttl time.Duration
	now func() time.Time
	log *slog.Logger

	mu    sync.RWMutex
	nodes map[string]*nodeItem
	// head starts the list of nodes ordered by most recent change, so a
	// snapshot update walks only the nodes changed since the last one.
	head *nodeItem
	// nodeSetGen moves when a node appears or disappears, which means the
	// snapshot's node list must be rebuilt.
	nodeSetGen int64
	pods       map[types.UID]*podState
	assumed    map[types.UID]struct{}
}

type nodeItem struct {
	name       string
	info       *framework.NodeInfo
	prev, next *nodeItem
}

type podState struct {
	pi       *framework.PodInfo
	nodeName string
	// For assumed pods: set when the binding request succeeded; the pod
	// expires at deadline unless the informer confirms it first.
	bindingFinished bool
	deadline        time.Time
}

// New returns an empty cache. ttl <= 0 means DefaultAssumedPodTTL; now nil
// means time.Now; log nil means slog.Default().
func New(ttl time.Duration, now func() time.Time, log *slog.Logger) *Cache {
	if ttl <= 0 {
		ttl = DefaultAssumedPodTTL
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Cache{
		ttl:     ttl,
		now:     now,
		log:     log.With("component", "scheduler-cache"),
		nodes:   map[string]*nodeItem{},
		pods:    map[types.UID]*podState{},
		assumed: map[types.UID]struct{}{},
	}
}

// Run expires assumed pods every second until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(cleanupPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.CleanupExpiredAssumedPods()
		}
	}
}

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// moveToHead marks item as the most recently changed.
func (c *Cache) moveToHead(it *nodeItem) {
	if c.head == it {
		return
	}
	c.unlink(it)
	it.next = c.head
	if c.head != nil {
		c.head.prev = it
	}
	c.head = it
}

func (c *Cache) unlink(it *nodeItem) {
	if it.prev != nil {
		it.prev.next = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	}
	if c.head == it {
		c.head = it.next
	}
	it.prev, it.next = nil, nil
}

// item returns the node's item, creating an empty one (no Node yet: its
// pods arrived first).
func (c *Cache) item(name string) *nodeItem {
	it, ok := c.nodes[name]
	if !ok {
		it = &nodeItem{name: name, info: framework.NewNodeInfo()}
		c.nodes[name] = it
	}
	return it
}

// AddNode adds or updates a node.
func (c *Cache) AddNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it := c.item(node.Name)
	if it.info.Node() == nil {
		c.nodeSetGen++
	}
	it.info.SetNode(node)
	c.moveToHead(it)
}

// UpdateNode replaces a node.
func (c *Cache) UpdateNode(_, node *corev1.Node) { c.AddNode(node) }

// RemoveNode removes a node. Its pods stay counted (on a node that the
// snapshot no longer lists) until their own deletions arrive.
func (c *Cache) RemoveNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.nodes[node.Name]
	if !ok {
		return
	}
	c.nodeSetGen++
	if len(it.info.Pods) == 0 {
		c.unlink(it)
		delete(c.nodes, node.Name)
		return
	}
	it.info.RemoveNode()
	c.moveToHead(it)
}

func (c *Cache) addPodLocked(pi *framework.PodInfo, nodeName string) *podState {
	it := c.item(nodeName)
	it.info.AddPodInfo(pi)
	c.moveToHead(it)
	st := &podState{pi: pi, nodeName: nodeName}
	c.pods[pi.Pod.UID] = st
	return st
}

func (c *Cache) removePodLocked(st *podState) {
	uid := st.pi.Pod.UID
	delete(c.pods, uid)
	delete(c.assumed, uid)
	it, ok := c.nodes[st.nodeName]
	if !ok {
		return
	}
	if err := it.info.RemovePod(st.pi.Pod); err != nil {
		c.log.Error("cache out of sync", "pod", podKey(st.pi.Pod), "err", err)
	}
	if it.info.Node() == nil && len(it.info.Pods) == 0 {
		c.unlink(it)
		delete(c.nodes, st.nodeName)
		return
	}
	c.moveToHead(it)
}

// AssumePod counts pi on nodeName before the binding is confirmed. pi.Pod
// may still have an empty spec.nodeName.
func (c *Cache) AssumePod(pi *framework.PodInfo, nodeName string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[pi.Pod.UID]; ok {
		return fmt.Errorf("assume pod %s: already in the scheduler cache", podKey(pi.Pod))
	}
	c.addPodLocked(pi, nodeName)
	c.assumed[pi.Pod.UID] = struct{}{}
	return nil
}

// FinishBinding starts the expiry clock of an assumed pod whose binding
// request succeeded.
func (c *Cache) FinishBinding(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.assumed[pod.UID]; !ok {
		return
	}
	st := c.pods[pod.UID]
	st.bindingFinished = true
	st.deadline = c.now().Add(c.ttl)
}

// ForgetPod drops an assumed pod whose binding failed.
func (c *Cache) ForgetPod(pod *corev1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.assumed[pod.UID]; !ok {
		return fmt.Errorf("forget pod %s: not assumed", podKey(pod))
	}
	c.removePodLocked(c.pods[pod.UID])
	return nil
}

// IsAssumedPod reports whether pod is assumed and not yet confirmed.
func (c *Cache) IsAssumedPod(pod *corev1.Pod) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.assumed[pod.UID]
	return ok
}

// AddPod records a pod the API server shows bound to spec.nodeName. An
// assumed pod is confirmed (and moved, should it be bound elsewhere).
func (c *Cache) AddPod(pod *corev1.Pod) {
	if pod.Spec.NodeName == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setPodLocked(pod)
}

func (c *Cache) setPodLocked(pod *corev1.Pod) {
	pi := framework.NewPodInfo(pod)
	if st, ok := c.pods[pod.UID]; ok {
		if _, assumed := c.assumed[pod.UID]; assumed && st.nodeName != pod.Spec.NodeName {
			c.log.Warn("pod bound to another node than assumed", "pod", podKey(pod), "assumed", st.nodeName, "bound", pod.Spec.NodeName)
		}
		c.removePodLocked(st)
	}
	c.addPodLocked(pi, pod.Spec.NodeName)
}

// UpdatePod replaces a bound pod.
func (c *Cache) UpdatePod(_, pod *corev1.Pod) { c.AddPod(pod) }

// RemovePod forgets a pod (deleted, or finished and no longer using its
// node's resources).
func (c *Cache) RemovePod(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.pods[pod.UID]; ok {
		c.removePodLocked(st)
	}
}

// CleanupExpiredAssumedPods drops assumed pods whose binding succeeded
// more than the TTL ago without the informer showing them bound.
func (c *Cache) CleanupExpiredAssumedPods() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for uid := range c.assumed {
		st := c.pods[uid]
		if st.bindingFinished && now.After(st.deadline) {
			c.log.Warn("assumed pod expired: its binding never showed up", "pod", podKey(st.pi.Pod), "node", st.nodeName)
			c.removePodLocked(st)
		}
	}
}

// Stats are the cache's sizes.
type Stats struct {
	Nodes, Pods, AssumedPods int
}

// Stats counts nodes (with a Node object), pods and assumed pods.
func (c *Cache) Stats() Stats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, it := range c.nodes {
		if it.info.Node() != nil {
			n++
		}
	}
	return Stats{Nodes: n, Pods: len(c.pods), AssumedPods: len(c.assumed)}
}

// Node returns the named node as the cache has it, or nil.
func (c *Cache) Node(name string) *corev1.Node {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if it, ok := c.nodes[name]; ok {
		return it.info.Node()
	}
	return nil
}

// PodNode returns the node the cache has pod on ("" if none) and whether
// it is assumed.
func (c *Cache) PodNode(pod *corev1.Pod) (node string, assumed bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	st, ok := c.pods[pod.UID]
	if !ok {
		return "", false
	}
	_, assumed = c.assumed[pod.UID]
	return st.nodeName, assumed
}

// UpdateSnapshot brings s up to date, copying only the nodes that changed
// since s was last updated from this cache.
func (c *Cache) UpdateSnapshot(s *Snapshot) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	rebuild := s.nodeSetGen != c.nodeSetGen || s.nodeInfoMap == nil
	if s.nodeInfoMap == nil {
		s.nodeInfoMap = map[string]*framework.NodeInfo{}
	}
	antiChanged := false
	for it := c.head; it != nil && it.info.Generation > s.generation; it = it.next {
		if it.info.Node() == nil {
			continue
		}
		clone := it.info.Clone()
		if existing, ok := s.nodeInfoMap[it.name]; ok {
			if len(existing.PodsWithRequiredAntiAffinity) > 0 || len(clone.PodsWithRequiredAntiAffinity) > 0 {
				antiChanged = true
			}
			// Keep the pointer: the node list holds it.
			*existing = *clone
		} else {
			s.nodeInfoMap[it.name] = clone
			rebuild = true
		}
	}
	if c.head != nil {
		s.generation = max(s.generation, c.head.info.Generation)
	}
	if rebuild {
		for name := range s.nodeInfoMap {
			if it, ok := c.nodes[name]; !ok || it.info.Node() == nil {
				delete(s.nodeInfoMap, name)
			}
		}
		s.rebuildList()
		s.nodeSetGen = c.nodeSetGen
		return
	}
	if antiChanged {
		s.rebuildAntiAffinityList()
	}
}

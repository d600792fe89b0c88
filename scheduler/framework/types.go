package framework

import (
	"fmt"
	"hash/maphash"
	"slices"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// Defaults Kubernetes assumes for containers without requests when scoring
// (not when fitting): a pod that asks for nothing still takes something.
const (
	DefaultMilliCPURequest int64 = 100               // 0.1 core
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024 // 200 MiB
)

// Resource is an amount of compute resources in the units the scheduler
// compares: millicores, bytes, a pod count, and integer amounts of every
// other resource (ephemeral-storage, extended resources like example.com/gpu).
type Resource struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	AllowedPodNumber int64
	// Scalar holds every other resource; nil when there are none.
	Scalar map[corev1.ResourceName]int64
}

// NewResource converts a ResourceList.
func NewResource(rl corev1.ResourceList) Resource {
	var r Resource
	r.AddList(rl)
	return r
}

// AddList adds every quantity of rl.
func (r *Resource) AddList(rl corev1.ResourceList) {
	for name, q := range rl {
		switch name {
		case corev1.ResourceCPU:
			r.MilliCPU += q.MilliValue()
		case corev1.ResourceMemory:
			r.Memory += q.Value()
		case corev1.ResourceEphemeralStorage:
			r.EphemeralStorage += q.Value()
		case corev1.ResourcePods:
			r.AllowedPodNumber += q.Value()
		default:
			if r.Scalar == nil {
				r.Scalar = map[corev1.ResourceName]int64{}
			}
			r.Scalar[name] += q.Value()
		}
	}
}

// Add adds o to r.
func (r *Resource) Add(o *Resource) {
	r.MilliCPU += o.MilliCPU
	r.Memory += o.Memory
	r.EphemeralStorage += o.EphemeralStorage
	r.AllowedPodNumber += o.AllowedPodNumber
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[corev1.ResourceName]int64{}
		}
		r.Scalar[name] += v
	}
}

// Sub subtracts o from r.
func (r *Resource) Sub(o *Resource) {
	r.MilliCPU -= o.MilliCPU
	r.Memory -= o.Memory
	r.EphemeralStorage -= o.EphemeralStorage
	r.AllowedPodNumber -= o.AllowedPodNumber
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[corev1.ResourceName]int64{}
		}
		r.Scalar[name] -= v
	}
}

// SetMax raises every amount of r to at least o's.
func (r *Resource) SetMax(o *Resource) {
	r.MilliCPU = max(r.MilliCPU, o.MilliCPU)
	r.Memory = max(r.Memory, o.Memory)
	r.EphemeralStorage = max(r.EphemeralStorage, o.EphemeralStorage)
	r.AllowedPodNumber = max(r.AllowedPodNumber, o.AllowedPodNumber)
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[corev1.ResourceName]int64{}
		}
		r.Scalar[name] = max(r.Scalar[name], v)
	}
}

// IsZero reports whether r asks for nothing at all.
func (r *Resource) IsZero() bool {
	if r.MilliCPU != 0 || r.Memory != 0 || r.EphemeralStorage != 0 || r.AllowedPodNumber != 0 {
		return false
	}
	for _, v := range r.Scalar {
		if v != 0 {
			return false
		}
	}
	return true
}

// Clone returns a deep copy.
func (r Resource) Clone() Resource {
	if r.Scalar != nil {
		m := make(map[corev1.ResourceName]int64, len(r.Scalar))
		for k, v := range r.Scalar {
			m[k] = v
		}
		r.Scalar = m
	}
	return r
}

// HostPort is one port a pod claims on its node.
type HostPort struct {
	IP       string // "0.0.0.0" when the container did not say
	Protocol corev1.Protocol
	Port     int32
}

// Conflicts reports whether two host ports cannot both be bound: same
// protocol and port, and the same IP or either one on every IP.
func (h HostPort) Conflicts(o HostPort) bool {
	if h.Port != o.Port || h.Protocol != o.Protocol {
		return false
	}
	return h.IP == o.IP || h.IP == anyIP || o.IP == anyIP
}

const anyIP = "0.0.0.0"

// AffinityTerm is a parsed PodAffinityTerm: which pods (namespaces plus
// label selector) and which node label defines "the same place".
type AffinityTerm struct {
	Namespaces  map[string]struct{}
	Selector    labels.Selector
	TopologyKey string
}

// Matches reports whether pod is one of the pods the term talks about.
func (t *AffinityTerm) Matches(pod *corev1.Pod) bool {
	if _, ok := t.Namespaces[pod.Namespace]; !ok {
		return false
	}
	return t.Selector.Matches(labels.Set(pod.Labels))
}

// PodInfo is a pod plus what the scheduler computes from it once, so that
// filters and scores evaluated on hundreds of nodes do not recompute it.
type PodInfo struct {
	Pod *corev1.Pod
	// Requests is what the pod needs to fit: the larger of the sum of its
	// containers' requests and each init container's requests.
	Requests Resource
	// NonZeroMilliCPU and NonZeroMemory are Requests for scoring, with the
	// Kubernetes defaults for containers that request nothing.
	NonZeroMilliCPU, NonZeroMemory int64
	// HostPorts are the ports the pod claims on its node.
	HostPorts []HostPort
	// RequiredAntiAffinity are the pod's hard anti-affinity terms.
	RequiredAntiAffinity []AffinityTerm
	// ControllerUID is the uid of the pod's controller owner ("" if none).
	ControllerUID types.UID
	// ControllerHash identifies the pair (namespace, controller uid); 0
	// when there is no controller. NodeInfo counts pods by it, so
	// spreading scores a node with a short scan over integers instead of
	// string map lookups (a 64-bit hash collision would only blur a soft
	// score).
	ControllerHash uint64
	// ParseErr is set when an affinity term's selector is invalid; such a
	// pod cannot be scheduled and its terms are ignored for other pods.
	ParseErr error
}

// NewPodInfo computes the PodInfo of pod. pod is kept, not copied: it must
// not change afterwards.
func NewPodInfo(pod *corev1.Pod) *PodInfo {
	pi := &PodInfo{Pod: pod}
	pi.computeRequests()
	for i := range pod.Spec.Containers {
		for _, p := range pod.Spec.Containers[i].Ports {
			if p.HostPort <= 0 {
				continue
			}
			hp := HostPort{IP: p.HostIP, Protocol: p.Protocol, Port: p.HostPort}
			if hp.IP == "" {
				hp.IP = anyIP
			}
			if hp.Protocol == "" {
				hp.Protocol = corev1.ProtocolTCP
			}
			pi.HostPorts = append(pi.HostPorts, hp)
		}
	}
	if a := pod.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for i, term := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			t, err := NewAffinityTerm(pod, &term)
			if err != nil {
				pi.ParseErr = fmt.Errorf("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[%d]: %w", i, err)
				pi.RequiredAntiAffinity = nil
				break
			}
			pi.RequiredAntiAffinity = append(pi.RequiredAntiAffinity, t)
		}
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		pi.ControllerUID = ref.UID
		pi.ControllerHash = controllerHash(pod.Namespace, ref.UID)
	}
	return pi
}

// NewAffinityTerm parses term as written in pod (its namespaces default to
// the pod's own).
func NewAffinityTerm(pod *corev1.Pod, term *corev1.PodAffinityTerm) (AffinityTerm, error) {
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil {
		return AffinityTerm{}, err
	}
	if term.LabelSelector == nil {
		// A missing selector selects no pods, as in Kubernetes.
		sel = labels.Nothing()
	}
	ns := make(map[string]struct{}, max(1, len(term.Namespaces)))
	for _, n := range term.Namespaces {
		ns[n] = struct{}{}
	}
	if len(ns) == 0 {
		ns[pod.Namespace] = struct{}{}
	}
	return AffinityTerm{Namespaces: ns, Selector: sel, TopologyKey: term.TopologyKey}, nil
}

func (pi *PodInfo) computeRequests() {
	spec := &pi.Pod.Spec
	var sum Resource
	var cpu, mem int64
	for i := range spec.Containers {
		req := spec.Containers[i].Resources.Requests
		sum.AddList(req)
		c, m := nonZero(req)
		cpu += c
		mem += m
	}
	for i := range spec.InitContainers {
		req := spec.InitContainers[i].Resources.Requests
		r := NewResource(req)
		sum.SetMax(&r)
		c, m := nonZero(req)
		cpu, mem = max(cpu, c), max(mem, m)
	}
	// A pod never "requests" pod slots; the pod count is checked separately.
	sum.AllowedPodNumber = 0
	pi.Requests = sum
	pi.NonZeroMilliCPU, pi.NonZeroMemory = cpu, mem
}

func nonZero(rl corev1.ResourceList) (cpu, mem int64) {
	if q, ok := rl[corev1.ResourceCPU]; ok {
		cpu = q.MilliValue()
	} else {
		cpu = DefaultMilliCPURequest
	}
	if q, ok := rl[corev1.ResourceMemory]; ok {
		mem = q.Value()
	} else {
		mem = DefaultMemoryRequest
	}
	return cpu, mem
}

// WithPod returns a copy of pi that describes pod instead (same spec, so
// the computed fields stay valid), e.g. the same pod bound to a node.
func (pi *PodInfo) WithPod(pod *corev1.Pod) *PodInfo {
	cp := *pi
	cp.Pod = pod
	return &cp
}

// Priority is the pod's spec.priority (0 when unset).
func Priority(pod *corev1.Pod) int32 {
	if pod.Spec.Priority != nil {
		return *pod.Spec.Priority
	}
	return 0
}

// generation numbers every change to any NodeInfo, so a snapshot can copy
// just the nodes that changed since it was last brought up to date.
var generation atomic.Int64

func nextGeneration() int64 { return generation.Add(1) }

// NodeInfo is one node and the pods the scheduler believes run on it
// (bound and assumed), with their sums precomputed.
type NodeInfo struct {
	node *corev1.Node
	// Pods on the node, bound or assumed.
	Pods []*PodInfo
	// PodsWithRequiredAntiAffinity are the Pods that have hard
	// anti-affinity terms.
	PodsWithRequiredAntiAffinity []*PodInfo
	// Allocatable is node.status.allocatable.
	Allocatable Resource
	// Requested is the sum of the pods' Requests.
	Requested Resource
	// NonZeroRequested sums NonZeroMilliCPU/NonZeroMemory (scoring).
	NonZeroRequested Resource
	// UsedPorts are the host ports claimed by the pods.
	UsedPorts []HostPort
	// ControllerPods counts the pods (not being deleted) per
	// PodInfo.ControllerHash.
	ControllerPods []ControllerCount
	// Copied from the node at SetNode, so hot filters and scores need not
	// chase the Node pointer: spec.unschedulable, spec.taints and the
	// topology.kubernetes.io/zone label ("" if none).
	Unschedulable bool
	Taints        []corev1.Taint
	Zone          string
	// Generation moves on every change.
	Generation int64
}

// NewNodeInfo returns an empty NodeInfo holding pods.
func NewNodeInfo(pods ...*PodInfo) *NodeInfo {
	ni := &NodeInfo{Generation: nextGeneration()}
	for _, p := range pods {
		ni.AddPodInfo(p)
	}
	return ni
}

// Node is the node object (nil while only its pods are known).
func (n *NodeInfo) Node() *corev1.Node {
	if n == nil {
		return nil
	}
	return n.node
}

// SetNode sets the node object.
func (n *NodeInfo) SetNode(node *corev1.Node) {
	n.node = node
	n.Allocatable = NewResource(node.Status.Allocatable)
	n.Unschedulable = node.Spec.Unschedulable
	n.Taints = node.Spec.Taints
	n.Zone = node.Labels[ZoneLabel]
	n.Generation = nextGeneration()
}

// RemoveNode forgets the node object but keeps its pods until they go.
func (n *NodeInfo) RemoveNode() {
	n.node = nil
	n.Allocatable = Resource{}
	n.Unschedulable, n.Taints, n.Zone = false, nil, ""
	n.Generation = nextGeneration()
}

// AddPodInfo adds a pod to the node.
func (n *NodeInfo) AddPodInfo(pi *PodInfo) {
	n.Pods = append(n.Pods, pi)
	if len(pi.RequiredAntiAffinity) > 0 {
		n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, pi)
	}
	n.Requested.Add(&pi.Requests)
	n.NonZeroRequested.MilliCPU += pi.NonZeroMilliCPU
	n.NonZeroRequested.Memory += pi.NonZeroMemory
	n.UsedPorts = append(n.UsedPorts, pi.HostPorts...)
	if pi.ControllerHash != 0 && pi.Pod.DeletionTimestamp == nil {
		n.addControllerPod(pi.ControllerHash, 1)
	}
	n.Generation = nextGeneration()
}

// RemovePod removes the pod with pod's uid; an error if it is not there.
func (n *NodeInfo) RemovePod(pod *corev1.Pod) error {
	idx := -1
	for i, p := range n.Pods {
		if p.Pod.UID == pod.UID {
			idx = i
			break
		}
	}
	if idx < 0 {
		name := "<nil>"
		if n.node != nil {
			name = n.node.Name
		}
		return fmt.Errorf("pod %s/%s is not on node %s", pod.Namespace, pod.Name, name)
	}
	pi := n.Pods[idx]
	// Copy-on-write: snapshots share these slices with earlier clones.
	n.Pods = deleteAt(n.Pods, idx)
	for i, p := range n.PodsWithRequiredAntiAffinity {
		if p.Pod.UID == pod.UID {
			n.PodsWithRequiredAntiAffinity = deleteAt(n.PodsWithRequiredAntiAffinity, i)
			break
		}
	}
	n.Requested.Sub(&pi.Requests)
	n.NonZeroRequested.MilliCPU -= pi.NonZeroMilliCPU
	n.NonZeroRequested.Memory -= pi.NonZeroMemory
	if pi.ControllerHash != 0 && pi.Pod.DeletionTimestamp == nil {
		n.addControllerPod(pi.ControllerHash, -1)
	}
	if len(pi.HostPorts) > 0 {
		n.UsedPorts = n.UsedPorts[:0:0]
		for _, p := range n.Pods {
			n.UsedPorts = append(n.UsedPorts, p.HostPorts...)
		}
	}
	n.Generation = nextGeneration()
	return nil
}

// ControllerCount is how many pods of one controller run on a node.
type ControllerCount struct {
	Hash  uint64
	Count int32
}

// ControllerPodCount is the number of pods on the node with the given
// PodInfo.ControllerHash.
func (n *NodeInfo) ControllerPodCount(hash uint64) int32 {
	for _, c := range n.ControllerPods {
		if c.Hash == hash {
			return c.Count
		}
	}
	return 0
}

// addControllerPod changes a count, copying the slice first: snapshots
// share it with earlier clones.
func (n *NodeInfo) addControllerPod(hash uint64, delta int32) {
	out := make([]ControllerCount, 0, len(n.ControllerPods)+1)
	found := false
	for _, c := range n.ControllerPods {
		if c.Hash == hash {
			found = true
			c.Count += delta
			if c.Count <= 0 {
				continue
			}
		}
		out = append(out, c)
	}
	if !found && delta > 0 {
		out = append(out, ControllerCount{Hash: hash, Count: delta})
	}
	n.ControllerPods = out
}

// ZoneLabel is the well-known node label naming a node's zone.
const ZoneLabel = "topology.kubernetes.io/zone"

var controllerSeed = maphash.MakeSeed()

func controllerHash(namespace string, uid types.UID) uint64 {
	var h maphash.Hash
	h.SetSeed(controllerSeed)
	h.WriteString(namespace)
	h.WriteByte('/')
	h.WriteString(string(uid))
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}

// deleteAt returns s without element i in a fresh array, leaving s intact.
func deleteAt[T any](s []T, i int) []T {
	out := make([]T, 0, len(s)-1)
	out = append(out, s[:i]...)
	return append(out, s[i+1:]...)
}

// Clone returns a copy that later changes to n do not affect. The PodInfos
// are shared (they are immutable); the slices are capped so that appends
// to either copy never write into the other's array.
func (n *NodeInfo) Clone() *NodeInfo {
	return &NodeInfo{
		node:                         n.node,
		Pods:                         n.Pods[:len(n.Pods):len(n.Pods)],
		PodsWithRequiredAntiAffinity: n.PodsWithRequiredAntiAffinity[:len(n.PodsWithRequiredAntiAffinity):len(n.PodsWithRequiredAntiAffinity)],
		Allocatable:                  n.Allocatable.Clone(),
		Requested:                    n.Requested.Clone(),
		NonZeroRequested:             n.NonZeroRequested,
		UsedPorts:                    n.UsedPorts[:len(n.UsedPorts):len(n.UsedPorts)],
		ControllerPods:               slices.Clone(n.ControllerPods),
		Unschedulable:                n.Unschedulable,
		Taints:                       n.Taints,
		Zone:                         n.Zone,
		Generation:                   n.Generation,
	}
}

// NodeInfoLister is a read-only view of all nodes, consistent for one
// scheduling cycle.
type NodeInfoLister interface {
	// List returns every node, in a stable order.
	List() []*NodeInfo
	// Get returns the named node or an error.
	Get(name string) (*NodeInfo, error)
	// HavePodsWithRequiredAntiAffinity lists the nodes that run at least
	// one pod with hard anti-affinity terms.
	HavePodsWithRequiredAntiAffinity() []*NodeInfo
	// NumNodes is len(List()).
	NumNodes() int
}

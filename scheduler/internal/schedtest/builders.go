// Package schedtest builds nodes and pods for the scheduler's tests and
// benchmarks. It is test support only; nothing in the scheduler proper
// imports it.
package schedtest

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// NodeOption changes a node under construction.
type NodeOption func(*corev1.Node)

// Node returns a node with allocatable cpu, memory (quantities such as "4"
// and "8Gi"; "" leaves a resource out) and a pod count, labelled
// kubernetes.io/hostname=<name> as kubelets do.
func Node(name, cpu, mem string, pods int64, opts ...NodeOption) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("node-" + name), Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status:     corev1.NodeStatus{Allocatable: corev1.ResourceList{}},
	}
	if cpu != "" {
		n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		n.Status.Allocatable[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	if pods > 0 {
		n.Status.Allocatable[corev1.ResourcePods] = *resource.NewQuantity(pods, resource.DecimalSI)
	}
	n.Status.Capacity = n.Status.Allocatable.DeepCopy()
	for _, o := range opts {
		o(n)
	}
	return n
}

// NodeLabels adds labels to a node.
func NodeLabels(kv ...string) NodeOption {
	return func(n *corev1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

// Taint adds a taint.
func Taint(key, value string, effect corev1.TaintEffect) NodeOption {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	}
}

// Cordoned marks the node spec.unschedulable.
func Cordoned() NodeOption { return func(n *corev1.Node) { n.Spec.Unschedulable = true } }

// Extended adds an allocatable extended resource.
func Extended(name string, v int64) NodeOption {
	return func(n *corev1.Node) {
		n.Status.Allocatable[corev1.ResourceName(name)] = *resource.NewQuantity(v, resource.DecimalSI)
	}
}

// PodOption changes a pod under construction.
type PodOption func(*corev1.Pod)

// Pod returns a pod ns/name with uid "uid-ns-name", scheduler
// default-scheduler and one container without requests (unless options
// add containers).
func Pod(ns, name string, opts ...PodOption) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), Labels: map[string]string{}},
		Spec:       corev1.PodSpec{SchedulerName: corev1.DefaultSchedulerName},
	}
	for _, o := range opts {
		o(p)
	}
	if len(p.Spec.Containers) == 0 {
		p.Spec.Containers = []corev1.Container{{Name: "c", Image: "minik8s.local/busybox:1.35"}}
	}
	return p
}

// Container adds a container requesting cpu and memory ("" = no request).
func Container(cpu, mem string) PodOption {
	return func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, container("c", cpu, mem))
	}
}

// InitContainer adds an init container requesting cpu and memory.
func InitContainer(cpu, mem string) PodOption {
	return func(p *corev1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, container("init", cpu, mem))
	}
}

func container(name, cpu, mem string) corev1.Container {
	c := corev1.Container{Name: name, Image: "minik8s.local/busybox:1.35"}
	if cpu != "" || mem != "" {
		c.Resources.Requests = corev1.ResourceList{}
	}
	if cpu != "" {
		c.Resources.Requests[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	return c
}

// ExtendedRequest makes the last container request v of an extended
// resource.
func ExtendedRequest(name string, v int64) PodOption {
	return func(p *corev1.Pod) {
		if len(p.Spec.Containers) == 0 {
			p.Spec.Containers = []corev1.Container{container("c", "", "")}
		}
		c := &p.Spec.Containers[len(p.Spec.Containers)-1]
		if c.Resources.Requests == nil {
			c.Resources.Requests = corev1.ResourceList{}
		}
		c.Resources.Requests[corev1.ResourceName(name)] = *resource.NewQuantity(v, resource.DecimalSI)
	}
}

// HostPort makes the last container claim a host port.
func HostPort(port int32, proto corev1.Protocol, ip string) PodOption {
	return func(p *corev1.Pod) {
		if len(p.Spec.Containers) == 0 {
			p.Spec.Containers = []corev1.Container{container("c", "", "")}
		}
		c := &p.Spec.Containers[len(p.Spec.Containers)-1]
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port, Protocol: proto, HostIP: ip})
	}
}

// Labels adds pod labels.
func Labels(kv ...string) PodOption {
	return func(p *corev1.Pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

// OnNode sets spec.nodeName (a bound pod).
func OnNode(node string) PodOption { return func(p *corev1.Pod) { p.Spec.NodeName = node } }

// NodeSelector sets spec.nodeSelector.
func NodeSelector(kv ...string) PodOption {
	return func(p *corev1.Pod) {
		p.Spec.NodeSelector = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

// RequiredNodeAffinity sets the required node affinity terms.
func RequiredNodeAffinity(terms ...corev1.NodeSelectorTerm) PodOption {
	return func(p *corev1.Pod) {
		nodeAffinity(p).RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: terms}
	}
}

// PreferredNodeAffinity adds a preferred node affinity term.
func PreferredNodeAffinity(weight int32, term corev1.NodeSelectorTerm) PodOption {
	return func(p *corev1.Pod) {
		na := nodeAffinity(p)
		na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution,
			corev1.PreferredSchedulingTerm{Weight: weight, Preference: term})
	}
}

func nodeAffinity(p *corev1.Pod) *corev1.NodeAffinity {
	if p.Spec.Affinity == nil {
		p.Spec.Affinity = &corev1.Affinity{}
	}
	if p.Spec.Affinity.NodeAffinity == nil {
		p.Spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	return p.Spec.Affinity.NodeAffinity
}

// Expr is a node selector requirement.
func Expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

// Term is a node selector term of label expressions.
func Term(exprs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: exprs}
}

// AntiAffinity adds a required pod anti-affinity term selecting pods
// with the given labels, across topologyKey.
func AntiAffinity(topologyKey string, matchLabels map[string]string, namespaces ...string) PodOption {
	return func(p *corev1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &corev1.Affinity{}
		}
		if p.Spec.Affinity.PodAntiAffinity == nil {
			p.Spec.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{}
		}
		a := p.Spec.Affinity.PodAntiAffinity
		a.RequiredDuringSchedulingIgnoredDuringExecution = append(a.RequiredDuringSchedulingIgnoredDuringExecution,
			corev1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{MatchLabels: matchLabels}, Namespaces: namespaces, TopologyKey: topologyKey})
	}
}

// Toleration adds a toleration.
func Toleration(key string, op corev1.TolerationOperator, value string, effect corev1.TaintEffect) PodOption {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: key, Operator: op, Value: value, Effect: effect})
	}
}

// OwnedBy makes the pod controlled by a ReplicaSet with uid.
func OwnedBy(uid string) PodOption {
	return func(p *corev1.Pod) {
		yes := true
		p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{
			APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs-" + uid, UID: types.UID(uid), Controller: &yes,
		})
	}
}

// Priority sets spec.priority.
func Priority(v int32) PodOption { return func(p *corev1.Pod) { p.Spec.Priority = &v } }

// SchedulerName sets spec.schedulerName.
func SchedulerName(name string) PodOption { return func(p *corev1.Pod) { p.Spec.SchedulerName = name } }

// Created sets metadata.creationTimestamp.
func Created(t metav1.Time) PodOption { return func(p *corev1.Pod) { p.CreationTimestamp = t } }

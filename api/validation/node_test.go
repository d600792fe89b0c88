package validation

import (
	"testing"

	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"},
			Taints: []corev1.Taint{{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Capacity:        corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourcePods: resource.MustParse("110")},
			Conditions:      []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}, {Type: corev1.NodeHostName, Address: "node-1"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
		},
	}
}

func TestValidateNode(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(n *corev1.Node)
		want   []string
	}{
		{name: "valid", mutate: func(n *corev1.Node) {}},
		{name: "namespace forbidden for cluster-scoped", mutate: func(n *corev1.Node) { n.Namespace = "default" },
			want: []string{"metadata.namespace: Forbidden"}},
		{name: "taint rules", mutate: func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{
				{Key: "", Effect: corev1.TaintEffectNoSchedule},
				{Key: "k", Effect: "Evict"},
				{Key: "k", Value: "bad value", Effect: corev1.TaintEffectNoExecute},
				{Key: "k", Effect: corev1.TaintEffectNoExecute},
				{Key: "j"},
			}
		}, want: []string{"spec.taints[0].key: Required value", "spec.taints[1].effect: Unsupported value",
			"spec.taints[2].value: Invalid value", "spec.taints[3]: Duplicate value", "spec.taints[4].effect: Required value"}},
		{name: "pod CIDR", mutate: func(n *corev1.Node) { n.Spec.PodCIDR = "10.244.1.0"; n.Spec.PodCIDRs = []string{"10.244.1.0"} },
			want: []string{"spec.podCIDR: Invalid value", "spec.podCIDRs[0]: Invalid value"}},
		{name: "status", mutate: func(n *corev1.Node) {
			n.Status.Capacity[corev1.ResourceMemory] = resource.MustParse("-1Gi")
			n.Status.Conditions[0].Status = "Maybe"
			n.Status.Addresses[0].Address = "not-an-ip"
		}, want: []string{"status.capacity[memory]: Invalid value", "status.conditions[0].status: Unsupported value", "status.addresses[0].address: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := validNode()
			tt.mutate(n)
			expectErrors(t, ValidateCreate(n), tt.want...)
		})
	}
}

func TestValidateNodeUpdate(t *testing.T) {
	tests := []struct {
		name    string
		oldCIDR string
		mutate  func(n *corev1.Node)
		want    []string
	}{
		{name: "set pod CIDR once", oldCIDR: "", mutate: func(n *corev1.Node) {}},
		{name: "unschedulable and taints change", oldCIDR: "10.244.1.0/24", mutate: func(n *corev1.Node) {
			n.Spec.Unschedulable = true
			n.Spec.Taints = nil
		}},
		{name: "pod CIDR immutable", oldCIDR: "10.244.1.0/24", mutate: func(n *corev1.Node) {
			n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.2.0/24", []string{"10.244.2.0/24"}
		}, want: []string{"spec.podCIDRs: Forbidden"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := stored(validNode())
			old.Spec.PodCIDR = tt.oldCIDR
			old.Spec.PodCIDRs = nil
			if tt.oldCIDR != "" {
				old.Spec.PodCIDRs = []string{tt.oldCIDR}
			}
			n := old.DeepCopy()
			n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.1.0/24", []string{"10.244.1.0/24"}
			tt.mutate(n)
			expectErrors(t, ValidateUpdate(n, old), tt.want...)
		})
	}
	old := stored(validNode())
	n := old.DeepCopy()
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	n.Status.Addresses[0].Type = "PublicIP"
	expectErrors(t, ValidateStatusUpdate(n, old), "status.addresses[0].type: Unsupported value")
}

func TestValidateNamespace(t *testing.T) {
	tests := []struct {
		name string
		ns   corev1.Namespace
		want []string
	}{
		{name: "valid", ns: corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"},
			Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes", "example.com/cleanup"}}}},
		{name: "name must be a DNS label (no dots)", ns: corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team.a"}},
			want: []string{"metadata.name: Invalid value"}},
		{name: "unqualified finalizer", ns: corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"},
			Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"cleanup"}}},
			want: []string{"spec.finalizers[0]: Invalid value"}},
		{name: "phase", ns: corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Status: corev1.NamespaceStatus{Phase: "Gone"}},
			want: []string{"status.phase: Unsupported value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectErrors(t, ValidateCreate(tt.ns.DeepCopy()), tt.want...)
		})
	}
}

func TestValidateNamespaceUpdates(t *testing.T) {
	old := stored(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"},
		Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}})

	// The namespace controller's finalize call empties spec.finalizers.
	fin := old.DeepCopy()
	fin.Spec.Finalizers = nil
	expectErrors(t, ValidateUpdate(fin, old))

	ren := old.DeepCopy()
	ren.Name = "team-b"
	expectErrors(t, ValidateUpdate(ren, old), "metadata.name: Invalid value")

	term := old.DeepCopy()
	term.Status.Phase = corev1.NamespaceTerminating
	expectErrors(t, ValidateStatusUpdate(term, old), "status.phase: Invalid value")
	now := metav1.Now()
	old.DeletionTimestamp = &now
	term.DeletionTimestamp = &now
	expectErrors(t, ValidateStatusUpdate(term, old))
}

func TestValidateEvent(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(e *corev1.Event)
		want   []string
	}{
		{name: "valid", mutate: func(e *corev1.Event) {}},
		{name: "cluster-scoped involved object", mutate: func(e *corev1.Event) {
			e.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-1"}
		}},
		{name: "namespace mismatch", mutate: func(e *corev1.Event) { e.InvolvedObject.Namespace = "other" },
			want: []string{"involvedObject.namespace: Invalid value"}},
		{name: "type and count", mutate: func(e *corev1.Event) { e.Type = "Error"; e.Count = -1 },
			want: []string{"type: Unsupported value", "count: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "web-1.17a2b", Namespace: "default"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1"},
				Reason:         "Started", Type: corev1.EventTypeNormal, Count: 1,
			}
			tt.mutate(e)
			expectErrors(t, ValidateCreate(e), tt.want...)
			old := stored(e.DeepCopy())
			upd := old.DeepCopy()
			upd.LastTimestamp = metav1.Now()
			expectErrors(t, ValidateUpdate(upd, old), tt.want...)
		})
	}
}

func TestValidateLease(t *testing.T) {
	holder := "node-1"
	tests := []struct {
		name string
		spec coordinationv1.LeaseSpec
		want []string
	}{
		{name: "valid", spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: ptr(int32(40)), LeaseTransitions: ptr(int32(0))}},
		{name: "empty spec", spec: coordinationv1.LeaseSpec{}},
		{name: "bad numbers", spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: ptr(int32(0)), LeaseTransitions: ptr(int32(-1))},
			want: []string{"spec.leaseDurationSeconds: Invalid value", "spec.leaseTransitions: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Namespace: "kube-node-lease"}, Spec: tt.spec}
			expectErrors(t, ValidateCreate(l), tt.want...)
			old := stored(l.DeepCopy())
			expectErrors(t, ValidateUpdate(old.DeepCopy(), old), tt.want...)
		})
	}
}

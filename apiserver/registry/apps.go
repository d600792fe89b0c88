package registry

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// Deployments is apps/v1 deployments with status and scale.
func Deployments() *Resource {
	return &Resource{
		Group: "apps", Version: "v1", Resource: "deployments", Singular: "deployment", Kind: "Deployment",
		ListKind: "DeploymentList", ShortNames: []string{"deploy"}, Namespaced: true, Categories: []string{"all"},
		New:       func() runtime.Object { return &appsv1.Deployment{} },
		NewList:   func() runtime.Object { return &appsv1.DeploymentList{} },
		HasStatus: true,
		Strategy:  statusResetStrategy{},
		Scale: &ScaleAccess{
			Get: func(obj runtime.Object) (int32, int32, string) {
				d := obj.(*appsv1.Deployment)
				return deref(d.Spec.Replicas, 1), d.Status.Replicas, selectorText(d.Spec.Selector)
			},
			Set: func(obj runtime.Object, n int32) { obj.(*appsv1.Deployment).Spec.Replicas = &n },
		},
		Columns: []metav1.TableColumnDefinition{nameCol,
			col("Ready", "string", "Number of the pods ready out of desired."),
			col("Up-to-date", "integer", "Pods updated to the latest template."),
			col("Available", "integer", "Pods available to users."),
			ageCol,
			wide(col("Containers", "string", "Container names in the template.")),
			wide(col("Images", "string", "Images in the template.")),
			wide(col("Selector", "string", "The label selector.")),
		},
		Row: func(obj runtime.Object) []any {
			d := obj.(*appsv1.Deployment)
			names, images := containerSummary(d.Spec.Template.Spec.Containers)
			return []any{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, deref(d.Spec.Replicas, 1)),
				int64(d.Status.UpdatedReplicas), int64(d.Status.AvailableReplicas), Age(d.CreationTimestamp),
				names, images, selectorText(d.Spec.Selector)}
		},
	}
}

// ReplicaSets is apps/v1 replicasets with status and scale.
func ReplicaSets() *Resource {
	return &Resource{
		Group: "apps", Version: "v1", Resource: "replicasets", Singular: "replicaset", Kind: "ReplicaSet",
		ListKind: "ReplicaSetList", ShortNames: []string{"rs"}, Namespaced: true, Categories: []string{"all"},
		New:       func() runtime.Object { return &appsv1.ReplicaSet{} },
		NewList:   func() runtime.Object { return &appsv1.ReplicaSetList{} },
		HasStatus: true,
		Strategy:  statusResetStrategy{},
		Fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"status.replicas": fmt.Sprint(obj.(*appsv1.ReplicaSet).Status.Replicas)}
		},
		Scale: &ScaleAccess{
			Get: func(obj runtime.Object) (int32, int32, string) {
				r := obj.(*appsv1.ReplicaSet)
				return deref(r.Spec.Replicas, 1), r.Status.Replicas, selectorText(r.Spec.Selector)
			},
			Set: func(obj runtime.Object, n int32) { obj.(*appsv1.ReplicaSet).Spec.Replicas = &n },
		},
		Columns: []metav1.TableColumnDefinition{nameCol,
			col("Desired", "integer", "Number of desired pods."),
			col("Current", "integer", "Number of pods that exist."),
			col("Ready", "integer", "Number of ready pods."),
			ageCol,
			wide(col("Containers", "string", "Container names in the template.")),
			wide(col("Images", "string", "Images in the template.")),
			wide(col("Selector", "string", "The label selector.")),
		},
		Row: func(obj runtime.Object) []any {
			r := obj.(*appsv1.ReplicaSet)
			names, images := containerSummary(r.Spec.Template.Spec.Containers)
			return []any{r.Name, int64(deref(r.Spec.Replicas, 1)), int64(r.Status.Replicas), int64(r.Status.ReadyReplicas),
				Age(r.CreationTimestamp), names, images, selectorText(r.Spec.Selector)}
		},
	}
}

// Leases is coordination.k8s.io/v1 leases (heartbeats, leader election).
func Leases() *Resource {
	return &Resource{
		Group: "coordination.k8s.io", Version: "v1", Resource: "leases", Singular: "lease", Kind: "Lease",
		ListKind: "LeaseList", Namespaced: true,
		New:      func() runtime.Object { return &coordinationv1.Lease{} },
		NewList:  func() runtime.Object { return &coordinationv1.LeaseList{} },
		Strategy: baseStrategy{},
		Columns:  []metav1.TableColumnDefinition{nameCol, col("Holder", "string", "The holder of the lease."), ageCol},
		Row: func(obj runtime.Object) []any {
			l := obj.(*coordinationv1.Lease)
			holder := ""
			if l.Spec.HolderIdentity != nil {
				holder = *l.Spec.HolderIdentity
			}
			return []any{l.Name, holder, Age(l.CreationTimestamp)}
		},
	}
}

// All returns every resource the API server serves, in discovery order.
func All() []*Resource {
	return []*Resource{Namespaces(), Pods(), Services(), Endpoints(), ConfigMaps(), Secrets(), Nodes(), Events(),
		Bindings(), Deployments(), ReplicaSets(), Leases()}
}

// Bindings is the legacy POST /namespaces/{ns}/bindings endpoint; the REST
// layer routes it to the pod binder.
func Bindings() *Resource {
	return &Resource{
		Version: "v1", Resource: "bindings", Singular: "binding", Kind: "Binding", ListKind: "BindingList",
		Namespaced: true, CreateOnly: true,
		New:      func() runtime.Object { return &corev1.Binding{} },
		NewList:  func() runtime.Object { return &corev1.PodList{} },
		Strategy: baseStrategy{},
	}
}

func deref(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func selectorText(s *metav1.LabelSelector) string {
	if s == nil {
		return ""
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return ""
	}
	return sel.String()
}

func containerSummary(cs []corev1.Container) (names, images string) {
	n, i := make([]string, len(cs)), make([]string, len(cs))
	for k, c := range cs {
		n[k], i[k] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(i, ",")
}

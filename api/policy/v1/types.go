package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Eviction asks the API server to evict a pod: POSTed to
// /api/v1/namespaces/{ns}/pods/{name}/eviction, it deletes the pod
// gracefully with DeleteOptions. In Kubernetes an eviction may be refused
// (429) to respect a PodDisruptionBudget; minik8s has no budgets, so an
// eviction is always a plain graceful delete.
type Eviction struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta names the pod being evicted (name and namespace).
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// DeleteOptions are the options of the pod's deletion (grace period,
	// preconditions, dry run).
	DeleteOptions *metav1.DeleteOptions `json:"deleteOptions,omitempty"`
}

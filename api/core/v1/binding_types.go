package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Binding assigns a pod to a node; it is POSTed to pods/{name}/binding and
// never stored itself.
type Binding struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Target is the node, as {kind: Node, name: <node>}.
	Target ObjectReference `json:"target"`
}

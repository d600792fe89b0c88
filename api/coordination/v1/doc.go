// Package v1 holds the coordination.k8s.io/v1 Lease type, used for node
// heartbeats and leader election, wire-compatible with Kubernetes.
// Declarations and scheme registration only.
//
// +k8s:deepcopy-gen=package
// +groupName=coordination.k8s.io
package v1

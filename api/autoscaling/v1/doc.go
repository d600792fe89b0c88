// Package v1 holds the autoscaling/v1 Scale type served by the scale
// subresource of Deployments and ReplicaSets, wire-compatible with
// Kubernetes. Declarations and scheme registration only.
//
// +k8s:deepcopy-gen=package
// +groupName=autoscaling
package v1

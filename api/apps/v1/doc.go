// Package v1 holds the apps/v1 workload types of minik8s: Deployment and
// ReplicaSet, wire-compatible with Kubernetes apps/v1. Pod templates are
// core/v1 PodTemplateSpec. Declarations and scheme registration only.
//
// +k8s:deepcopy-gen=package
// +groupName=apps
package v1

// Package v1 holds the core ("" group, version v1) object types of minik8s:
// Namespace, Pod, Service, Endpoints, ConfigMap, Secret, Node, Event and
// Binding. Field names, JSON tags and strategic-merge-patch tags match
// Kubernetes' core/v1 so that stock manifests, kubectl and client-go work
// unchanged. The package declares data (and a few accessors on it, such as
// PodStatus.SetCondition); defaulting lives in api/defaults,
// validation in api/validation, and registration with a Scheme in register.go.
//
// +k8s:deepcopy-gen=package
// +groupName=
package v1

// Package v1 holds the policy/v1 Eviction type, the body of a POST to the
// pods/eviction subresource (what `kubectl drain` and `ctl drain` send),
// wire-compatible with Kubernetes. minik8s has no PodDisruptionBudgets, so
// Eviction is the only type of this group and the group serves no
// resources of its own. Declarations and scheme registration only.
//
// +k8s:deepcopy-gen=package
// +groupName=policy
package v1

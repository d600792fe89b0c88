// Package openapi derives OpenAPI v3 schemas from the Go API types by
// reflection, so the documents the API server publishes can never drift
// from the structs it decodes into. Names follow Kubernetes' definition
// names (io.k8s.api.core.v1.PodSpec), and the Kubernetes extensions clients
// read are set: x-kubernetes-group-version-kind on top-level kinds,
// x-kubernetes-patch-strategy / x-kubernetes-patch-merge-key from the
// struct tags, x-kubernetes-int-or-string for IntOrString and Quantity.
//
// Go doc comments are not available at run time, so schemas carry no
// descriptions; `kubectl explain` shows fields and types.
package openapi

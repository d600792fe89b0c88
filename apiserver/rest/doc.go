// Package rest turns HTTP requests on Kubernetes REST paths into storage
// operations: get, list, watch, create, update, patch, delete and
// deletecollection on every resource of the registry, plus the status, scale,
// binding and finalize subresources.
//
// It is generic: what differs per kind comes from registry.Resource. It owns
// the request pipeline (parse path → decode body → default → prepare →
// admit → validate → store → encode) and Kubernetes' error format (every
// failure is a metav1.Status with the right code and reason). It does not
// know about TLS, authentication or discovery; package apiserver wires those
// around it.
package rest

// Package rest owns the HTTP conversation with the minik8s API server in
// Kubernetes' wire protocol: building request paths (/api/v1/...,
// /apis/<group>/<version>/...), query parameters and bodies, authenticating
// with a bearer token or client certificate over TLS, retrying requests the
// server asked us to retry, turning non-2xx answers into *apierrors.StatusError
// so callers can use apierrors.IsNotFound and friends, and decoding watch
// streams into a watch.Interface.
//
// It knows nothing about particular resources or Go types beyond what a
// runtime.Scheme tells it; typed clients (client/typed) sit on top. It must
// not cache, retry conflicts or interpret objects: that is the caller's job.
package rest

// Package registry describes every REST resource the API server serves: its
// group/version/kind, whether it is namespaced, its short names, which
// subresources it has, and its Strategy — the per-kind rules for create,
// update, status writes, validation, field selectors and table columns.
//
// The REST handlers (package rest) are generic; everything kind-specific that
// they need lives here. This package must not touch HTTP or etcd.
package registry

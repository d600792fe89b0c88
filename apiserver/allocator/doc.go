// Package allocator owns the Service ClusterIP and NodePort allocators.
//
// Each allocator is a bitmap over its range, stored in etcd under a single
// key (/registry/ranges/serviceips, /registry/ranges/servicenodeports) and
// changed only by compare-and-swap transactions on the key's ModRevision.
// etcd is therefore the only source of truth: several API server
// processes, and restarts, can never hand out the same value twice.
//
// As in Kubernetes, dynamic allocations prefer the upper part of the range
// so that values chosen explicitly by users (usually low ones) rarely
// collide with them, and the first service IP is kept for the "kubernetes"
// Service. Repair rebuilds a bitmap from the objects that really exist.
//
// The package does not read or write Services; callers pass values in.
package allocator

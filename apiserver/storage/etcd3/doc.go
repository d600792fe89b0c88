// Package etcd3 implements storage.Interface directly on etcd v3: one
// object per key, stored as the codec's JSON (optionally passed through a
// storage.Transformer), with resourceVersion = the key's ModRevision.
//
// It owns the mapping between etcd (revisions, transactions, watch events,
// compaction) and Kubernetes storage semantics (resourceVersion,
// optimistic concurrency, paging with continue tokens, watch event types,
// 410 Expired). It does not cache anything: apiserver/storage/cacher puts a
// watch cache in front of it. It must not know about HTTP or about any
// particular resource.
package etcd3

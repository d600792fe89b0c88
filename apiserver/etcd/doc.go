// Package etcd owns the apiserver's connection to etcd: starting an embedded
// single-member etcd (the default for a lab cluster and for tests),
// connecting to an external cluster, and compacting old revisions.
//
// It hands out a *clientv3.Client and nothing more; how objects are laid out
// under keys is the business of apiserver/storage/etcd3, and nothing outside
// the apiserver may import this package.
package etcd

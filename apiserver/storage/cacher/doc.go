// Package cacher is the watch cache: a storage.Interface that sits in front
// of the etcd3 store of one resource, keeps ONE etcd watch open for it and
// fans the events out to any number of API watchers.
//
// It owns the in-memory copy of the resource (current objects by key plus a
// ring buffer of recent events stamped with their revisions), serving
// watches and resourceVersion="0" lists from it. Writes, Get, exact and
// consistent lists, and watches older than its buffer go to the underlying
// store, so etcd stays the only source of truth; an update hands the store
// the cached object to start from, which the store's compare-and-swap
// checks, saving the read when the cache is current. Objects leave the
// cache only as deep copies.
package cacher

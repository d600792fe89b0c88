// Package controllers owns the machinery every minik8s controller shares:
// the worker loop that drains a workqueue of object keys into one
// reconcile function (Controller), what controllers know about pods
// (active, ready, available), ownership (controller references, adopting
// orphans and releasing objects that stop matching), and expectations that
// keep a controller from acting twice on a watch that has not caught up
// with its own writes.
//
// The controllers themselves live in subpackages (replicaset, deployment,
// endpoints, namespace, garbagecollector, nodelifecycle, nodeipam, podgc);
// manager wires
// them to shared informers behind leader election. Every controller is
// level-triggered: handlers only enqueue keys, and reconcile reads the
// informer cache, compares desired with actual state and writes through
// the API, so running it twice is harmless.
//
// Nothing here talks to etcd or keeps state that the API server does not
// also hold; a restarted controller rebuilds everything from a fresh list.
package controllers

// Package scheduler owns the minik8s scheduler: it watches pods that have
// no spec.nodeName and whose spec.schedulerName is its own, picks a node for
// each with a filter-and-score framework, and binds the pod through the
// pods/binding subresource. Pods that fit nowhere get the PodScheduled=False
// condition (reason Unschedulable) and a FailedScheduling event, and wait in
// the scheduling queue until a relevant cluster change.
//
// Layout:
//
//	framework/  plugin interfaces, Status, CycleState, NodeInfo/PodInfo, the
//	            plugin runner and the bounded parallelizer
//	plugins/    the filter, score and bind plugins (NodeResourcesFit, ...)
//	cache/      nodes and pods as the scheduler believes them (assumed pods
//	            included) and the per-cycle Snapshot
//	queue/      the scheduling queue: active, backoff and unschedulable pods
//	(this)      the scheduling loop, asynchronous binding, events, status
//	            updates, leader election, metrics and the debug endpoint
//
// The package talks only to the API server (informers and the typed
// client). It never touches etcd, never writes anything but pods/binding,
// pods/status (PodScheduled) and Events, and only the elected leader writes.
package scheduler

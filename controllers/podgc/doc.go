// Package podgc owns the pod garbage collector, Kubernetes' PodGC: it
// deletes the pods nobody else will ever finish off.
//
//   - Orphaned pods: a pod bound (spec.nodeName) to a Node that does not
//     exist has no kubelet to stop it or report on it. Once the controller
//     has seen it orphaned for a quarantine period (40s by default, so a
//     node informer that lags behind a freshly created Node does not cost
//     its pods) and a live GET confirms the Node is gone, the pod is marked
//     Failed with a DisruptionTarget condition (reason DeletionByPodGC) and
//     force-deleted (grace period 0).
//   - Terminating pods on a node that is not Ready and carries the
//     node.kubernetes.io/out-of-service taint: an operator's statement that
//     the node is down for good (Kubernetes' non-graceful node shutdown).
//     Their kubelet will never confirm the graceful deletion, so they are
//     marked Failed and force-deleted.
//   - Terminating pods that were never scheduled: no kubelet will ever
//     finish their deletion either.
//   - Terminated pods (phase Succeeded or Failed) beyond
//     --terminated-pod-gc-threshold (12500; 0 disables) are deleted, the
//     evicted ones first, then oldest first by creationTimestamp.
//
// The first three are decisions about one pod, so they are reconciled per
// pod key. The threshold is a decision over all pods, so it has a key of
// its own that any pod becoming terminal enqueues.
//
// The only state kept outside the API is when each orphaned pod was first
// seen, by the controller's own clock; a restarted controller starts the
// quarantine over, which only delays a deletion.
package podgc

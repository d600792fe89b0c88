// Package replicaset owns the ReplicaSet controller: for every ReplicaSet
// it keeps exactly spec.replicas active pods matching the selector —
// creating them from the template (owned by the ReplicaSet through a
// controller ownerReference), adopting matching orphans, releasing pods
// that stop matching and deleting extras (unscheduled, not-ready and
// newest first) — and reports replicas, fullyLabeledReplicas,
// readyReplicas, availableReplicas and observedGeneration in status.
//
// Expectations make it wait for its own creations and deletions to come
// back through the watch before counting again, so a slow watch never
// leads to double creation. It does not schedule, start or stop
// containers (scheduler and kubelet do) and never touches pods it does not
// control.
package replicaset

// Package manager owns the controller-manager: one process that runs every
// controller (deployment, replicaset, endpoints, namespace,
// garbagecollector, nodelifecycle, nodeipam, podgc) on one set of shared
// informers, behind Lease-based leader election so several replicas can
// run and only one acts. It also serves /healthz, /readyz and /metrics.
//
// Each leadership term builds fresh informers, queues and expectations and
// ends when leadership does (Run then returns, and the process should
// exit), so no state from a term in which this replica was not the only
// actor survives into the next. The package wires controllers together; it
// holds no controller logic.
package manager

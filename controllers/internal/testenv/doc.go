// Package testenv is the controllers' integration-test harness: a real API
// server on real embedded etcd, clients for it, a wait helper, and
// FakeKubelet, which plays the scheduler and kubelet (binding pods to
// nodes, reporting them Running and Ready, heartbeating node Leases and
// finishing graceful deletions) since neither exists yet. Tests only.
package testenv

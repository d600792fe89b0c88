// Package leaderelection owns Lease-based leader election: of several
// replicas of a component, one holds a coordination.k8s.io/v1 Lease (in
// kube-system by convention) and does the work; the others wait to take the
// Lease over when its holder stops renewing it.
//
// Correctness rests on the API server's optimistic concurrency: every
// acquire or renew is an update carrying the resourceVersion that was read,
// so two candidates can never both win the same round. Expiry is judged by
// the candidate's own clock from when it last saw the Lease change, so
// clock skew between machines does not matter.
//
// It must not do the leader's work: that is OnStartedLeading's, which is
// cancelled when leadership is lost.
package leaderelection

// Package framework defines how the scheduler's plugins plug in: the
// extension points (PreFilter, Filter, PreScore, Score with NormalizeScore
// and weights, Bind), the Status a plugin returns, the CycleState shared by
// the plugins during one scheduling attempt, and the NodeInfo/PodInfo views
// of the cluster that plugins read. Framework runs the plugins in order and
// evaluates nodes in parallel with a bounded number of goroutines.
//
// The package has no knowledge of the API server, the queue or the cache;
// the plugins themselves live in scheduler/plugins.
package framework

package framework

import (
	"context"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// MaxNodeScore is the top of the range every Score plugin's normalised
// scores must fall in: [0, MaxNodeScore]. Weights multiply afterwards.
const MaxNodeScore int64 = 100

// Plugin is anything with a name; it implements one or more of the
// extension-point interfaces below.
type Plugin interface {
	Name() string
}

// PreFilterResult narrows the nodes worth filtering; nil means all nodes.
type PreFilterResult struct {
	// NodeNames, if non-nil, are the only nodes that can possibly fit.
	NodeNames map[string]struct{}
}

// PreFilterPlugin runs once per scheduling attempt, before any node is
// filtered: it precomputes what its Filter needs (into the CycleState) or
// rejects the pod outright. Returning Skip turns off the same plugin's
// Filter for this pod.
type PreFilterPlugin interface {
	Plugin
	PreFilter(ctx context.Context, state *CycleState, pod *PodInfo) (*PreFilterResult, *Status)
}

// FilterPlugin decides whether the pod can run on one node. It is called
// concurrently for different nodes: it may only read the CycleState.
// Return nil for "fits".
type FilterPlugin interface {
	Plugin
	Filter(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) *Status
}

// PreScorePlugin runs once before scoring, with the nodes that passed the
// filters. Returning Skip turns off the same plugin's Score for this pod.
type PreScorePlugin interface {
	Plugin
	PreScore(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) *Status
}

// ScorePlugin ranks one feasible node. It is called concurrently for
// different nodes. Without a ScoreNormalizer its scores must already lie in
// [0, MaxNodeScore].
type ScorePlugin interface {
	Plugin
	Score(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) (int64, *Status)
}

// ScoreNormalizer is implemented by ScorePlugins whose raw scores need
// rescaling into [0, MaxNodeScore] once all nodes are scored; scores[i]
// belongs to nodes[i] of the PreScore call.
type ScoreNormalizer interface {
	NormalizeScore(ctx context.Context, state *CycleState, pod *PodInfo, scores []int64) *Status
}

// BindPlugin writes the decision. The first bind plugin that does not
// return Skip handles the pod.
type BindPlugin interface {
	Plugin
	Bind(ctx context.Context, state *CycleState, pod *corev1.Pod, nodeName string) *Status
}

// StateKey names a piece of CycleState; use the plugin's name.
type StateKey string

// CycleState carries data between the extension points of one scheduling
// attempt. Writes happen only in PreFilter and PreScore, which run one
// plugin at a time; Filter and Score, which run in parallel, only read. So
// it needs no lock.
type CycleState struct {
	// Snapshot is the cluster as of the start of this attempt.
	Snapshot NodeInfoLister

	data map[StateKey]any
	// skipFilter/skipScore are bitmasks over the framework's plugin
	// indices, set by PreFilter/PreScore returning Skip.
	skipFilter, skipScore uint64
}

// NewCycleState returns an empty state over snapshot.
func NewCycleState(snapshot NodeInfoLister) *CycleState {
	return &CycleState{Snapshot: snapshot}
}

// Write stores v under key (PreFilter and PreScore only).
func (c *CycleState) Write(key StateKey, v any) {
	if c.data == nil {
		c.data = make(map[StateKey]any, 4)
	}
	c.data[key] = v
}

// Read returns what was stored under key, or nil.
func (c *CycleState) Read(key StateKey) any {
	return c.data[key]
}

// ReadAs returns the value under key as T; ok is false when absent or of
// another type.
func ReadAs[T any](c *CycleState, key StateKey) (v T, ok bool) {
	v, ok = c.data[key].(T)
	return v, ok
}

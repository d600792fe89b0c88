package framework

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// Config lists the plugins of a Framework. Each plugin is registered at
// every extension point it implements, in the order given.
type Config struct {
	Plugins []Plugin
	// Weights multiply each Score plugin's normalised scores. A plugin
	// missing here has weight 1; weight 0 turns its scoring off.
	Weights map[string]int64
	// Parallelism bounds the goroutines evaluating nodes; <= 0 means
	// GOMAXPROCS.
	Parallelism int
}

// maxPlugins is the bound that lets skip sets be bitmasks.
const maxPlugins = 64

type scorePlugin struct {
	ScorePlugin
	idx        int
	weight     int64
	normalizer ScoreNormalizer
}

type indexed[P Plugin] struct {
	p   P
	idx int
}

// Framework runs the plugins of one scheduler profile.
type Framework struct {
	preFilter []indexed[PreFilterPlugin]
	filter    []indexed[FilterPlugin]
	preScore  []indexed[PreScorePlugin]
	score     []scorePlugin
	bind      []BindPlugin
	names     []string
	par       Parallelizer

	interest   map[ClusterEvent]map[string]bool
	undeclared map[string]bool
}

// New builds a Framework from cfg.
func New(cfg Config) (*Framework, error) {
	if len(cfg.Plugins) > maxPlugins {
		return nil, fmt.Errorf("framework: %d plugins; at most %d", len(cfg.Plugins), maxPlugins)
	}
	f := &Framework{par: NewParallelizer(cfg.Parallelism)}
	seen := map[string]bool{}
	for i, p := range cfg.Plugins {
		name := p.Name()
		if seen[name] {
			return nil, fmt.Errorf("framework: plugin %q listed twice", name)
		}
		seen[name] = true
		f.names = append(f.names, name)
		registered := false
		if pf, ok := p.(PreFilterPlugin); ok {
			f.preFilter = append(f.preFilter, indexed[PreFilterPlugin]{pf, i})
			registered = true
		}
		if fp, ok := p.(FilterPlugin); ok {
			f.filter = append(f.filter, indexed[FilterPlugin]{fp, i})
			registered = true
		}
		if ps, ok := p.(PreScorePlugin); ok {
			f.preScore = append(f.preScore, indexed[PreScorePlugin]{ps, i})
			registered = true
		}
		if sp, ok := p.(ScorePlugin); ok {
			w, set := cfg.Weights[name]
			if !set {
				w = 1
			}
			if w < 0 {
				return nil, fmt.Errorf("framework: plugin %q: negative weight %d", name, w)
			}
			if w > 0 {
				norm, _ := p.(ScoreNormalizer)
				f.score = append(f.score, scorePlugin{ScorePlugin: sp, idx: i, weight: w, normalizer: norm})
			}
			registered = true
		}
		if bp, ok := p.(BindPlugin); ok {
			f.bind = append(f.bind, bp)
			registered = true
		}
		if !registered {
			return nil, fmt.Errorf("framework: plugin %q implements no extension point", name)
		}
	}
	for name := range cfg.Weights {
		if !seen[name] {
			return nil, fmt.Errorf("framework: weight for unknown plugin %q", name)
		}
	}
	if len(f.bind) == 0 {
		return nil, errors.New("framework: no Bind plugin")
	}
	f.buildInterest(cfg.Plugins)
	return f, nil
}

// Parallelizer is the bounded worker pool nodes are evaluated on.
func (f *Framework) Parallelizer() Parallelizer { return f.par }

// HasScorePlugins reports whether any Score plugin is enabled.
func (f *Framework) HasScorePlugins() bool { return len(f.score) > 0 }

// FilterPluginNames lists the Filter plugins in the order they run.
func (f *Framework) FilterPluginNames() []string {
	out := make([]string, len(f.filter))
	for i, p := range f.filter {
		out[i] = p.p.Name()
	}
	return out
}

// RunPreFilterPlugins runs every PreFilter plugin. A rejection or error
// stops the run and is returned with the plugin recorded. The results of
// plugins that narrow the node set are intersected.
func (f *Framework) RunPreFilterPlugins(ctx context.Context, state *CycleState, pod *PodInfo) (*PreFilterResult, *Status) {
	var result *PreFilterResult
	for _, pf := range f.preFilter {
		r, st := pf.p.PreFilter(ctx, state, pod)
		switch {
		case st.IsSkip():
			state.skipFilter |= 1 << pf.idx
			continue
		case !st.IsSuccess():
			if st.Plugin() == "" {
				st = withPlugin(st, pf.p.Name())
			}
			return nil, st
		}
		result = mergePreFilterResults(result, r)
	}
	return result, nil
}

func mergePreFilterResults(a, b *PreFilterResult) *PreFilterResult {
	if b == nil || b.NodeNames == nil {
		return a
	}
	if a == nil || a.NodeNames == nil {
		return b
	}
	out := map[string]struct{}{}
	for n := range a.NodeNames {
		if _, ok := b.NodeNames[n]; ok {
			out[n] = struct{}{}
		}
	}
	return &PreFilterResult{NodeNames: out}
}

// withPlugin returns a copy of st naming plugin, so a status shared by a
// plugin is never mutated.
func withPlugin(st *Status, plugin string) *Status {
	cp := *st
	cp.plugin = plugin
	return &cp
}

// RunFilterPlugins checks one node; the first plugin that does not pass
// decides. It is safe to call concurrently for different nodes.
func (f *Framework) RunFilterPlugins(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) *Status {
	for _, fp := range f.filter {
		if state.skipFilter&(1<<fp.idx) != 0 {
			continue
		}
		if st := fp.p.Filter(ctx, state, pod, node); !st.IsSuccess() {
			if st.Plugin() == "" {
				st = withPlugin(st, fp.p.Name())
			}
			return st
		}
	}
	return nil
}

// RunPreScorePlugins runs every PreScore plugin with the feasible nodes.
func (f *Framework) RunPreScorePlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) *Status {
	for _, ps := range f.preScore {
		st := ps.p.PreScore(ctx, state, pod, nodes)
		switch {
		case st.IsSkip():
			state.skipScore |= 1 << ps.idx
		case !st.IsSuccess():
			if st.Plugin() == "" {
				st = withPlugin(st, ps.p.Name())
			}
			return st
		}
	}
	return nil
}

// PluginScores are one Score plugin's normalised scores, aligned with the
// nodes that were scored.
type PluginScores struct {
	Plugin string
	Weight int64
	Scores []int64
}

// RunScorePlugins scores nodes with every enabled Score plugin (nodes in
// parallel), normalises, and returns each plugin's scores and the weighted
// totals per node.
func (f *Framework) RunScorePlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) ([]PluginScores, []int64, *Status) {
	active := make([]*scorePlugin, 0, len(f.score))
	for i := range f.score {
		if state.skipScore&(1<<f.score[i].idx) == 0 {
			active = append(active, &f.score[i])
		}
	}
	out := make([]PluginScores, len(active))
	for j, sp := range active {
		out[j] = PluginScores{Plugin: sp.Name(), Weight: sp.weight, Scores: make([]int64, len(nodes))}
	}
	var errOnce sync.Once
	var firstErr *Status
	f.par.Until(ctx, len(nodes), func(i int) bool {
		for j, sp := range active {
			s, st := sp.Score(ctx, state, pod, nodes[i])
			if !st.IsSuccess() {
				errOnce.Do(func() { firstErr = withPlugin(st, sp.Name()) })
				return false
			}
			out[j].Scores[i] = s
		}
		return true
	})
	if firstErr != nil {
		return nil, nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, AsStatus(fmt.Errorf("scoring: %w", err))
	}
	totals := make([]int64, len(nodes))
	for j, sp := range active {
		if sp.normalizer != nil {
			if st := sp.normalizer.NormalizeScore(ctx, state, pod, out[j].Scores); !st.IsSuccess() {
				return nil, nil, withPlugin(st, sp.Name())
			}
		}
		for i, s := range out[j].Scores {
			if s < 0 || s > MaxNodeScore {
				return nil, nil, AsStatus(fmt.Errorf("plugin %s scored node %s %d, outside [0, %d]",
					sp.Name(), nodes[i].Node().Name, s, MaxNodeScore)).WithPlugin(sp.Name())
			}
			totals[i] += s * sp.weight
		}
	}
	return out, totals, nil
}

// RunBindPlugins binds pod to nodeName with the first bind plugin that
// takes it.
func (f *Framework) RunBindPlugins(ctx context.Context, state *CycleState, pod *corev1.Pod, nodeName string) *Status {
	for _, bp := range f.bind {
		st := bp.Bind(ctx, state, pod, nodeName)
		if st.IsSkip() {
			continue
		}
		if !st.IsSuccess() && st.Plugin() == "" {
			st = withPlugin(st, bp.Name())
		}
		return st
	}
	return NewStatus(Error, fmt.Sprintf("no bind plugin took pod %s/%s", pod.Namespace, pod.Name))
}

// DefaultNormalizeScore rescales scores in place so that the highest
// becomes MaxNodeScore (all stay 0 if all are 0). With reverse, a high raw
// score means a bad node: the highest raw score becomes 0, and when all
// are 0 every node gets MaxNodeScore.
func DefaultNormalizeScore(reverse bool, scores []int64) {
	var top int64
	for _, s := range scores {
		top = max(top, s)
	}
	if top == 0 {
		if reverse {
			for i := range scores {
				scores[i] = MaxNodeScore
			}
		}
		return
	}
	for i, s := range scores {
		s = s * MaxNodeScore / top
		if reverse {
			s = MaxNodeScore - s
		}
		scores[i] = s
	}
}

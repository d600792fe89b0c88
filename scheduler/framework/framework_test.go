package framework_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/scheduler/cache"
	"github.com/minik8s/minik8s/scheduler/framework"
	st "github.com/minik8s/minik8s/scheduler/internal/schedtest"
)

func TestParallelizerCallsEveryPieceOnce(t *testing.T) {
	for _, workers := range []int{1, 2, 4, 16} {
		for _, pieces := range []int{0, 1, 31, 32, 33, 1000} {
			seen := make([]atomic.Int32, pieces)
			framework.NewParallelizer(workers).Until(context.Background(), pieces, func(i int) bool {
				seen[i].Add(1)
				return true
			})
			for i := range seen {
				if n := seen[i].Load(); n != 1 {
					t.Fatalf("workers=%d pieces=%d: piece %d called %d times", workers, pieces, i, n)
				}
			}
		}
	}
}

func TestParallelizerStopsEarly(t *testing.T) {
	for _, workers := range []int{1, 4} {
		var calls atomic.Int32
		framework.NewParallelizer(workers).Until(context.Background(), 10000, func(i int) bool {
			return calls.Add(1) < 100
		})
		// Workers finish the chunk they are in, so a few more than 100
		// calls are fine; running all 10000 is not.
		if n := calls.Load(); n < 100 || n > 2000 {
			t.Errorf("workers=%d: %d calls after asking to stop at 100", workers, n)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var calls atomic.Int32
	framework.NewParallelizer(4).Until(ctx, 10000, func(int) bool { calls.Add(1); return true })
	if n := calls.Load(); n > 2000 {
		t.Errorf("cancelled context: %d calls", n)
	}
}

// fakePlugin implements every extension point with scripted answers.
type fakePlugin struct {
	name          string
	preFilter     *framework.Status
	preFilterRes  *framework.PreFilterResult
	filterFail    map[string]*framework.Status // by node
	preScore      *framework.Status
	score         map[string]int64
	normalizeTo   int64 // if > 0, NormalizeScore multiplies by it
	bind          *framework.Status
	mu            sync.Mutex
	filterCalls   []string
	bindCalls     []string
	events        []framework.ClusterEvent
	declareEvents bool
}

func (p *fakePlugin) Name() string { return p.name }
func (p *fakePlugin) PreFilter(context.Context, *framework.CycleState, *framework.PodInfo) (*framework.PreFilterResult, *framework.Status) {
	return p.preFilterRes, p.preFilter
}
func (p *fakePlugin) Filter(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	p.mu.Lock()
	p.filterCalls = append(p.filterCalls, ni.Node().Name)
	p.mu.Unlock()
	return p.filterFail[ni.Node().Name]
}
func (p *fakePlugin) PreScore(context.Context, *framework.CycleState, *framework.PodInfo, []*framework.NodeInfo) *framework.Status {
	return p.preScore
}
func (p *fakePlugin) Score(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	return p.score[ni.Node().Name], nil
}
func (p *fakePlugin) Bind(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, node string) *framework.Status {
	p.mu.Lock()
	p.bindCalls = append(p.bindCalls, pod.Name+"->"+node)
	p.mu.Unlock()
	return p.bind
}

type normalizingPlugin struct{ *fakePlugin }

func (p normalizingPlugin) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores []int64) *framework.Status {
	for i := range scores {
		scores[i] *= p.normalizeTo
	}
	return nil
}

type declaringPlugin struct{ *fakePlugin }

func (p declaringPlugin) EventsToRegister() []framework.ClusterEvent { return p.events }

func snapshot(names ...string) *cache.Snapshot {
	var nodes []*corev1.Node
	for _, n := range names {
		nodes = append(nodes, st.Node(n, "1", "1Gi", 10))
	}
	return cache.NewSnapshot(nodes, nil)
}

func TestFrameworkFilterRunsInOrderAndHonoursSkip(t *testing.T) {
	reject := framework.NewStatus(framework.Unschedulable, "nope")
	a := &fakePlugin{name: "A", preFilter: framework.NewStatus(framework.Skip)}
	b := &fakePlugin{name: "B", filterFail: map[string]*framework.Status{"n1": reject}}
	c := &fakePlugin{name: "C", filterFail: map[string]*framework.Status{"n1": framework.NewStatus(framework.Unschedulable, "c")}}
	f, err := framework.New(framework.Config{Plugins: []framework.Plugin{a, b, c}})
	if err != nil {
		t.Fatal(err)
	}
	snap := snapshot("n1", "n2")
	state := framework.NewCycleState(snap)
	pi := framework.NewPodInfo(st.Pod("ns", "p"))
	if _, s := f.RunPreFilterPlugins(context.Background(), state, pi); !s.IsSuccess() {
		t.Fatal(s.AsError())
	}
	n1, _ := snap.Get("n1")
	n2, _ := snap.Get("n2")
	s := f.RunFilterPlugins(context.Background(), state, pi, n1)
	if s.Code() != framework.Unschedulable || s.Plugin() != "B" || s.Message() != "nope" {
		t.Errorf("n1: got %v from %q, want B's rejection", s.AsError(), s.Plugin())
	}
	if reject.Plugin() != "" {
		t.Errorf("the plugin's shared status was modified: plugin %q", reject.Plugin())
	}
	if s := f.RunFilterPlugins(context.Background(), state, pi, n2); !s.IsSuccess() {
		t.Errorf("n2: %v", s.AsError())
	}
	if len(a.filterCalls) != 0 {
		t.Errorf("A's Filter ran %v after its PreFilter skipped", a.filterCalls)
	}
	if !slices.Equal(c.filterCalls, []string{"n2"}) {
		t.Errorf("C filtered %v; want only n2 (B rejected n1 first)", c.filterCalls)
	}
}

func TestFrameworkPreFilterRejectsAndNarrows(t *testing.T) {
	a := &fakePlugin{name: "A", preFilterRes: &framework.PreFilterResult{NodeNames: map[string]struct{}{"x": {}, "y": {}}}}
	b := &fakePlugin{name: "B", preFilterRes: &framework.PreFilterResult{NodeNames: map[string]struct{}{"y": {}, "z": {}}}}
	f, err := framework.New(framework.Config{Plugins: []framework.Plugin{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	res, s := f.RunPreFilterPlugins(context.Background(), framework.NewCycleState(snapshot()), framework.NewPodInfo(st.Pod("ns", "p")))
	if !s.IsSuccess() || res == nil || len(res.NodeNames) != 1 {
		t.Fatalf("got %+v, %v; want only y", res, s)
	}
	if _, ok := res.NodeNames["y"]; !ok {
		t.Fatalf("got %v, want y", res.NodeNames)
	}
	b.preFilter = framework.NewStatus(framework.UnschedulableAndUnresolvable, "bad pod")
	_, s = f.RunPreFilterPlugins(context.Background(), framework.NewCycleState(snapshot()), framework.NewPodInfo(st.Pod("ns", "p")))
	if s.Code() != framework.UnschedulableAndUnresolvable || s.Plugin() != "B" {
		t.Fatalf("got %v from %q, want B's rejection", s.AsError(), s.Plugin())
	}
}

func TestFrameworkScoresWeightAndNormalize(t *testing.T) {
	a := &fakePlugin{name: "A", score: map[string]int64{"n1": 10, "n2": 50}}
	b := normalizingPlugin{&fakePlugin{name: "B", score: map[string]int64{"n1": 5, "n2": 1}, normalizeTo: 10}}
	off := &fakePlugin{name: "Off", score: map[string]int64{"n1": 100}}
	skipped := &fakePlugin{name: "Skipped", score: map[string]int64{"n1": 100}, preScore: framework.NewStatus(framework.Skip)}
	f, err := framework.New(framework.Config{
		Plugins: []framework.Plugin{a, b, off, skipped},
		Weights: map[string]int64{"A": 2, "B": 3, "Off": 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	snap := snapshot("n1", "n2")
	state := framework.NewCycleState(snap)
	pi := framework.NewPodInfo(st.Pod("ns", "p"))
	if s := f.RunPreScorePlugins(context.Background(), state, pi, snap.List()); !s.IsSuccess() {
		t.Fatal(s.AsError())
	}
	per, totals, s := f.RunScorePlugins(context.Background(), state, pi, snap.List())
	if !s.IsSuccess() {
		t.Fatal(s.AsError())
	}
	// n1: 2*10 + 3*50 = 170; n2: 2*50 + 3*10 = 130.
	if !slices.Equal(totals, []int64{170, 130}) {
		t.Errorf("totals = %v, want [170 130]", totals)
	}
	var names []string
	for _, p := range per {
		names = append(names, p.Plugin)
	}
	if !slices.Equal(names, []string{"A", "B"}) {
		t.Errorf("scored by %v, want A and B only", names)
	}

	// A normalised score above 100 is an error naming the plugin.
	b.normalizeTo = 30
	_, _, s = f.RunScorePlugins(context.Background(), state, pi, snap.List())
	if s.Code() != framework.Error || s.Plugin() != "B" || !strings.Contains(s.Message(), "outside [0, 100]") {
		t.Errorf("got %v from %q, want B's out-of-range error", s.AsError(), s.Plugin())
	}
}

func TestFrameworkBind(t *testing.T) {
	skip := &fakePlugin{name: "Skipper", bind: framework.NewStatus(framework.Skip)}
	fail := &fakePlugin{name: "Binder", bind: framework.AsStatus(errors.New("boom"))}
	f, err := framework.New(framework.Config{Plugins: []framework.Plugin{skip, fail}})
	if err != nil {
		t.Fatal(err)
	}
	s := f.RunBindPlugins(context.Background(), nil, st.Pod("ns", "p"), "n1")
	if s.Code() != framework.Error || s.Plugin() != "Binder" {
		t.Fatalf("got %v from %q", s.AsError(), s.Plugin())
	}
	if !slices.Equal(fail.bindCalls, []string{"p->n1"}) || !slices.Equal(skip.bindCalls, []string{"p->n1"}) {
		t.Errorf("bind calls: skipper %v, binder %v", skip.bindCalls, fail.bindCalls)
	}
}

type nameOnly string

func (n nameOnly) Name() string { return string(n) }

func TestFrameworkConfigErrors(t *testing.T) {
	binder := &fakePlugin{name: "Binder"}
	cases := map[string]framework.Config{
		"duplicate":      {Plugins: []framework.Plugin{binder, binder}},
		"unknown weight": {Plugins: []framework.Plugin{binder}, Weights: map[string]int64{"Nope": 1}},
		"negative":       {Plugins: []framework.Plugin{binder}, Weights: map[string]int64{"Binder": -1}},
		"no binder":      {Plugins: []framework.Plugin{filterOnly{}}},
		"no extension":   {Plugins: []framework.Plugin{binder, nameOnly("Nothing")}},
	}
	for name, cfg := range cases {
		if _, err := framework.New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

type filterOnly struct{}

func (filterOnly) Name() string { return "FilterOnly" }
func (filterOnly) Filter(context.Context, *framework.CycleState, *framework.PodInfo, *framework.NodeInfo) *framework.Status {
	return nil
}

func TestFrameworkIsInterested(t *testing.T) {
	fit := declaringPlugin{&fakePlugin{name: "Fit", events: []framework.ClusterEvent{framework.AssignedPodDelete}}}
	labels := declaringPlugin{&fakePlugin{name: "Labels", events: []framework.ClusterEvent{framework.NodeLabelChange}}}
	legacy := &fakePlugin{name: "Legacy"} // declares nothing: every event matters
	f, err := framework.New(framework.Config{Plugins: []framework.Plugin{fit, labels, legacy}})
	if err != nil {
		t.Fatal(err)
	}
	set := func(names ...string) map[string]struct{} {
		m := map[string]struct{}{}
		for _, n := range names {
			m[n] = struct{}{}
		}
		return m
	}
	cases := []struct {
		ev   framework.ClusterEvent
		by   map[string]struct{}
		want bool
	}{
		{framework.AssignedPodDelete, set("Fit"), true},
		{framework.NodeLabelChange, set("Fit"), false},
		{framework.NodeLabelChange, set("Fit", "Labels"), true},
		{framework.NodeTaintChange, set("Labels"), false},
		{framework.NodeTaintChange, set("Legacy"), true},
		{framework.NodeAdd, set("Labels"), true},
		{framework.UnschedulableTimeout, set("Fit"), true},
		{framework.NodeTaintChange, set(), true},
	}
	for _, tc := range cases {
		if got := f.IsInterested(tc.ev, tc.by); got != tc.want {
			t.Errorf("IsInterested(%s, %v) = %v, want %v", tc.ev, tc.by, got, tc.want)
		}
	}
}

func TestStatus(t *testing.T) {
	var nilStatus *framework.Status
	if !nilStatus.IsSuccess() || nilStatus.AsError() != nil || nilStatus.Code() != framework.Success {
		t.Error("nil status is not success")
	}
	base := errors.New("base")
	s := framework.AsStatus(base).WithPlugin("P")
	if !errors.Is(s.AsError(), base) || !strings.Contains(s.AsError().Error(), "P") {
		t.Errorf("AsError = %v; want it to wrap base and name the plugin", s.AsError())
	}
	r := framework.NewStatus(framework.Unschedulable, "a", "b")
	if !r.IsRejected() || r.Message() != "a, b" {
		t.Errorf("rejected status: %v %q", r.IsRejected(), r.Message())
	}
}

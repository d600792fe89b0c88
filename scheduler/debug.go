package scheduler

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik8s/minik8s/scheduler/framework"
)

// attemptRecord is what the last scheduling attempt of a pending pod found
// on every node. It keeps the slices the attempt produced anyway and builds
// JSON only when asked, so recording costs the hot path almost nothing.
type attemptRecord struct {
	UID             types.UID
	Namespace, Name string
	Attempt         int
	Time            time.Time
	Result          string
	Message         string
	SelectedNode    string

	NumAllNodes, NumEvaluated, NumFeasible int

	PreFilter *framework.Status
	// NodeNames[i] goes with Statuses[i]; FeasibleIdx[j] is the index in
	// NodeNames of the j-th feasible node, whose scores are Scores[*][j]
	// and Totals[j].
	NodeNames   []string
	Statuses    []*framework.Status
	FeasibleIdx []int32
	Scores      []framework.PluginScores
	Totals      []int64
}

// recordStore keeps the last attempt of each pending pod.
type recordStore struct {
	mu    sync.Mutex
	byUID map[types.UID]*attemptRecord
	byKey map[string]types.UID
}

func newRecordStore() *recordStore {
	return &recordStore{byUID: map[types.UID]*attemptRecord{}, byKey: map[string]types.UID{}}
}

func (r *recordStore) put(rec *attemptRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byUID[rec.UID] = rec
	r.byKey[rec.Namespace+"/"+rec.Name] = rec.UID
}

func (r *recordStore) delete(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.byUID[uid]
	if !ok {
		return
	}
	delete(r.byUID, uid)
	key := rec.Namespace + "/" + rec.Name
	if r.byKey[key] == uid {
		delete(r.byKey, key)
	}
}

func (r *recordStore) get(ns, name string) *attemptRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	uid, ok := r.byKey[ns+"/"+name]
	if !ok {
		return nil
	}
	return r.byUID[uid]
}

func (r *recordStore) list() []*attemptRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*attemptRecord, 0, len(r.byUID))
	for _, rec := range r.byUID {
		out = append(out, rec)
	}
	return out
}

// PodDiagnosis is the JSON served at /debug/pods/{namespace}/{name}.
type PodDiagnosis struct {
	Pod          string    `json:"pod"`
	UID          types.UID `json:"uid"`
	Queue        string    `json:"queue"`
	Attempt      int       `json:"attempt"`
	Time         time.Time `json:"time"`
	Result       string    `json:"result"`
	Message      string    `json:"message,omitempty"`
	SelectedNode string    `json:"selectedNode,omitempty"`
	NumAllNodes  int       `json:"numAllNodes"`
	// NumEvaluated nodes were filtered; the rest were not looked at
	// because enough feasible nodes had been found.
	NumEvaluated int    `json:"numEvaluated"`
	NumFeasible  int    `json:"numFeasible"`
	PreFilter    string `json:"preFilter,omitempty"`
	// Nodes: the selected node first, then feasible nodes by total score,
	// then rejected nodes by name.
	Nodes []NodeDiagnosis `json:"nodes,omitempty"`
}

// NodeDiagnosis is one node's filter result and scores.
type NodeDiagnosis struct {
	Node string `json:"node"`
	// Filter is "passed", or the rejection's code.
	Filter  string                 `json:"filter"`
	Plugin  string                 `json:"plugin,omitempty"`
	Reasons []string               `json:"reasons,omitempty"`
	Scores  map[string]PluginScore `json:"scores,omitempty"`
	Total   *int64                 `json:"totalScore,omitempty"`
}

// PluginScore is one plugin's normalised score and weight for a node.
type PluginScore struct {
	Score  int64 `json:"score"`
	Weight int64 `json:"weight"`
}

func (rec *attemptRecord) diagnosis(queue string) PodDiagnosis {
	d := PodDiagnosis{
		Pod: rec.Namespace + "/" + rec.Name, UID: rec.UID, Queue: queue, Attempt: rec.Attempt, Time: rec.Time,
		Result: rec.Result, Message: rec.Message, SelectedNode: rec.SelectedNode,
		NumAllNodes: rec.NumAllNodes, NumEvaluated: rec.NumEvaluated, NumFeasible: rec.NumFeasible,
	}
	if rec.PreFilter != nil {
		d.PreFilter = rec.PreFilter.Plugin() + ": " + rec.PreFilter.Message()
	}
	var feasible, rejected []NodeDiagnosis
	for j, idx := range rec.FeasibleIdx {
		if int(idx) >= len(rec.NodeNames) {
			continue
		}
		nd := NodeDiagnosis{Node: rec.NodeNames[idx], Filter: "passed"}
		if j < len(rec.Totals) {
			t := rec.Totals[j]
			nd.Total = &t
			nd.Scores = map[string]PluginScore{}
			for _, ps := range rec.Scores {
				nd.Scores[ps.Plugin] = PluginScore{Score: ps.Scores[j], Weight: ps.Weight}
			}
		}
		feasible = append(feasible, nd)
	}
	for i, st := range rec.Statuses {
		if st == nil || i >= len(rec.NodeNames) {
			continue
		}
		rejected = append(rejected, NodeDiagnosis{Node: rec.NodeNames[i], Filter: st.Code().String(), Plugin: st.Plugin(), Reasons: st.Reasons()})
	}
	slices.SortStableFunc(feasible, func(a, b NodeDiagnosis) int {
		if (a.Node == rec.SelectedNode) != (b.Node == rec.SelectedNode) {
			if a.Node == rec.SelectedNode {
				return -1
			}
			return 1
		}
		var ta, tb int64
		if a.Total != nil {
			ta = *a.Total
		}
		if b.Total != nil {
			tb = *b.Total
		}
		if ta != tb {
			if ta > tb {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Node, b.Node)
	})
	slices.SortFunc(rejected, func(a, b NodeDiagnosis) int { return strings.Compare(a.Node, b.Node) })
	d.Nodes = append(feasible, rejected...)
	return d
}

// PendingPod is one entry of /debug/pods.
type PendingPod struct {
	Pod      string `json:"pod"`
	Queue    string `json:"queue"`
	Attempts int    `json:"attempts"`
	Result   string `json:"lastResult,omitempty"`
	Message  string `json:"message,omitempty"`
}

// Handler serves /healthz, /readyz, /metrics and the debug endpoints:
//
//	/debug/pods                   pending pods with their last result
//	/debug/pods/{namespace}/{name} the last attempt's per-node filter
//	                              results and scores for a pending pod
func (s *Scheduler) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.synced.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("caches not synced"))
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /debug/pods", func(w http.ResponseWriter, _ *http.Request) {
		out := []PendingPod{} // [] rather than null when nothing is pending
		seen := map[types.UID]bool{}
		for _, pod := range s.queue.PendingPods() {
			loc, attempts := s.queue.Where(pod.UID)
			pp := PendingPod{Pod: podKey(pod), Queue: string(loc), Attempts: attempts}
			if rec := s.records.get(pod.Namespace, pod.Name); rec != nil && rec.UID == pod.UID {
				pp.Result, pp.Message = rec.Result, rec.Message
			}
			seen[pod.UID] = true
			out = append(out, pp)
		}
		for _, rec := range s.records.list() {
			if seen[rec.UID] {
				continue
			}
			loc, _ := s.queue.Where(rec.UID)
			out = append(out, PendingPod{Pod: rec.Namespace + "/" + rec.Name, Queue: string(loc), Attempts: rec.Attempt, Result: rec.Result, Message: rec.Message})
		}
		slices.SortFunc(out, func(a, b PendingPod) int { return strings.Compare(a.Pod, b.Pod) })
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /debug/pods/{namespace}/{name}", func(w http.ResponseWriter, r *http.Request) {
		rec := s.records.get(r.PathValue("namespace"), r.PathValue("name"))
		if rec == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{
				"error": "no scheduling attempt recorded for pending pod " + r.PathValue("namespace") + "/" + r.PathValue("name") +
					" (it is bound, unknown, or not yet tried)",
			})
			return
		}
		loc, _ := s.queue.Where(rec.UID)
		if loc == "" {
			loc = "binding"
		}
		writeJSON(w, http.StatusOK, rec.diagnosis(string(loc)))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

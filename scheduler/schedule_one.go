package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/scheduler/framework"
	"github.com/minik8s/minik8s/scheduler/queue"
)

// FitError says no node can take the pod, in Kubernetes' words.
type FitError struct {
	Pod         *corev1.Pod
	NumAllNodes int
	// PreFilter is set when a PreFilter plugin rejected the pod outright.
	PreFilter *framework.Status
	// Statuses are the rejections of the nodes that were checked.
	Statuses []*framework.Status
}

// Error is "0/3 nodes are available: 1 node(s) had untolerated taint
// {key: value}, 2 Insufficient cpu." — a histogram of the reasons,
// sorted as Kubernetes sorts them (as strings).
func (e *FitError) Error() string {
	if e.NumAllNodes == 0 && e.PreFilter == nil {
		return "no nodes available to schedule pods"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d nodes are available:", e.NumAllNodes)
	if e.PreFilter != nil {
		b.WriteString(" " + e.PreFilter.Message() + ".")
		return b.String()
	}
	hist := map[string]int{}
	for _, st := range e.Statuses {
		for _, r := range st.Reasons() {
			hist[r]++
		}
	}
	parts := make([]string, 0, len(hist))
	for r, n := range hist {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	slices.Sort(parts)
	if len(parts) > 0 {
		b.WriteString(" " + strings.Join(parts, ", "))
	}
	b.WriteString(".")
	return b.String()
}

// UnschedulablePlugins are the plugins that rejected the pod somewhere.
func (e *FitError) UnschedulablePlugins() map[string]struct{} {
	out := map[string]struct{}{}
	if e.PreFilter != nil {
		out[e.PreFilter.Plugin()] = struct{}{}
	}
	for _, st := range e.Statuses {
		if st != nil {
			out[st.Plugin()] = struct{}{}
		}
	}
	return out
}

// scheduleResult is the outcome of one scheduling attempt.
type scheduleResult struct {
	node      string
	evaluated int
	feasible  int
}

// scheduleOne makes one scheduling attempt for qp: snapshot, filter,
// score, assume, and hand the binding to a goroutine.
func (s *Scheduler) scheduleOne(ctx context.Context, qp *queue.QueuedPodInfo) {
	pod := qp.Pod
	if pod.DeletionTimestamp != nil {
		s.queue.Done(pod.UID)
		return
	}
	if node, _ := s.cache.PodNode(pod); node != "" {
		// Already assumed or bound (a stale queue entry).
		s.queue.Done(pod.UID)
		return
	}
	start := time.Now()
	s.cache.UpdateSnapshot(s.snapshot)
	state := framework.NewCycleState(s.snapshot)
	rec := &attemptRecord{UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name, Attempt: qp.Attempts, Time: start}
	res, err := s.schedulePod(ctx, state, qp.PodInfo, rec)
	if err != nil {
		s.handleFailure(ctx, qp, err, start, rec)
		return
	}
	if err := s.cache.AssumePod(qp.PodInfo, res.node); err != nil {
		s.handleFailure(ctx, qp, err, start, rec)
		return
	}
	rec.Result, rec.SelectedNode = resultScheduled, res.node
	s.records.put(rec)
	s.metrics.observeAttempt(resultScheduled, time.Since(start))

	select {
	case s.bindSem <- struct{}{}:
	case <-ctx.Done():
		_ = s.cache.ForgetPod(pod)
		s.queue.AddUnschedulableIfNotPresent(qp)
		return
	}
	s.goAsync(func() {
		defer func() { <-s.bindSem }()
		s.bind(ctx, state, qp, res.node)
	})
}

// schedulePod finds the best node for pod, filling rec with what every
// node said.
func (s *Scheduler) schedulePod(ctx context.Context, state *framework.CycleState, pi *framework.PodInfo, rec *attemptRecord) (scheduleResult, error) {
	snap := s.snapshot
	numAll := snap.NumNodes()
	rec.NumAllNodes = numAll
	if numAll == 0 {
		return scheduleResult{}, &FitError{Pod: pi.Pod}
	}
	pre, st := s.fw.RunPreFilterPlugins(ctx, state, pi)
	if !st.IsSuccess() {
		if st.IsRejected() {
			rec.PreFilter = st
			return scheduleResult{}, &FitError{Pod: pi.Pod, NumAllNodes: numAll, PreFilter: st}
		}
		return scheduleResult{}, fmt.Errorf("prefilter: %w", st.AsError())
	}
	nodes, names := snap.List(), snap.NodeNames()
	limited := pre != nil && pre.NodeNames != nil
	if limited {
		nodes, names = nil, nil
		for _, name := range slices.Sorted(mapKeys(pre.NodeNames)) {
			if ni, err := snap.Get(name); err == nil {
				nodes = append(nodes, ni)
				names = append(names, name)
			}
		}
	}
	feasible, feasibleIdx, statuses, err := s.findNodesThatPassFilters(ctx, state, pi, nodes, limited)
	rec.NodeNames, rec.Statuses, rec.FeasibleIdx = names, statuses, feasibleIdx
	if err != nil {
		return scheduleResult{}, err
	}
	res := scheduleResult{feasible: len(feasible)}
	for _, st := range statuses {
		if st != nil {
			res.evaluated++
		}
	}
	res.evaluated += len(feasible)
	rec.NumEvaluated, rec.NumFeasible = res.evaluated, res.feasible
	if len(feasible) == 0 {
		return res, &FitError{Pod: pi.Pod, NumAllNodes: numAll, Statuses: statuses}
	}
	if len(feasible) == 1 || !s.fw.HasScorePlugins() {
		res.node = feasible[rand.IntN(len(feasible))].Node().Name
		return res, nil
	}
	if st := s.fw.RunPreScorePlugins(ctx, state, pi, feasible); !st.IsSuccess() {
		return res, fmt.Errorf("prescore: %w", st.AsError())
	}
	perPlugin, totals, st := s.fw.RunScorePlugins(ctx, state, pi, feasible)
	if !st.IsSuccess() {
		return res, fmt.Errorf("score: %w", st.AsError())
	}
	rec.Scores, rec.Totals = perPlugin, totals
	res.node = feasible[selectHost(totals)].Node().Name
	return res, nil
}

func mapKeys(m map[string]struct{}) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// selectHost returns the index of the highest total, choosing uniformly
// among ties so equal nodes share the load.
func selectHost(totals []int64) int {
	best, ties := 0, 1
	for i := 1; i < len(totals); i++ {
		switch {
		case totals[i] > totals[best]:
			best, ties = i, 1
		case totals[i] == totals[best]:
			ties++
			if rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return best
}

// findNodesThatPassFilters filters nodes in parallel, starting at a
// rotating offset (unless limited to named nodes) and stopping once enough
// feasible nodes are found. statuses[i] is nodes[i]'s rejection (nil if it
// passed or was not checked); feasibleIdx[j] is feasible[j]'s index in
// nodes.
func (s *Scheduler) findNodesThatPassFilters(ctx context.Context, state *framework.CycleState, pi *framework.PodInfo,
	nodes []*framework.NodeInfo, limited bool) ([]*framework.NodeInfo, []int32, []*framework.Status, error) {
	n := len(nodes)
	statuses := make([]*framework.Status, n)
	if n == 0 {
		return nil, nil, statuses, nil
	}
	toFind, start := n, 0
	if !limited {
		toFind = numFeasibleNodesToFind(s.cfg.PercentageOfNodesToScore, n)
		start = s.nextStartNodeIndex % n
	}
	feasible := make([]*framework.NodeInfo, toFind)
	feasibleIdx := make([]int32, toFind)
	var found, rejected atomic.Int32
	var errOnce sync.Once
	var firstErr error
	s.fw.Parallelizer().Until(ctx, n, func(i int) bool {
		idx := (start + i) % n
		st := s.fw.RunFilterPlugins(ctx, state, pi, nodes[idx])
		switch {
		case st.IsSuccess():
			k := int(found.Add(1))
			if k > toFind {
				return false
			}
			feasible[k-1] = nodes[idx]
			feasibleIdx[k-1] = int32(idx)
			return k < toFind
		case st.IsRejected():
			statuses[idx] = st
			rejected.Add(1)
			return true
		default:
			errOnce.Do(func() { firstErr = fmt.Errorf("filter on node %s: %w", nodes[idx].Node().Name, st.AsError()) })
			return false
		}
	})
	if firstErr != nil {
		return nil, nil, statuses, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, statuses, err
	}
	nFound := min(int(found.Load()), toFind)
	if !limited {
		s.nextStartNodeIndex = (start + nFound + int(rejected.Load())) % n
	}
	return feasible[:nFound], feasibleIdx[:nFound], statuses, nil
}

// bind runs the bind plugins for an assumed pod and finishes the attempt.
func (s *Scheduler) bind(ctx context.Context, state *framework.CycleState, qp *queue.QueuedPodInfo, node string) {
	pod := qp.Pod
	start := time.Now()
	st := s.fw.RunBindPlugins(ctx, state, pod, node)
	s.metrics.bindDuration.Observe(time.Since(start).Seconds())
	if !st.IsSuccess() {
		s.metrics.binds.WithLabelValues("error").Inc()
		if err := s.cache.ForgetPod(pod); err != nil {
			s.log.Error("forgetting pod after failed binding", "pod", podKey(pod), "err", err)
		}
		// What the pod held on node is free again.
		s.queue.MoveAllToActiveOrBackoffQueue(framework.AssignedPodDelete)
		err := st.AsError()
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			// Deleted, being deleted, re-created, or bound by someone
			// else: the informer will tell; nothing to retry.
			s.log.Info("binding not possible any more", "pod", podKey(pod), "node", node, "err", err)
			s.queue.Done(pod.UID)
			s.records.delete(pod.UID)
			return
		}
		if ctx.Err() != nil {
			s.queue.AddUnschedulableIfNotPresent(qp)
			return
		}
		s.handleFailure(ctx, qp, fmt.Errorf("binding rejected: %w", err), time.Time{}, nil)
		return
	}
	s.metrics.binds.WithLabelValues("ok").Inc()
	s.cache.FinishBinding(pod)
	s.queue.Done(pod.UID)
	s.records.delete(pod.UID)
	s.metrics.podSchedulingDuration.Observe(time.Since(qp.FirstSeen).Seconds())
	s.recorder.Event(pod, corev1.EventTypeNormal, "Scheduled",
		fmt.Sprintf("Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node))
	s.log.Debug("bound pod", "pod", podKey(pod), "node", node, "attempts", qp.Attempts)
}

// handleFailure hands a pod that did not get a node back to the queue,
// and tells the user why: a FailedScheduling event and the PodScheduled
// condition. start is zero for failures after the scheduling cycle.
func (s *Scheduler) handleFailure(ctx context.Context, qp *queue.QueuedPodInfo, err error, start time.Time, rec *attemptRecord) {
	pod := qp.Pod
	var fitErr *FitError
	result, reason := resultError, corev1.PodReasonSchedulerError
	qp.UnschedulablePlugins = nil
	if errors.As(err, &fitErr) {
		result, reason = resultUnschedulable, corev1.PodReasonUnschedulable
		if fitErr.NumAllNodes > 0 {
			qp.UnschedulablePlugins = fitErr.UnschedulablePlugins()
		}
	}
	msg := err.Error()
	if !start.IsZero() {
		s.metrics.observeAttempt(result, time.Since(start))
	}
	if rec != nil {
		rec.Result, rec.Message = result, msg
		s.records.put(rec)
	}
	// Only tell a pod that still exists as we saw it.
	cur, getErr := s.podLister.Get(pod.Namespace, pod.Name)
	if getErr != nil || cur.UID != pod.UID || cur.Spec.NodeName != "" {
		s.queue.Done(pod.UID)
		s.records.delete(pod.UID)
		return
	}
	if result == resultUnschedulable {
		s.log.Info("pod is unschedulable", "pod", podKey(pod), "attempt", qp.Attempts, "reason", msg)
	} else {
		s.log.Warn("error scheduling pod; retrying", "pod", podKey(pod), "attempt", qp.Attempts, "err", err)
	}
	s.queue.AddUnschedulableIfNotPresent(qp)
	s.recorder.Event(cur, corev1.EventTypeWarning, "FailedScheduling", msg)
	seq := s.statusWrites.begin(pod.UID)
	s.goAsync(func() {
		defer s.statusWrites.end(pod.UID, seq)
		s.setPodScheduledFalse(ctx, cur, reason, msg, func() bool { return s.statusWrites.latest(pod.UID, seq) })
	})
}

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/events"
)

// Name is the controller's name in logs, metrics and events.
const Name = "node-lifecycle-controller"

// Defaults, as in Kubernetes.
const (
	DefaultGracePeriod       = 40 * time.Second
	DefaultTolerationSeconds = 300
	reasonNodeStatusUnknown  = "NodeStatusUnknown"
	messageNodeStatusUnknown = "Kubelet stopped posting node status."
	reasonTaintEviction      = "TaintManagerEviction"
)

// Config tunes the controller.
type Config struct {
	// GracePeriod is how long a node may go without a heartbeat before it
	// is considered unreachable; 0 means DefaultGracePeriod.
	GracePeriod time.Duration
	// NotReadyTolerationSeconds and UnreachableTolerationSeconds are how
	// long pods without their own toleration stay on a not-ready or
	// unreachable node; nil means DefaultTolerationSeconds.
	NotReadyTolerationSeconds, UnreachableTolerationSeconds *int64
	controllers.Options
}

// Controller is the node lifecycle controller.
type Controller struct {
	cs        *typed.Clientset
	nodeList  informer.Lister[*corev1.Node]
	leaseList informer.Lister[*coordinationv1.Lease]
	podInf    *informer.Informer
	recorder  events.Recorder
	ctrl      *controllers.Controller
	log       *slog.Logger
	now       func() time.Time
	grace     time.Duration
	defaults  map[string]int64

	mu     sync.Mutex
	health map[string]*nodeHealth
}

// nodeHealth is what the controller saw of a node's heartbeats, by its own
// clock.
type nodeHealth struct {
	probed     time.Time // when a heartbeat was last seen to change
	leaseRenew time.Time
	heartbeat  time.Time // Ready condition's lastHeartbeatTime
}

// New builds the controller on the factory's shared Node, Lease and Pod
// informers.
func New(f *informer.Factory, cs *typed.Clientset, rec events.Recorder, cfg Config) (*Controller, error) {
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	def := func(p *int64) int64 {
		if p == nil {
			return DefaultTolerationSeconds
		}
		return *p
	}
	nodeInf, leaseInf, podInf := f.Nodes(), f.Leases(), f.Pods()
	c := &Controller{
		cs:        cs,
		nodeList:  nodeInf.Lister(),
		leaseList: leaseInf.Lister(),
		podInf:    podInf.Informer,
		recorder:  rec,
		now:       time.Now,
		grace:     cfg.GracePeriod,
		defaults: map[string]int64{
			corev1.TaintNodeNotReady:    def(cfg.NotReadyTolerationSeconds),
			corev1.TaintNodeUnreachable: def(cfg.UnreachableTolerationSeconds),
		},
		health: map[string]*nodeHealth{},
	}
	ctrl, err := controllers.New(Name, c.reconcile, cfg.Options, nodeInf, leaseInf, podInf)
	if err != nil {
		return nil, err
	}
	c.ctrl, c.log = ctrl, ctrl.Logger()
	if err := controllers.IndexPodsByNode(podInf.Informer); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if err := nodeInf.AddEventHandler(informer.Handler{
		AddFunc:    func(obj runtime.Object) { ctrl.Enqueue(obj) },
		UpdateFunc: func(_, obj runtime.Object) { ctrl.Enqueue(obj) },
		DeleteFunc: func(obj any) {
			if n, ok := informer.ObjectOf[*corev1.Node](obj); ok {
				c.mu.Lock()
				delete(c.health, n.Name)
				c.mu.Unlock()
			}
		},
	}); err != nil {
		return nil, err
	}
	leaseChanged := func(obj runtime.Object) {
		if l, ok := obj.(*coordinationv1.Lease); ok && l.Namespace == corev1.NamespaceNodeLease {
			ctrl.EnqueueKey(l.Name)
		}
	}
	if err := leaseInf.AddEventHandler(informer.Handler{
		AddFunc:    leaseChanged,
		UpdateFunc: func(_, obj runtime.Object) { leaseChanged(obj) },
	}); err != nil {
		return nil, err
	}
	// A pod arriving on a tainted node needs its eviction time computed.
	if err := podInf.AddEventHandler(informer.Handler{
		AddFunc: func(obj runtime.Object) {
			if p := obj.(*corev1.Pod); p.Spec.NodeName != "" {
				ctrl.EnqueueKey(p.Spec.NodeName)
			}
		},
		UpdateFunc: func(old, cur runtime.Object) {
			if o, n := old.(*corev1.Pod), cur.(*corev1.Pod); n.Spec.NodeName != "" && o.Spec.NodeName != n.Spec.NodeName {
				ctrl.EnqueueKey(n.Spec.NodeName)
			}
		},
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run reconciles with workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error { return c.ctrl.Run(ctx, workers) }

// observe records node's current heartbeats and returns how long it has
// been silent, by the controller's clock.
func (c *Controller) observe(node *corev1.Node, now time.Time) time.Duration {
	var renew, beat time.Time
	if l, err := c.leaseList.Get(corev1.NamespaceNodeLease, node.Name); err == nil && l.Spec.RenewTime != nil {
		renew = l.Spec.RenewTime.Time
	}
	if r := controllers.NodeCondition(node, corev1.NodeReady); r != nil {
		beat = r.LastHeartbeatTime.Time
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.health[node.Name]
	switch {
	case h == nil:
		// First sight (or controller start): the grace period starts now.
		h = &nodeHealth{probed: now, leaseRenew: renew, heartbeat: beat}
		c.health[node.Name] = h
	case !renew.Equal(h.leaseRenew) || !beat.Equal(h.heartbeat):
		h.probed, h.leaseRenew, h.heartbeat = now, renew, beat
	}
	return now.Sub(h.probed)
}

// healthy reports whether some node other than the one being handled is
// reachable and ready (for the "everything is down" safety).
func (c *Controller) anyHealthy(now time.Time) bool {
	nodes, err := c.nodeList.List(labels.Everything())
	if err != nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range nodes {
		h := c.health[n.Name]
		r := controllers.NodeCondition(n, corev1.NodeReady)
		if h != nil && now.Sub(h.probed) <= c.grace && r != nil && r.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func (c *Controller) reconcile(ctx context.Context, name string) (controllers.Result, error) {
	cached, err := c.nodeList.Get("", name)
	if apierrors.IsNotFound(err) {
		return controllers.Result{}, nil
	}
	if err != nil {
		return controllers.Result{}, fmt.Errorf("node %s: %w", name, err)
	}
	node := cached.DeepCopy()
	now := c.now()
	silent := c.observe(node, now)
	ready := controllers.NodeCondition(node, corev1.NodeReady)

	var want []corev1.Taint
	var res controllers.Result
	switch {
	case silent > c.grace:
		if err := c.markUnknown(ctx, node, now); err != nil {
			return controllers.Result{}, fmt.Errorf("node %s: %w", name, err)
		}
		want = taintsFor(corev1.TaintNodeUnreachable)
	case ready != nil && ready.Status == corev1.ConditionFalse:
		want = taintsFor(corev1.TaintNodeNotReady)
		res.RequeueAfter = c.grace - silent + 100*time.Millisecond
	case ready != nil && ready.Status == corev1.ConditionUnknown:
		// We marked it unknown; its heartbeat is back but its kubelet has
		// not said Ready yet: keep things as they are.
		want = managedTaints(node.Spec.Taints)
		res.RequeueAfter = c.grace - silent + 100*time.Millisecond
	default:
		res.RequeueAfter = c.grace - silent + 100*time.Millisecond
	}
	if node, err = c.syncTaints(ctx, node, want, now); err != nil {
		return controllers.Result{}, fmt.Errorf("node %s: %w", name, err)
	}
	next, err := c.evict(ctx, node, now)
	if err != nil {
		return controllers.Result{}, fmt.Errorf("node %s: %w", name, err)
	}
	if next > 0 && (res.RequeueAfter == 0 || next < res.RequeueAfter) {
		res.RequeueAfter = next
	}
	return res, nil
}

// markUnknown sets the node's conditions to Unknown (its kubelet stopped
// reporting) and its pods to not ready.
func (c *Controller) markUnknown(ctx context.Context, node *corev1.Node, now time.Time) error {
	changed := false
	conds := node.Status.Conditions
	for _, t := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		i := slices.IndexFunc(conds, func(x corev1.NodeCondition) bool { return x.Type == t })
		if i < 0 {
			conds = append(conds, corev1.NodeCondition{Type: t, Status: corev1.ConditionUnknown, Reason: reasonNodeStatusUnknown,
				Message: messageNodeStatusUnknown, LastTransitionTime: metav1.NewTime(now)})
			changed = true
			continue
		}
		if conds[i].Status != corev1.ConditionUnknown {
			conds[i].Status, conds[i].Reason, conds[i].Message = corev1.ConditionUnknown, reasonNodeStatusUnknown, messageNodeStatusUnknown
			conds[i].LastTransitionTime = metav1.NewTime(now)
			changed = true
		}
	}
	if changed {
		node.Status.Conditions = conds
		updated, err := c.cs.Nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("marking conditions unknown: %w", err)
		}
		*node = *updated
		c.recorder.Eventf(node, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady (no heartbeat for more than %v)", node.Name, c.grace)
	}
	return c.markPodsNotReady(ctx, node, now)
}

func (c *Controller) podsOn(node string) []*corev1.Pod {
	objs, err := c.podInf.Indexer().ByIndex(controllers.PodsByNodeIndex, node)
	if err != nil {
		return nil
	}
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			out = append(out, p)
		}
	}
	return out
}

func (c *Controller) markPodsNotReady(ctx context.Context, node *corev1.Node, now time.Time) error {
	var errs []error
	for _, p := range c.podsOn(node.Name) {
		if !controllers.IsPodReady(p) || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		next := p.DeepCopy()
		for i := range next.Status.Conditions {
			if next.Status.Conditions[i].Type == corev1.PodReady {
				next.Status.Conditions[i].Status = corev1.ConditionFalse
				next.Status.Conditions[i].Reason = "NodeNotReady"
				next.Status.Conditions[i].LastTransitionTime = metav1.NewTime(now)
			}
		}
		_, err := c.cs.Pods.Namespace(p.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("marking pod %s/%s not ready: %w", p.Namespace, p.Name, err))
			continue
		}
		if err == nil {
			c.recorder.Eventf(p, corev1.EventTypeWarning, "NodeNotReady", "Node %s is not ready: pod marked not ready", node.Name)
		}
	}
	return errors.Join(errs...)
}

// taintsFor are the taints this controller puts on a node in state key.
func taintsFor(key string) []corev1.Taint {
	return []corev1.Taint{{Key: key, Effect: corev1.TaintEffectNoSchedule}, {Key: key, Effect: corev1.TaintEffectNoExecute}}
}

func isManaged(t corev1.Taint) bool {
	return (t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable) &&
		(t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute)
}

func managedTaints(ts []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range ts {
		if isManaged(t) {
			out = append(out, t)
		}
	}
	return out
}

// syncTaints makes the node's not-ready/unreachable taints exactly want
// (keeping the time a taint that stays was added), leaving other taints
// alone.
func (c *Controller) syncTaints(ctx context.Context, node *corev1.Node, want []corev1.Taint, now time.Time) (*corev1.Node, error) {
	var next []corev1.Taint
	for _, t := range node.Spec.Taints {
		if !isManaged(t) {
			next = append(next, t)
		}
	}
	for _, w := range want {
		i := slices.IndexFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == w.Key && t.Effect == w.Effect })
		if i >= 0 {
			next = append(next, node.Spec.Taints[i])
			continue
		}
		ts := metav1.NewTime(now)
		w.TimeAdded = &ts
		next = append(next, w)
	}
	if equality.Semantic.DeepEqual(managedTaints(node.Spec.Taints), managedTaints(next)) {
		return node, nil
	}
	cp := node.DeepCopy()
	cp.Spec.Taints = next
	updated, err := c.cs.Nodes.Update(ctx, cp, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating taints: %w", err)
	}
	var keys []string
	for _, t := range managedTaints(next) {
		keys = append(keys, t.Key+":"+string(t.Effect))
	}
	c.log.Info("node taints changed", "object", node.Name, "reason", "NodeHealth", "taints", keys)
	return updated, nil
}

// evict deletes the pods on node whose tolerations of its NoExecute
// taints have run out, and says when the next one will.
func (c *Controller) evict(ctx context.Context, node *corev1.Node, now time.Time) (time.Duration, error) {
	hasNoExecute := slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Effect == corev1.TaintEffectNoExecute })
	if !hasNoExecute {
		return 0, nil
	}
	var next time.Duration
	var errs []error
	paused := false
	for _, p := range c.podsOn(node.Name) {
		if !controllers.IsPodActive(p) {
			continue
		}
		at := EvictionTime(p, node.Spec.Taints, c.defaults, now)
		if at.Equal(Never) {
			continue
		}
		if wait := at.Sub(now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		if !paused && !c.anyHealthy(now) {
			c.log.Warn("no healthy node in the cluster; not evicting", "object", node.Name, "reason", "FullDisruption")
			paused = true
		}
		if paused {
			next = c.grace
			continue
		}
		uid := p.UID
		err := c.cs.Pods.Namespace(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("evicting pod %s/%s: %w", p.Namespace, p.Name, err))
			continue
		}
		c.recorder.Eventf(p, corev1.EventTypeNormal, reasonTaintEviction, "Marking for deletion Pod %s/%s (node %s is tainted NoExecute)", p.Namespace, p.Name, node.Name)
	}
	if next > 0 {
		next += 100 * time.Millisecond
	}
	return next, errors.Join(errs...)
}

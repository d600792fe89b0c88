package podgc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/events"
)

// Name is the controller's name in logs, metrics and events.
const Name = "pod-garbage-collector"

// Defaults, as in Kubernetes.
const (
	DefaultTerminatedPodThreshold = 12500
	DefaultOrphanQuarantine       = 40 * time.Second
)

// terminatedKey is the queue key of the terminated-pod threshold sweep. A
// pod key always has a slash (namespace/name), so it cannot collide.
const terminatedKey = "terminated-pods"

// Config tunes the controller.
type Config struct {
	// TerminatedPodThreshold is how many terminated pods may exist before
	// the oldest are deleted; 0 disables it (it is not defaulted: 0 is a
	// choice).
	TerminatedPodThreshold int
	// OrphanQuarantine is how long a pod must be seen bound to a missing
	// node before it is deleted; 0 means DefaultOrphanQuarantine.
	OrphanQuarantine time.Duration
	controllers.Options
}

// Controller is the pod garbage collector.
type Controller struct {
	cs         *typed.Clientset
	pods       informer.Lister[*corev1.Pod]
	nodes      informer.Lister[*corev1.Node]
	recorder   events.Recorder
	ctrl       *controllers.Controller
	log        *slog.Logger
	now        func() time.Time
	threshold  int
	quarantine *quarantine
}

// New builds the controller on the factory's shared Pod and Node
// informers.
func New(f *informer.Factory, cs *typed.Clientset, rec events.Recorder, cfg Config) (*Controller, error) {
	if cfg.TerminatedPodThreshold < 0 {
		return nil, fmt.Errorf("podgc: terminated pod threshold %d: must be 0 (disabled) or more", cfg.TerminatedPodThreshold)
	}
	if cfg.OrphanQuarantine <= 0 {
		cfg.OrphanQuarantine = DefaultOrphanQuarantine
	}
	podInf, nodeInf := f.Pods(), f.Nodes()
	c := &Controller{
		cs:         cs,
		pods:       podInf.Lister(),
		nodes:      nodeInf.Lister(),
		recorder:   rec,
		now:        time.Now,
		threshold:  cfg.TerminatedPodThreshold,
		quarantine: newQuarantine(cfg.OrphanQuarantine),
	}
	ctrl, err := controllers.New(Name, c.reconcile, cfg.Options, podInf, nodeInf)
	if err != nil {
		return nil, err
	}
	c.ctrl, c.log = ctrl, ctrl.Logger()
	if err := controllers.IndexPodsByNode(podInf.Informer); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	// The threshold sweep lists every pod, so it is queued only when the
	// number of finished pods can have grown: a finished pod appears, or a
	// pod finishes. Resyncs and other updates of finished pods do not.
	sweepIfFinished := func(old, cur runtime.Object) {
		p, ok := cur.(*corev1.Pod)
		if !ok || c.threshold <= 0 || !isTerminal(p) {
			return
		}
		if o, ok := old.(*corev1.Pod); ok && isTerminal(o) {
			return
		}
		ctrl.EnqueueKey(terminatedKey)
	}
	if err := podInf.AddEventHandler(informer.Handler{
		AddFunc: func(obj runtime.Object) {
			ctrl.Enqueue(obj)
			sweepIfFinished(nil, obj)
		},
		UpdateFunc: func(old, cur runtime.Object) {
			ctrl.Enqueue(cur)
			sweepIfFinished(old, cur)
		},
		// A deleted pod's key forgets its quarantine mark.
		DeleteFunc: func(obj any) { ctrl.Enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	// Pods answer to their node's state: a node that goes away starts
	// their quarantine, one that (re)appears ends it, and one that turns
	// not ready or gets the out-of-service taint releases its terminating
	// pods. Heartbeats change neither, so they enqueue nothing.
	if err := nodeInf.AddEventHandler(informer.Handler{
		AddFunc: func(obj runtime.Object) { c.enqueuePodsOn(obj) },
		UpdateFunc: func(old, cur runtime.Object) {
			o, n := old.(*corev1.Node), cur.(*corev1.Node)
			if controllers.IsNodeReady(o) != controllers.IsNodeReady(n) || hasOutOfServiceTaint(o) != hasOutOfServiceTaint(n) {
				c.enqueuePodsOn(n)
			}
		},
		DeleteFunc: func(obj any) {
			if n, ok := informer.ObjectOf[*corev1.Node](obj); ok {
				c.enqueuePodsOn(n)
			}
		},
	}); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Controller) enqueuePodsOn(obj runtime.Object) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	pods, _ := c.pods.ByIndex(controllers.PodsByNodeIndex, n.Name)
	for _, p := range pods {
		c.ctrl.Enqueue(p)
	}
}

// Run reconciles with workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error { return c.ctrl.Run(ctx, workers) }

// reconcile decides about the pod named by key, or runs the threshold
// sweep.
func (c *Controller) reconcile(ctx context.Context, key string) (controllers.Result, error) {
	if key == terminatedKey {
		return controllers.Result{}, c.gcTerminated(ctx)
	}
	ns, name, err := informer.SplitMetaNamespaceKey(key)
	if err != nil {
		return controllers.Result{}, nil // not ours to retry
	}
	pod, err := c.pods.Get(ns, name)
	if apierrors.IsNotFound(err) {
		c.quarantine.forget(key)
		return controllers.Result{}, nil
	}
	if err != nil {
		return controllers.Result{}, err
	}
	var node *corev1.Node
	if pod.Spec.NodeName != "" {
		node, err = c.nodes.Get("", pod.Spec.NodeName)
		switch {
		case apierrors.IsNotFound(err):
			node = nil
		case err != nil:
			return controllers.Result{}, err
		}
	}
	v := classify(pod, node)
	if v != orphaned {
		c.quarantine.forget(key)
	}
	switch v {
	case keep:
		return controllers.Result{}, nil
	case orphaned:
		if left := c.quarantine.wait(key, pod, c.now()); left > 0 {
			return controllers.Result{RequeueAfter: left}, nil
		}
		// The cache may be behind a Node that was just (re)created: only
		// the API server's answer can condemn the pod.
		_, err := c.cs.Nodes.Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
		if err == nil {
			// It exists; its add event ends the quarantine. Look again
			// later in case the cache never shows it (deleted again).
			c.quarantine.forget(key)
			return controllers.Result{RequeueAfter: c.quarantine.period}, nil
		}
		if !apierrors.IsNotFound(err) {
			return controllers.Result{}, fmt.Errorf("pod %s: check node %s: %w", key, pod.Spec.NodeName, err)
		}
		err = c.forceDelete(ctx, pod, v, &corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
			Reason: ReasonDeletionByPodGC, Message: "PodGC: node no longer exists"})
		if err == nil {
			c.quarantine.forget(key)
		}
		return controllers.Result{}, err
	default:
		// As in Kubernetes, only an orphan gets the DisruptionTarget
		// condition; these pods were being deleted already.
		return controllers.Result{}, c.forceDelete(ctx, pod, v, nil)
	}
}

// forceDelete marks pod Failed (with cond, if given) unless it already
// finished, then deletes it with grace period 0. Marking it first matters
// for a pod no kubelet will ever report on again: whatever watches pods
// (or a finalizer holding it) sees how it ended rather than Running. The
// status write is a plain conditional update of the cached pod: a conflict
// retries the key with the fresh pod.
func (c *Controller) forceDelete(ctx context.Context, pod *corev1.Pod, why verdict, cond *corev1.PodCondition) error {
	key := pod.Namespace + "/" + pod.Name
	pods := c.cs.Pods.Namespace(pod.Namespace)
	if !isTerminal(pod) {
		p := pod.DeepCopy()
		p.Status.Phase = corev1.PodFailed
		if cond != nil {
			cond := *cond
			cond.LastTransitionTime = metav1.NewTime(c.now())
			p.Status.SetCondition(cond)
		}
		if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("pod %s: mark Failed: %w", key, err)
		}
	}
	if err := c.delete(ctx, pod); err != nil {
		return fmt.Errorf("pod %s: force delete: %w", key, err)
	}
	c.log.Info("force-deleted pod", "pod", key, "node", pod.Spec.NodeName, "reason", why.String())
	c.recorder.Eventf(pod, corev1.EventTypeNormal, ReasonDeletionByPodGC, "Force-deleted pod %s (%s)", key, why)
	return nil
}

// delete deletes pod at once (grace period 0), and only that incarnation
// of it: a pod recreated under the same name is someone else's.
func (c *Controller) delete(ctx context.Context, pod *corev1.Pod) error {
	zero := int64(0)
	uid := pod.UID
	err := c.cs.Pods.Namespace(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or replaced by a pod of the same name
	}
	return err
}

// gcTerminated deletes the terminated pods beyond the threshold. It needs
// no record of what it deleted before: see terminatedVictims.
func (c *Controller) gcTerminated(ctx context.Context) error {
	if c.threshold <= 0 {
		return nil
	}
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	victims := terminatedVictims(pods, c.threshold)
	if len(victims) == 0 {
		return nil
	}
	c.log.Info("deleting terminated pods over the threshold", "count", len(victims), "threshold", c.threshold)
	var errs []error
	for _, p := range victims {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := c.delete(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err))
		}
	}
	return errors.Join(errs...)
}

package replicaset

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/events"
)

// Name is the controller's name in logs, metrics and events.
const Name = "replicaset-controller"

// BurstReplicas caps how many pods one sync creates or deletes; the rest
// wait for the next sync.
const BurstReplicas = 500

// controllerKind is what the pods' ownerReferences name.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// Controller is the ReplicaSet controller.
type Controller struct {
	cs       *typed.Clientset
	rsList   informer.Lister[*appsv1.ReplicaSet]
	podList  informer.Lister[*corev1.Pod]
	exp      *controllers.Expectations
	recorder events.Recorder
	ctrl     *controllers.Controller
	log      *slog.Logger
	now      func() time.Time
}

// New builds the controller on the factory's shared ReplicaSet and Pod
// informers and registers its handlers; start the factory, then Run.
func New(f *informer.Factory, cs *typed.Clientset, rec events.Recorder, opts controllers.Options) (*Controller, error) {
	rsInf, podInf := f.ReplicaSets(), f.Pods()
	c := &Controller{
		cs:       cs,
		rsList:   rsInf.Lister(),
		podList:  podInf.Lister(),
		exp:      controllers.NewExpectations(),
		recorder: rec,
		now:      time.Now,
	}
	ctrl, err := controllers.New(Name, c.reconcile, opts, rsInf, podInf)
	if err != nil {
		return nil, err
	}
	c.ctrl, c.log = ctrl, ctrl.Logger()
	if err := rsInf.AddEventHandler(informer.Handler{
		AddFunc:    func(obj runtime.Object) { c.ctrl.Enqueue(obj) },
		UpdateFunc: func(_, obj runtime.Object) { c.ctrl.Enqueue(obj) },
		DeleteFunc: c.deleteRS,
	}); err != nil {
		return nil, err
	}
	if err := podInf.AddEventHandler(informer.Handler{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run reconciles with workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error { return c.ctrl.Run(ctx, workers) }

func (c *Controller) deleteRS(obj any) {
	key, err := informer.MetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	c.exp.Forget(key)
	c.ctrl.EnqueueKey(key)
}

// controllerOf returns the key of the ReplicaSet in the cache that
// controls pod, or "".
func (c *Controller) controllerOf(pod *corev1.Pod) (string, *appsv1.ReplicaSet) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return "", nil
	}
	rs, err := c.rsList.Get(pod.Namespace, ref.Name)
	if err != nil || rs.UID != ref.UID {
		return "", nil
	}
	return pod.Namespace + "/" + rs.Name, rs
}

// matchingReplicaSets are the ReplicaSets whose selector matches pod: the
// candidates to adopt an orphan.
func (c *Controller) matchingReplicaSets(pod *corev1.Pod) []*appsv1.ReplicaSet {
	list, err := c.rsList.ListNamespace(pod.Namespace, labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range list {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			out = append(out, rs)
		}
	}
	return out
}

func (c *Controller) addPod(obj runtime.Object) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already being deleted (e.g. after a
		// re-list): it must not count as a creation.
		c.deletePod(pod)
		return
	}
	if key, _ := c.controllerOf(pod); key != "" {
		c.exp.CreationObserved(key)
		c.ctrl.EnqueueKey(key)
		return
	}
	if metav1.GetControllerOfNoCopy(pod) == nil {
		for _, rs := range c.matchingReplicaSets(pod) {
			c.ctrl.Enqueue(rs)
		}
	}
}

func (c *Controller) updatePod(oldObj, curObj runtime.Object) {
	old, ok1 := oldObj.(*corev1.Pod)
	cur, ok2 := curObj.(*corev1.Pod)
	if !ok1 || !ok2 {
		return
	}
	if cur.ResourceVersion == old.ResourceVersion {
		return // periodic resync: the ReplicaSets resync themselves
	}
	labelsChanged := !equality.Semantic.DeepEqual(old.Labels, cur.Labels)
	if cur.DeletionTimestamp != nil && old.DeletionTimestamp == nil {
		// A graceful delete: the pod stops counting now, not when it is gone.
		c.deletePod(cur)
		if labelsChanged {
			c.deletePod(old)
		}
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)
	if !equality.Semantic.DeepEqual(oldRef, curRef) && oldRef != nil {
		if key, _ := c.controllerOf(old); key != "" {
			c.ctrl.EnqueueKey(key)
		}
	}
	if curRef != nil {
		key, rs := c.controllerOf(cur)
		if key == "" {
			return
		}
		c.ctrl.EnqueueKey(key)
		// A pod that just became ready becomes available minReadySeconds
		// later; look again then.
		if rs.Spec.MinReadySeconds > 0 && !controllers.IsPodReady(old) && controllers.IsPodReady(cur) {
			c.ctrl.EnqueueAfter(key, time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if labelsChanged || !equality.Semantic.DeepEqual(oldRef, curRef) {
		for _, rs := range c.matchingReplicaSets(cur) {
			c.ctrl.Enqueue(rs)
		}
	}
}

func (c *Controller) deletePod(obj any) {
	pod, ok := informer.ObjectOf[*corev1.Pod](obj)
	if !ok {
		return
	}
	key, _ := c.controllerOf(pod)
	if key == "" {
		return
	}
	c.exp.DeletionObserved(key, pod.Namespace+"/"+pod.Name)
	c.ctrl.EnqueueKey(key)
}

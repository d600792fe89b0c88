package deployment

import (
	"context"
	"log/slog"
	"sync"
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
const Name = "deployment-controller"

var (
	controllerKind = appsv1.SchemeGroupVersion.WithKind("Deployment")
	rsKind         = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
)

// staleWriteTimeout is how long a ReplicaSet write may take to show up in
// the cache before the controller stops waiting for it.
const staleWriteTimeout = 30 * time.Second

// Controller is the Deployment controller.
type Controller struct {
	cs       *typed.Clientset
	dList    informer.Lister[*appsv1.Deployment]
	rsList   informer.Lister[*appsv1.ReplicaSet]
	podList  informer.Lister[*corev1.Pod]
	recorder events.Recorder
	ctrl     *controllers.Controller
	log      *slog.Logger
	now      func() time.Time

	// written remembers, per Deployment key, the ReplicaSets this
	// controller wrote and the generation it wrote, until the cache shows
	// at least that generation: before then, counting from the cache
	// could scale twice.
	mu      sync.Mutex
	written map[string]map[string]writeRecord
}

type writeRecord struct {
	generation int64
	created    bool // not found in the cache means "not yet", not "deleted"
	at         time.Time
}

// New builds the controller on the factory's shared Deployment,
// ReplicaSet and Pod informers; start the factory, then Run.
func New(f *informer.Factory, cs *typed.Clientset, rec events.Recorder, opts controllers.Options) (*Controller, error) {
	dInf, rsInf, podInf := f.Deployments(), f.ReplicaSets(), f.Pods()
	c := &Controller{
		cs:       cs,
		dList:    dInf.Lister(),
		rsList:   rsInf.Lister(),
		podList:  podInf.Lister(),
		recorder: rec,
		now:      time.Now,
		written:  map[string]map[string]writeRecord{},
	}
	ctrl, err := controllers.New(Name, c.reconcile, opts, dInf, rsInf, podInf)
	if err != nil {
		return nil, err
	}
	c.ctrl, c.log = ctrl, ctrl.Logger()
	if err := dInf.AddEventHandler(ctrl.Handler()); err != nil {
		return nil, err
	}
	if err := rsInf.AddEventHandler(informer.Handler{
		AddFunc: func(obj runtime.Object) { c.rsChanged(nil, obj.(*appsv1.ReplicaSet)) },
		UpdateFunc: func(old, cur runtime.Object) {
			c.rsChanged(old.(*appsv1.ReplicaSet), cur.(*appsv1.ReplicaSet))
		},
		DeleteFunc: func(obj any) {
			if rs, ok := informer.ObjectOf[*appsv1.ReplicaSet](obj); ok {
				c.rsChanged(nil, rs)
			}
		},
	}); err != nil {
		return nil, err
	}
	// Pods matter for availability and, for Recreate, for knowing when the
	// old ones are gone.
	if err := podInf.AddEventHandler(informer.Handler{
		AddFunc: func(obj runtime.Object) { c.podChanged(obj) },
		UpdateFunc: func(old, cur runtime.Object) {
			if old.(*corev1.Pod).ResourceVersion != cur.(*corev1.Pod).ResourceVersion {
				c.podChanged(cur)
			}
		},
		DeleteFunc: c.podChanged,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run reconciles with workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error { return c.ctrl.Run(ctx, workers) }

// ownerOf returns the cached Deployment controlling obj.
func (c *Controller) ownerOf(obj metav1.Object) *appsv1.Deployment {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil || ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return nil
	}
	d, err := c.dList.Get(obj.GetNamespace(), ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

func (c *Controller) rsChanged(old, cur *appsv1.ReplicaSet) {
	if d := c.ownerOf(cur); d != nil {
		c.ctrl.Enqueue(d)
	}
	if old != nil && !equality.Semantic.DeepEqual(metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)) {
		if d := c.ownerOf(old); d != nil {
			c.ctrl.Enqueue(d)
		}
	}
	if metav1.GetControllerOfNoCopy(cur) == nil {
		// An orphan: the Deployments that could adopt it.
		ds, _ := c.dList.ListNamespace(cur.Namespace, labels.Everything())
		for _, d := range ds {
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err == nil && !sel.Empty() && sel.Matches(labels.Set(cur.Labels)) {
				c.ctrl.Enqueue(d)
			}
		}
	}
}

func (c *Controller) podChanged(obj any) {
	pod, ok := informer.ObjectOf[*corev1.Pod](obj)
	if !ok {
		return
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != rsKind.Kind {
		return
	}
	rs, err := c.rsList.Get(pod.Namespace, ref.Name)
	if err != nil || rs.UID != ref.UID {
		return
	}
	if d := c.ownerOf(rs); d != nil {
		c.ctrl.Enqueue(d)
		// A pod that became ready becomes available minReadySeconds later.
		if d.Spec.MinReadySeconds > 0 && controllers.IsPodReady(pod) {
			c.ctrl.EnqueueAfter(pod.Namespace+"/"+d.Name, time.Duration(d.Spec.MinReadySeconds)*time.Second+time.Second)
		}
	}
}

// wrote records a ReplicaSet write for dKey.
func (c *Controller) wrote(dKey string, rs *appsv1.ReplicaSet, created bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.written[dKey]
	if m == nil {
		m = map[string]writeRecord{}
		c.written[dKey] = m
	}
	m[rs.Namespace+"/"+rs.Name] = writeRecord{generation: rs.Generation, created: created, at: c.now()}
}

// cacheCurrent reports whether the cache shows every ReplicaSet write
// made for dKey.
func (c *Controller) cacheCurrent(dKey string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for rsKey, w := range c.written[dKey] {
		ns, name, _ := informer.SplitMetaNamespaceKey(rsKey)
		rs, err := c.rsList.Get(ns, name)
		switch {
		case err == nil && rs.Generation >= w.generation,
			err != nil && !w.created, // deleted since: nothing to wait for
			now.Sub(w.at) > staleWriteTimeout:
			delete(c.written[dKey], rsKey)
		default:
			return false
		}
	}
	delete(c.written, dKey)
	return true
}

func (c *Controller) forget(dKey string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.written, dKey)
}

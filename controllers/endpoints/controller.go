package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"maps"

	"k8s.io/apimachinery/pkg/api/equality"
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
const Name = "endpoints-controller"

// Controller is the Endpoints controller.
type Controller struct {
	cs       *typed.Clientset
	svcList  informer.Lister[*corev1.Service]
	podList  informer.Lister[*corev1.Pod]
	epList   informer.Lister[*corev1.Endpoints]
	recorder events.Recorder
	ctrl     *controllers.Controller
	log      *slog.Logger
}

// New builds the controller on the factory's shared Service, Pod and
// Endpoints informers; start the factory, then Run.
func New(f *informer.Factory, cs *typed.Clientset, rec events.Recorder, opts controllers.Options) (*Controller, error) {
	svcInf, podInf, epInf := f.Services(), f.Pods(), f.Endpoints()
	c := &Controller{
		cs:       cs,
		svcList:  svcInf.Lister(),
		podList:  podInf.Lister(),
		epList:   epInf.Lister(),
		recorder: rec,
	}
	ctrl, err := controllers.New(Name, c.reconcile, opts, svcInf, podInf, epInf)
	if err != nil {
		return nil, err
	}
	c.ctrl, c.log = ctrl, ctrl.Logger()
	if err := svcInf.AddEventHandler(ctrl.Handler()); err != nil {
		return nil, err
	}
	// Someone else changing or deleting an Endpoints we manage gets it
	// repaired; our own writes cause one reconcile that finds no change.
	if err := epInf.AddEventHandler(informer.Handler{
		UpdateFunc: func(_, obj runtime.Object) { ctrl.Enqueue(obj) },
		DeleteFunc: ctrl.Enqueue,
	}); err != nil {
		return nil, err
	}
	if err := podInf.AddEventHandler(informer.Handler{
		AddFunc: func(obj runtime.Object) { c.enqueueServicesOf(obj) },
		UpdateFunc: func(old, cur runtime.Object) {
			if old.(*corev1.Pod).ResourceVersion == cur.(*corev1.Pod).ResourceVersion {
				return
			}
			c.enqueueServicesOf(old)
			c.enqueueServicesOf(cur)
		},
		DeleteFunc: c.enqueueServicesOf,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run reconciles with workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error { return c.ctrl.Run(ctx, workers) }

// enqueueServicesOf enqueues every service whose selector matches the pod.
func (c *Controller) enqueueServicesOf(obj any) {
	pod, ok := informer.ObjectOf[*corev1.Pod](obj)
	if !ok {
		return
	}
	svcs, err := c.svcList.ListNamespace(pod.Namespace, labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			c.ctrl.Enqueue(svc)
		}
	}
}

// reconcile makes the Endpoints named like the service key list the
// service's pods.
func (c *Controller) reconcile(ctx context.Context, key string) (controllers.Result, error) {
	ns, name, err := informer.SplitMetaNamespaceKey(key)
	if err != nil {
		return controllers.Result{}, nil
	}
	svc, err := c.svcList.Get(ns, name)
	if apierrors.IsNotFound(err) {
		// The service is gone: so are its endpoints.
		if _, err := c.epList.Get(ns, name); apierrors.IsNotFound(err) {
			return controllers.Result{}, nil
		}
		err := c.cs.Endpoints.Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return controllers.Result{}, fmt.Errorf("endpoints %s: deleting for removed service: %w", key, err)
		}
		return controllers.Result{}, nil
	}
	if err != nil {
		return controllers.Result{}, fmt.Errorf("service %s: %w", key, err)
	}
	if len(svc.Spec.Selector) == 0 {
		return controllers.Result{}, nil // not ours: endpoints are managed by hand
	}
	pods, err := c.podList.ListNamespace(ns, labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return controllers.Result{}, fmt.Errorf("service %s: listing pods: %w", key, err)
	}
	subsets := ComputeSubsets(svc, pods)

	current, err := c.epList.Get(ns, name)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return controllers.Result{}, fmt.Errorf("endpoints %s: %w", key, err)
	}
	if exists && sameSubsets(current.Subsets, subsets) && maps.Equal(current.Labels, svc.Labels) {
		return controllers.Result{}, nil
	}
	client := c.cs.Endpoints.Namespace(ns)
	if !exists {
		ep := &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: maps.Clone(svc.Labels)},
			Subsets:    subsets,
		}
		if _, err := client.Create(ctx, ep, metav1.CreateOptions{}); err != nil {
			// AlreadyExists: our cache is behind; the retry sees it.
			c.failed(ctx, svc, err)
			return controllers.Result{}, fmt.Errorf("endpoints %s: create: %w", key, err)
		}
		c.log.Debug("created endpoints", "object", key, "reason", "ServiceSelector", "subsets", len(subsets))
		return controllers.Result{}, nil
	}
	next := current.DeepCopy()
	next.Subsets = subsets
	next.Labels = maps.Clone(svc.Labels)
	if _, err := client.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		c.failed(ctx, svc, err)
		return controllers.Result{}, fmt.Errorf("endpoints %s: update: %w", key, err)
	}
	c.log.Debug("updated endpoints", "object", key, "reason", "PodsChanged", "subsets", len(subsets))
	return controllers.Result{}, nil
}

func sameSubsets(a, b []corev1.EndpointSubset) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return equality.Semantic.DeepEqual(a, b)
}

// failed records a failed write on the service, except for the conflicts
// a retry resolves by itself.
func (c *Controller) failed(ctx context.Context, svc *corev1.Service, err error) {
	if ctx.Err() != nil || apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		return
	}
	c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpoint", "Failed to update endpoint %s/%s: %v", svc.Namespace, svc.Name, err)
}

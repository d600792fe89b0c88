package namespace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/controllers"
)

// Name is the controller's name in logs and metrics.
const Name = "namespace-controller"

// RecheckInterval is how often a terminating namespace whose content is
// not gone yet is looked at again. Content is not watched (it could be
// any kind), so this is a poll, as in Kubernetes.
const RecheckInterval = 2 * time.Second

// Controller is the Namespace controller.
type Controller struct {
	cs     *typed.Clientset
	nsList informer.Lister[*corev1.Namespace]
	ctrl   *controllers.Controller
	log    *slog.Logger
	now    func() time.Time
}

// New builds the controller on the factory's shared Namespace informer.
func New(f *informer.Factory, cs *typed.Clientset, opts controllers.Options) (*Controller, error) {
	inf := f.Namespaces()
	c := &Controller{cs: cs, nsList: inf.Lister(), now: time.Now}
	ctrl, err := controllers.New(Name, c.reconcile, opts, inf)
	if err != nil {
		return nil, err
	}
	c.ctrl, c.log = ctrl, ctrl.Logger()
	if err := inf.AddEventHandler(ctrl.Handler()); err != nil {
		return nil, err
	}
	return c, nil
}

// Run reconciles with workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error { return c.ctrl.Run(ctx, workers) }

func (c *Controller) reconcile(ctx context.Context, name string) (controllers.Result, error) {
	ns, err := c.nsList.Get("", name)
	if apierrors.IsNotFound(err) {
		return controllers.Result{}, nil
	}
	if err != nil {
		return controllers.Result{}, fmt.Errorf("namespace %s: %w", name, err)
	}
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return controllers.Result{}, nil
	}

	resources, err := Discover(ctx, c.cs.REST)
	if err != nil {
		c.setConditions(ctx, ns, cond(corev1.NamespaceDeletionDiscoveryFailure, true, "DiscoveryFailed", err.Error()))
		return controllers.Result{}, fmt.Errorf("namespace %s: %w", name, err)
	}
	var errs []error
	remaining := map[string]int{}
	finalizers := map[string]int{}
	for _, r := range resources {
		if err := r.deleteAll(ctx, c.cs.REST, name); err != nil {
			errs = append(errs, err)
			continue
		}
		left, err := r.remaining(ctx, c.cs.REST, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, m := range left {
			remaining[r.String()]++
			for _, f := range m.Finalizers {
				finalizers[f]++
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		c.setConditions(ctx, ns, cond(corev1.NamespaceDeletionContentFailure, true, "ContentDeletionFailed", err.Error()))
		return controllers.Result{}, fmt.Errorf("namespace %s: %w", name, err)
	}
	if len(remaining) > 0 {
		c.setConditions(ctx, ns,
			cond(corev1.NamespaceContentRemaining, true, "SomeResourcesRemain", "Some resources are remaining: "+summary(remaining, "instances")),
			cond(corev1.NamespaceFinalizersRemaining, len(finalizers) > 0, "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: "+summary(finalizers, "resource instances")))
		c.log.Info("waiting for namespace content to go", "object", name, "reason", "ContentRemaining", "remaining", summary(remaining, "instances"))
		return controllers.Result{RequeueAfter: RecheckInterval}, nil
	}

	next := ns.DeepCopy()
	next.Spec.Finalizers = slices.DeleteFunc(next.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	err = c.cs.REST.Put().GroupVersion(corev1.SchemeGroupVersion).Resource("namespaces").Name(name).SubResource("finalize").
		Body(next).Do(ctx).Error()
	if err != nil && !apierrors.IsNotFound(err) {
		return controllers.Result{}, fmt.Errorf("namespace %s: finalize: %w", name, err)
	}
	c.log.Info("namespace emptied; finalized", "object", name, "reason", "Finalized")
	return controllers.Result{}, nil
}

func summary(counts map[string]int, what string) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s has %d %s", k, counts[k], what)
	}
	return strings.Join(parts, ", ")
}

func cond(t corev1.NamespaceConditionType, on bool, reason, msg string) corev1.NamespaceCondition {
	c := corev1.NamespaceCondition{Type: t, Status: corev1.ConditionFalse}
	if on {
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, reason, msg
	}
	return c
}

// setConditions records conditions in the namespace's status (best
// effort: the deletion goes on regardless).
func (c *Controller) setConditions(ctx context.Context, ns *corev1.Namespace, conds ...corev1.NamespaceCondition) {
	next := ns.DeepCopy()
	changed := false
	now := metav1.NewTime(c.now())
	for _, want := range conds {
		i := slices.IndexFunc(next.Status.Conditions, func(x corev1.NamespaceCondition) bool { return x.Type == want.Type })
		switch {
		case i < 0:
			want.LastTransitionTime = now
			next.Status.Conditions = append(next.Status.Conditions, want)
			changed = true
		case next.Status.Conditions[i].Status != want.Status:
			want.LastTransitionTime = now
			next.Status.Conditions[i] = want
			changed = true
		case next.Status.Conditions[i].Reason != want.Reason || next.Status.Conditions[i].Message != want.Message:
			want.LastTransitionTime = next.Status.Conditions[i].LastTransitionTime
			next.Status.Conditions[i] = want
			changed = true
		}
	}
	if !changed {
		return
	}
	if _, err := c.cs.Namespaces.UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
		c.log.Debug("could not update namespace conditions", "object", ns.Name, "reason", "StatusUpdateFailed", "err", err)
	}
}

// Resource is a namespaced resource that can be listed and deleted.
type Resource struct {
	GroupVersion schema.GroupVersion
	Name         string
}

func (r Resource) String() string {
	return schema.GroupResource{Group: r.GroupVersion.Group, Resource: r.Name}.String()
}

func (r Resource) request(c *rest.Client, method, ns string) *rest.Request {
	return c.Verb(method).GroupVersion(r.GroupVersion).Namespace(ns).Resource(r.Name)
}

// deleteAll deletes every object of r in ns; dependents go in the
// background through the garbage collector.
func (r Resource) deleteAll(ctx context.Context, c *rest.Client, ns string) error {
	bg := metav1.DeletePropagationBackground
	err := r.request(c, "DELETE", ns).Body(&metav1.DeleteOptions{PropagationPolicy: &bg}).Do(ctx).Error()
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
		return fmt.Errorf("deleting all %s: %w", r, err)
	}
	return nil
}

// remaining lists what is left of r in ns (metadata only).
func (r Resource) remaining(ctx context.Context, c *rest.Client, ns string) ([]metav1.ObjectMeta, error) {
	raw, err := r.request(c, "GET", ns).Do(ctx).Raw()
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", r, err)
	}
	var list struct {
		Items []struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("listing %s: %w", r, err)
	}
	out := make([]metav1.ObjectMeta, len(list.Items))
	for i, it := range list.Items {
		out[i] = it.Metadata
	}
	return out, nil
}

// Discover lists the namespaced resources the server can list and delete
// collections of, from its discovery documents (preferred versions).
func Discover(ctx context.Context, c *rest.Client) ([]Resource, error) {
	gvs := []schema.GroupVersion{corev1.SchemeGroupVersion}
	raw, err := c.Get().AbsPath("/apis").Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("discovery /apis: %w", err)
	}
	var groups metav1.APIGroupList
	if err := json.Unmarshal(raw, &groups); err != nil {
		return nil, fmt.Errorf("discovery /apis: %w", err)
	}
	for _, g := range groups.Groups {
		gv, err := schema.ParseGroupVersion(g.PreferredVersion.GroupVersion)
		if err != nil {
			return nil, fmt.Errorf("discovery: group %s: %w", g.Name, err)
		}
		gvs = append(gvs, gv)
	}
	var out []Resource
	for _, gv := range gvs {
		path := "/apis/" + gv.String()
		if gv.Group == "" {
			path = "/api/" + gv.Version
		}
		raw, err := c.Get().AbsPath(path).Do(ctx).Raw()
		if err != nil {
			return nil, fmt.Errorf("discovery %s: %w", path, err)
		}
		var list metav1.APIResourceList
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("discovery %s: %w", path, err)
		}
		for _, r := range list.APIResources {
			if !r.Namespaced || strings.Contains(r.Name, "/") ||
				!slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "deletecollection") {
				continue
			}
			out = append(out, Resource{GroupVersion: gv, Name: r.Name})
		}
	}
	return out, nil
}

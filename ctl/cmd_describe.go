package ctl

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/spf13/cobra"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/api/scheme"
	"github.com/minik8s/minik8s/ctl/describe"
)

type describeOptions struct {
	files         fileFlags
	selector      string
	allNamespaces bool
	showEvents    bool
}

func newDescribeCommand(e *env) *cobra.Command {
	o := &describeOptions{}
	cmd := &cobra.Command{
		Use:   "describe (-f FILENAME | TYPE [NAME_PREFIX | -l label] | TYPE/NAME)",
		Short: "Show details of a specific resource or group of resources",
		Long: `Show a readable report on objects: what they are, their spec and status in
words, conditions, containers, endpoints or replica sets, and the recent
events about them (what the scheduler, kubelet and controllers did).

A NAME that matches no object exactly selects every object whose name starts
with it, so "ctl describe pods web" shows all the web-* pods.`,
		Example: examples(`
# a pod, and every pod whose name starts with web
ctl describe pod web-7d9f8-abcde
ctl describe pods web

# a deployment with its replica sets and events
ctl describe deploy/nginx-deployment

# everything labelled app=web, and what a file describes
ctl describe pods -l app=web
ctl describe -f examples/deployment.yaml`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, e, args)
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.files.filenames, "filename", "f", nil, "Describe the objects these files or directories define")
	f.BoolVarP(&o.files.recursive, "recursive", "R", false, "Read directories given with -f recursively")
	f.StringVarP(&o.selector, "selector", "l", "", "Label selector (e.g. -l app=web)")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "Describe matching objects in every namespace")
	f.BoolVar(&o.showEvents, "show-events", true, "Show the events about each object")
	return cmd
}

func (o *describeOptions) run(cmd *cobra.Command, e *env, args []string) error {
	ctx := cmd.Context()
	if len(args) == 0 && len(o.files.filenames) == 0 {
		return usageError(cmd, "you must specify the type of resource to describe, e.g. `ctl describe pod NAME`; `ctl api-resources` lists the types")
	}
	if _, err := e.client(); err != nil {
		return err
	}
	ns, err := e.ns()
	if err != nil {
		return err
	}
	if o.allNamespaces {
		ns = ""
	}
	var sels []*selection
	if len(o.files.filenames) > 0 {
		sels, err = e.selectionsFromFiles(ctx, o.files.filenames, o.files.recursive)
	} else {
		sels, err = e.parseArgs(ctx, args)
	}
	if err != nil {
		return err
	}
	var objs []*unstructured.Unstructured
	var ms []*mapping
	failed := false
	for _, s := range sels {
		sns := selNamespace(s, ns)
		if s.names == nil {
			items, _, err := e.listObjects(ctx, s.m, sns, metav1.ListOptions{LabelSelector: o.selector})
			if err != nil {
				return err
			}
			for _, it := range items {
				objs, ms = append(objs, it), append(ms, s.m)
			}
			continue
		}
		for _, name := range s.names {
			found, err := e.describeLookup(ctx, s.m, sns, name)
			if err != nil {
				e.reportError(err)
				failed = true
				continue
			}
			for _, it := range found {
				objs, ms = append(objs, it), append(ms, s.m)
			}
		}
	}
	if len(objs) == 0 && !failed {
		e.noResources(sels, ns)
		return nil
	}
	for i, obj := range objs {
		if i > 0 {
			fmt.Fprint(e.streams.Out, "\n\n")
		}
		if err := e.describeOne(ctx, ms[i], obj, o.showEvents); err != nil {
			e.reportError(err)
			failed = true
		}
	}
	if failed {
		return errPrinted
	}
	return nil
}

// describeLookup finds the named object, or, failing that, the objects
// whose names start with name.
func (e *env) describeLookup(ctx context.Context, m *mapping, ns, name string) ([]*unstructured.Unstructured, error) {
	obj, err := e.getObject(ctx, m, ns, name)
	if err == nil {
		return []*unstructured.Unstructured{obj}, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	items, _, lerr := e.listObjects(ctx, m, ns, metav1.ListOptions{})
	if lerr != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, it := range items {
		if strings.HasPrefix(it.GetName(), name) {
			out = append(out, it)
		}
	}
	if len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// typedOf converts an unstructured object to its Go type when the scheme
// knows it.
func typedOf(u *unstructured.Unstructured) runtime.Object {
	t, err := scheme.Scheme.New(u.GroupVersionKind())
	if err != nil {
		return u
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, t); err != nil {
		return u
	}
	return t
}

func (e *env) describeOne(ctx context.Context, m *mapping, u *unstructured.Unstructured, showEvents bool) error {
	obj := typedOf(u)
	x := describe.Extras{NoEvents: !showEvents}
	mp, err := e.discovery(ctx)
	if err != nil {
		return err
	}
	ns := u.GetNamespace()
	switch v := obj.(type) {
	case *appsv1.Deployment:
		if rsm, err := mp.resource("replicasets.apps"); err == nil {
			items, _, err := e.listObjects(ctx, rsm, ns, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, it := range items {
				if !controlledBy(it, v.UID) {
					continue
				}
				if rs, ok := typedOf(it).(*appsv1.ReplicaSet); ok {
					x.ReplicaSets = append(x.ReplicaSets, *rs)
				}
			}
		}
	case *appsv1.ReplicaSet:
		if pm, err := mp.resource("pods"); err == nil && v.Spec.Selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(v.Spec.Selector)
			if err == nil && !sel.Empty() {
				items, _, err := e.listObjects(ctx, pm, ns, metav1.ListOptions{LabelSelector: sel.String()})
				if err != nil {
					return err
				}
				for _, it := range items {
					if p, ok := typedOf(it).(*corev1.Pod); ok && controlledBy(it, v.UID) {
						x.Pods = append(x.Pods, *p)
					}
				}
			}
		}
	case *corev1.Service:
		if em, err := mp.resource("endpoints"); err == nil {
			ep, err := e.getObject(ctx, em, ns, v.Name)
			if err == nil {
				x.Endpoints, _ = typedOf(ep).(*corev1.Endpoints)
			} else if !apierrors.IsNotFound(err) {
				return err
			}
		}
	case *corev1.Node:
		if pm, err := mp.resource("pods"); err == nil {
			items, _, err := e.listObjects(ctx, pm, "", metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("spec.nodeName", v.Name).String()})
			if err != nil {
				return err
			}
			for _, it := range items {
				if p, ok := typedOf(it).(*corev1.Pod); ok && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
					x.Pods = append(x.Pods, *p)
				}
			}
		}
	}
	if showEvents {
		evs, err := e.eventsFor(ctx, m, u)
		if err != nil {
			return err
		}
		x.Events = evs
	}
	return describe.Describe(e.streams.Out, obj, x, e.now())
}

func controlledBy(u *unstructured.Unstructured, uid any) bool {
	for _, r := range u.GetOwnerReferences() {
		if r.Controller != nil && *r.Controller && fmt.Sprint(r.UID) == fmt.Sprint(uid) {
			return true
		}
	}
	return false
}

// eventsFor lists the events about an object: same kind, namespace and
// name, and the same uid when the event records one (so events about an
// earlier object of the same name are left out).
func (e *env) eventsFor(ctx context.Context, m *mapping, u *unstructured.Unstructured) ([]corev1.Event, error) {
	mp, err := e.discovery(ctx)
	if err != nil {
		return nil, err
	}
	em, err := mp.resource("events")
	if err != nil {
		return nil, nil // a server without events
	}
	set := fields.Set{"involvedObject.kind": m.Kind, "involvedObject.name": u.GetName()}
	ns := ""
	if m.Namespaced {
		ns = u.GetNamespace()
		set["involvedObject.namespace"] = ns
	}
	items, _, err := e.listObjects(ctx, em, ns, metav1.ListOptions{FieldSelector: set.AsSelector().String()})
	if err != nil {
		return nil, err
	}
	var out []corev1.Event
	for _, it := range items {
		ev, ok := typedOf(it).(*corev1.Event)
		if !ok {
			continue
		}
		if ev.InvolvedObject.UID != "" && ev.InvolvedObject.UID != u.GetUID() {
			continue
		}
		out = append(out, *ev)
	}
	return out, nil
}

package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/ctl/printer"
)

// The generic verbs below work on any resource discovery lists, with
// objects as unstructured JSON.

// writeOpts are the options of create, update and patch requests.
type writeOpts struct {
	dryRun          bool   // ?dryRun=All (server-side dry run)
	fieldValidation string // Strict, Warn, Ignore or ""
}

func (o writeOpts) params() metav1.CreateOptions {
	c := metav1.CreateOptions{FieldValidation: o.fieldValidation, FieldManager: "ctl"}
	if o.dryRun {
		c.DryRun = []string{metav1.DryRunAll}
	}
	return c
}

func (e *env) req(verb string, m *mapping, ns string) *rest.Request {
	r := e.rc.Verb(verb).Group(m.Group).Version(m.Version)
	if m.Namespaced && ns != "" {
		r = r.Namespace(ns)
	}
	return r.Resource(m.Resource)
}

func decodeObject(data []byte) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("decoding server answer: %w", err)
	}
	return u, nil
}

func (e *env) getObject(ctx context.Context, m *mapping, ns, name string) (*unstructured.Unstructured, error) {
	body, err := e.req(http.MethodGet, m, ns).Name(name).Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	return decodeObject(body)
}

// listObjects lists objects; items get their apiVersion and kind (the
// server leaves them out of list items, as Kubernetes does).
func (e *env) listObjects(ctx context.Context, m *mapping, ns string, opts metav1.ListOptions) ([]*unstructured.Unstructured, string, error) {
	body, err := e.req(http.MethodGet, m, ns).Params(rest.ListParams(opts)).Do(ctx).Raw()
	if err != nil {
		return nil, "", err
	}
	list := &unstructured.UnstructuredList{}
	if err := list.UnmarshalJSON(body); err != nil {
		return nil, "", fmt.Errorf("decoding %s list: %w", m.GroupResource(), err)
	}
	out := make([]*unstructured.Unstructured, len(list.Items))
	for i := range list.Items {
		it := &list.Items[i]
		it.SetAPIVersion(m.GroupVersion().String())
		it.SetKind(m.Kind)
		out[i] = it
	}
	return out, list.GetResourceVersion(), nil
}

// getTable asks the server for the Table of one object (name != "") or of
// a list.
func (e *env) getTable(ctx context.Context, m *mapping, ns, name string, opts metav1.ListOptions, includeObject bool) (*metav1.Table, error) {
	r := e.req(http.MethodGet, m, ns)
	if name != "" {
		r = r.Name(name)
	} else {
		r = r.Params(rest.ListParams(opts))
	}
	if includeObject {
		r = r.Param("includeObject", "Object")
	}
	body, err := r.Do(withAccept(ctx, tableAccept)).Raw()
	if err != nil {
		return nil, err
	}
	return printer.DecodeTable(body)
}

func (e *env) createObject(ctx context.Context, m *mapping, ns string, obj *unstructured.Unstructured, o writeOpts) (*unstructured.Unstructured, error) {
	data, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	body, err := e.req(http.MethodPost, m, ns).Params(rest.CreateParams(o.params())).Body(data).Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	return decodeObject(body)
}

func (e *env) updateObject(ctx context.Context, m *mapping, ns string, obj *unstructured.Unstructured, o writeOpts) (*unstructured.Unstructured, error) {
	data, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	p := o.params()
	body, err := e.req(http.MethodPut, m, ns).Name(obj.GetName()).
		Params(rest.UpdateParams(metav1.UpdateOptions{DryRun: p.DryRun, FieldManager: p.FieldManager, FieldValidation: p.FieldValidation})).
		Body(data).Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	return decodeObject(body)
}

func (e *env) patchObject(ctx context.Context, m *mapping, ns, name string, pt types.PatchType, patch []byte, o writeOpts, sub ...string) (*unstructured.Unstructured, error) {
	p := o.params()
	body, err := e.rc.Patch(string(pt)).Group(m.Group).Version(m.Version).Namespace(nsIf(m, ns)).Resource(m.Resource).
		Name(name).SubResource(sub...).
		Params(rest.PatchParams(metav1.PatchOptions{DryRun: p.DryRun, FieldManager: p.FieldManager, FieldValidation: p.FieldValidation})).
		Body(patch).Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	return decodeObject(body)
}

func nsIf(m *mapping, ns string) string {
	if m.Namespaced {
		return ns
	}
	return ""
}

func (e *env) deleteObject(ctx context.Context, m *mapping, ns, name string, opts metav1.DeleteOptions) (*unstructured.Unstructured, error) {
	opts.TypeMeta = metav1.TypeMeta{Kind: "DeleteOptions", APIVersion: "meta.k8s.io/v1"}
	data, err := json.Marshal(&opts)
	if err != nil {
		return nil, err
	}
	r := e.req(http.MethodDelete, m, ns).Name(name).Body(data)
	for _, d := range opts.DryRun {
		r = r.Param("dryRun", d)
	}
	body, err := r.Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	// The answer is the object's last state, or a Status for objects gone
	// at once on some servers.
	u, err := decodeObject(body)
	if err != nil || u.GetKind() == "Status" {
		return nil, nil
	}
	return u, nil
}

// watchObjects watches a resource; with table set the events carry
// one-row Tables, else the objects.
func (e *env) watchObjects(ctx context.Context, m *mapping, ns string, opts metav1.ListOptions, table bool) (watch.Interface, error) {
	opts.Watch = true
	r := e.req(http.MethodGet, m, ns).Params(rest.ListParams(opts))
	if table {
		return r.Watch(withAccept(ctx, tableAccept), func() runtime.Object { return &metav1.Table{} })
	}
	return r.Watch(ctx, func() runtime.Object { return &unstructured.Unstructured{} })
}

func metav1ListLabel(sel string) metav1.ListOptions { return metav1.ListOptions{LabelSelector: sel} }

package typed

import (
	"context"
	"fmt"
	"net/http"
	"reflect"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik8s/minik8s/client/rest"
)

// Resource identifies a REST resource: where it lives and whether its
// objects belong to namespaces.
type Resource struct {
	Group      string // "" for the core group
	Version    string // e.g. "v1"
	Resource   string // plural, lower case, e.g. "pods"
	Namespaced bool
}

// GroupVersion is the resource's API group/version.
func (r Resource) GroupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: r.Group, Version: r.Version}
}

// GroupVersionResource is the resource's full name.
func (r Resource) GroupVersionResource() schema.GroupVersionResource {
	return r.GroupVersion().WithResource(r.Resource)
}

// String is "pods" or "deployments.apps", as Kubernetes prints resources.
func (r Resource) String() string {
	return schema.GroupResource{Group: r.Group, Resource: r.Resource}.String()
}

// Client is a typed client for one resource. T is the object pointer type
// (*corev1.Pod) and L its list type (*corev1.PodList). A Client is bound to
// one namespace ("" = all namespaces, or a cluster-scoped resource); it is
// immutable and safe for concurrent use.
type Client[T runtime.Object, L runtime.Object] struct {
	rest *rest.Client
	res  Resource
	ns   string
	// newT and newL make empty objects to decode into. They are built once
	// with reflection because Go cannot say "new(*T's element)" in generics.
	newT func() T
	newL func() L
	err  error // set when T or L is not a pointer type
}

// New returns a typed client for res over c, scoped to all namespaces; use
// Namespace to scope it.
func New[T runtime.Object, L runtime.Object](c *rest.Client, res Resource) *Client[T, L] {
	cl := &Client[T, L]{rest: c, res: res}
	var err error
	if cl.newT, err = maker[T](); err != nil {
		cl.err = err
	}
	if cl.newL, err = maker[L](); err != nil && cl.err == nil {
		cl.err = err
	}
	if c == nil && cl.err == nil {
		cl.err = fmt.Errorf("typed client for %s: nil rest client", res)
	}
	return cl
}

// maker returns a constructor of fresh *X values for a type parameter that
// must be *X.
func maker[P any]() (func() P, error) {
	t := reflect.TypeFor[P]()
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return func() P { var zero P; return zero }, fmt.Errorf("typed client: %v is not a pointer to a struct", t)
	}
	elem := t.Elem()
	return func() P { return reflect.New(elem).Interface().(P) }, nil
}

// Namespace returns a client scoped to ns. For a cluster-scoped resource
// the namespace is ignored.
func (c *Client[T, L]) Namespace(ns string) *Client[T, L] {
	cp := *c
	if c.res.Namespaced {
		cp.ns = ns
	}
	return &cp
}

// Resource is the resource this client serves.
func (c *Client[T, L]) Resource() Resource { return c.res }

// NamespaceScope is the namespace the client is bound to ("" = all).
func (c *Client[T, L]) NamespaceScope() string { return c.ns }

// REST is the underlying REST client, for requests the typed verbs lack.
func (c *Client[T, L]) REST() *rest.Client { return c.rest }

// New returns an empty T, e.g. for decoding.
func (c *Client[T, L]) New() T { return c.newT() }

// NewList returns an empty L.
func (c *Client[T, L]) NewList() L { return c.newL() }

// request starts a request for this resource in namespace ns.
func (c *Client[T, L]) request(verb, ns string) *rest.Request {
	r := c.rest.Verb(verb).GroupVersion(c.res.GroupVersion())
	if c.res.Namespaced && ns != "" {
		r = r.Namespace(ns)
	}
	return r.Resource(c.res.Resource)
}

// objectNamespace is the namespace a write of obj goes to: the client's,
// or, for an all-namespaces client, the object's own.
func (c *Client[T, L]) objectNamespace(obj metav1.Object) string {
	if c.ns != "" {
		return c.ns
	}
	return obj.GetNamespace()
}

// Get reads one object.
func (c *Client[T, L]) Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error) {
	out := c.newT()
	if c.err != nil {
		return out, c.err
	}
	err := c.request(http.MethodGet, c.ns).Name(name).Params(rest.GetParams(opts)).Do(ctx).Into(out)
	return out, err
}

// List reads the objects matching opts (label/field selectors, paging,
// resourceVersion semantics as in Kubernetes).
func (c *Client[T, L]) List(ctx context.Context, opts metav1.ListOptions) (L, error) {
	out := c.newL()
	if c.err != nil {
		return out, c.err
	}
	opts.Watch = false
	err := c.request(http.MethodGet, c.ns).Params(rest.ListParams(opts)).Do(ctx).Into(out)
	return out, err
}

// Watch streams changes from opts.ResourceVersion on. Events carry T.
func (c *Client[T, L]) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	if c.err != nil {
		return nil, c.err
	}
	opts.Watch = true
	return c.request(http.MethodGet, c.ns).Params(rest.ListParams(opts)).
		Watch(ctx, func() runtime.Object { return c.newT() })
}

// Create stores a new object. For an all-namespaces client the object's
// metadata.namespace says where.
func (c *Client[T, L]) Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error) {
	out := c.newT()
	if c.err != nil {
		return out, c.err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return out, fmt.Errorf("create %s: %w", c.res, err)
	}
	err = c.request(http.MethodPost, c.objectNamespace(m)).Body(obj).Params(rest.CreateParams(opts)).Do(ctx).Into(out)
	return out, err
}

// Update replaces an object (PUT). metadata.resourceVersion makes it a
// compare-and-swap: a stale object fails with a Conflict.
func (c *Client[T, L]) Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error) {
	return c.put(ctx, obj, opts, "")
}

// UpdateStatus replaces an object's status (PUT .../status); the server
// ignores spec changes there.
func (c *Client[T, L]) UpdateStatus(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error) {
	return c.put(ctx, obj, opts, "status")
}

func (c *Client[T, L]) put(ctx context.Context, obj T, opts metav1.UpdateOptions, sub string) (T, error) {
	out := c.newT()
	if c.err != nil {
		return out, c.err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return out, fmt.Errorf("update %s: %w", c.res, err)
	}
	r := c.request(http.MethodPut, c.objectNamespace(m)).Name(m.GetName())
	if sub != "" {
		r = r.SubResource(sub)
	}
	err = r.Body(obj).Params(rest.UpdateParams(opts)).Do(ctx).Into(out)
	return out, err
}

// Patch applies a patch of type pt (JSON patch, merge patch, strategic
// merge patch or apply) to the object or to one of its subresources.
func (c *Client[T, L]) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error) {
	out := c.newT()
	if c.err != nil {
		return out, c.err
	}
	err := c.rest.Patch(string(pt)).GroupVersion(c.res.GroupVersion()).
		Namespace(c.ns).Resource(c.res.Resource).Name(name).SubResource(subresources...).
		Body(data).Params(rest.PatchParams(opts)).Do(ctx).Into(out)
	return out, err
}

// Delete deletes one object. opts (preconditions, propagationPolicy,
// gracePeriodSeconds, dryRun) travel in the body as Kubernetes expects.
func (c *Client[T, L]) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	if c.err != nil {
		return c.err
	}
	return c.request(http.MethodDelete, c.ns).Name(name).Body(&opts).Do(ctx).Error()
}

// DeleteCollection deletes every object matching listOpts in the client's
// namespace.
func (c *Client[T, L]) DeleteCollection(ctx context.Context, opts metav1.DeleteOptions, listOpts metav1.ListOptions) error {
	if c.err != nil {
		return c.err
	}
	return c.request(http.MethodDelete, c.ns).Params(rest.ListParams(listOpts)).Body(&opts).Do(ctx).Error()
}

package registry

import (
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Resource is one REST resource, e.g. pods in core/v1 or deployments in apps/v1.
type Resource struct {
	Group, Version string
	Resource       string // plural, lower case: "pods"
	Singular       string // "pod"
	Kind           string // "Pod"
	ListKind       string // "PodList"
	ShortNames     []string
	Namespaced     bool
	// Categories groups resources for `get all`.
	Categories []string

	New     func() runtime.Object
	NewList func() runtime.Object

	// HasStatus means the object has a spec/status split: main writes
	// ignore status, /status writes ignore everything but status, and
	// metadata.generation counts spec changes.
	HasStatus bool
	// Scale, when set, exposes the autoscaling/v1 Scale subresource.
	Scale *ScaleAccess
	// Encrypt stores the object encrypted at rest.
	Encrypt bool
	// CreateOnly resources (bindings) only accept POST.
	CreateOnly bool

	Strategy Strategy
	// Binder is set for pods (the binding subresource).
	Binder *Binder
	// Finalize is set for namespaces (the finalize subresource).
	Finalize Finalizer
	// Fields returns the selectable fields beyond metadata.name and
	// metadata.namespace (e.g. spec.nodeName for pods). May be nil.
	Fields func(obj runtime.Object) fields.Set
	// Columns and Row make the server-side Table for `kubectl get`.
	Columns []metav1.TableColumnDefinition
	Row     func(obj runtime.Object) []any
}

// GroupVersion is the resource's API group and version.
func (r *Resource) GroupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: r.Group, Version: r.Version}
}

// GroupResource names the resource in errors ("pods", "deployments.apps").
func (r *Resource) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.Group, Resource: r.Resource}
}

// GroupKind names the kind in validation errors.
func (r *Resource) GroupKind() schema.GroupKind {
	return schema.GroupKind{Group: r.Group, Kind: r.Kind}
}

// Prefix is the etcd key prefix of the resource: "/registry/pods/".
// Group-qualified resources that could collide keep Kubernetes' plain
// layout ("/registry/deployments/"), which is what `etcdctl get --prefix`
// shows on a real cluster too.
func (r *Resource) Prefix() string { return "/registry/" + r.Resource + "/" }

// Key is the etcd key of one object.
func (r *Resource) Key(namespace, name string) string {
	if r.Namespaced {
		return r.Prefix() + namespace + "/" + name
	}
	return r.Prefix() + name
}

// NamespacePrefix is the prefix listing one namespace ("" = all).
func (r *Resource) NamespacePrefix(namespace string) string {
	if r.Namespaced && namespace != "" {
		return r.Prefix() + namespace + "/"
	}
	return r.Prefix()
}

// Attrs returns labels and selectable fields; it is the storage AttrFunc.
func (r *Resource) Attrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	m, err := metaOf(obj)
	if err != nil {
		return nil, nil, err
	}
	fs := fields.Set{"metadata.name": m.GetName()}
	if r.Namespaced {
		fs["metadata.namespace"] = m.GetNamespace()
	}
	if r.Fields != nil {
		for k, v := range r.Fields(obj) {
			fs[k] = v
		}
	}
	return labels.Set(m.GetLabels()), fs, nil
}

// Strategy holds the kind-specific rules. The generic ones (metadata,
// generation, status split) are applied by the REST layer; a Strategy only
// adds what is special about its kind. Embed DefaultStrategy to get no-ops.
type Strategy interface {
	// PrepareForCreate resets what a client may not set on create (e.g. a
	// Pod's status becomes Pending).
	PrepareForCreate(obj runtime.Object)
	// PrepareForUpdate fixes up newObj from oldObj before validation.
	PrepareForUpdate(newObj, oldObj runtime.Object)
	Validate(obj runtime.Object) field.ErrorList
	ValidateUpdate(newObj, oldObj runtime.Object) field.ErrorList
	// ValidateStatusUpdate checks a /status write (e.g. a finished pod
	// never changes phase again).
	ValidateStatusUpdate(newObj, oldObj runtime.Object) field.ErrorList
}

// ScaleAccess reads and writes the replica count behind /scale.
type ScaleAccess struct {
	// Replicas returns spec.replicas, status.replicas and the label
	// selector in its string form.
	Get func(obj runtime.Object) (specReplicas, statusReplicas int32, selector string)
	Set func(obj runtime.Object, replicas int32)
}

// GracefulDeleter is implemented by strategies whose objects linger after a
// delete request: pods wait for their kubelet to stop the containers,
// namespaces wait for their content to be removed.
type GracefulDeleter interface {
	// GracePeriod is how long the object may take to go away, given the
	// grace period the client asked for (nil = none given). 0 = now.
	GracePeriod(obj runtime.Object, requested *int64) int64
	// BeginDelete marks the object as being deleted (e.g. a Namespace's
	// phase becomes Terminating); called once, when deletion starts.
	BeginDelete(obj runtime.Object)
	// Held reports whether something besides metadata.finalizers still
	// holds the object (a Namespace's spec.finalizers).
	Held(obj runtime.Object) bool
}

// Binder assigns a pod to a node (pods/binding).
type Binder struct {
	New   func() runtime.Object // a new Binding
	Apply func(pod, binding runtime.Object, now metav1.Time) error
}

// Finalizer applies a namespaces/{name}/finalize write: only the
// spec.finalizers of the incoming object are taken.
type Finalizer func(incoming, stored runtime.Object) runtime.Object

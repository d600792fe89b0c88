package storage

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// Interface is what the REST layer needs from persistence. One Interface
// value serves one resource (one key prefix such as "/registry/pods/"), so it
// knows how to make new objects of that resource and may keep a watch cache
// for it; keys are full etcd keys such as "/registry/pods/default/web-1" and
// list/watch prefixes end with "/".
//
// Every object returned carries metadata.resourceVersion = the etcd
// ModRevision of its key (for lists: the store revision of the read).
type Interface interface {
	// Create stores obj under key only if key does not exist yet.
	// out receives the stored object with its resourceVersion.
	// Fails with a *Error of code ErrCodeKeyExists.
	Create(ctx context.Context, key string, obj, out runtime.Object) error

	// Get decodes the object at key into out. ErrCodeKeyNotFound if absent.
	Get(ctx context.Context, key string, out runtime.Object) error

	// GetList fills listObj (a *XxxList) with the objects under prefix that
	// match opts.Predicate, honouring Limit/Continue and ResourceVersion.
	GetList(ctx context.Context, prefix string, opts ListOptions, listObj runtime.Object) error

	// GuaranteedUpdate reads key, calls tryUpdate with the current object and
	// writes the result with a compare-and-swap on ModRevision, retrying the
	// read+tryUpdate on a lost race. tryUpdate may return an error to abort
	// (that error is returned as is). If tryUpdate returns the input
	// unchanged (semantically equal bytes), no write happens.
	// precond (may be nil) is checked against the current object on every try.
	// out receives the stored object. ErrCodeKeyNotFound if the key is absent.
	//
	// cached, if not nil, is the object as a cache last saw it (a copy the
	// store may keep and hand to tryUpdate). The store may start from it
	// instead of reading, saving a round trip when the cache is current,
	// but must treat it as possibly stale: the compare-and-swap on its
	// resourceVersion catches a changed object, and a precondition
	// failure, a tryUpdate error or a no-op result on it are only believed
	// after a retry on the stored object. The watch cache passes its copy;
	// other callers pass nil.
	GuaranteedUpdate(ctx context.Context, key string, out runtime.Object, precond *Preconditions,
		tryUpdate func(current runtime.Object) (runtime.Object, error), cached runtime.Object) error

	// Delete removes key if precond holds and validate (may be nil) accepts
	// the current object; out receives the last state of the object.
	Delete(ctx context.Context, key string, out runtime.Object, precond *Preconditions,
		validate func(current runtime.Object) error) error

	// Watch streams changes under prefix (or of exactly key when prefix does
	// not end with "/"), filtered by opts.Predicate. See WatchOptions for the
	// resourceVersion semantics. ErrCodeExpired (-> HTTP 410) when the
	// requested revision is compacted.
	Watch(ctx context.Context, prefix string, opts WatchOptions) (watch.Interface, error)

	// Revision returns the current etcd revision (used for empty lists and
	// bookmarks).
	Revision(ctx context.Context) (int64, error)
}

// AttrFunc returns the labels and selectable fields of an object; each
// resource supplies its own (pods add spec.nodeName, status.phase, ...).
type AttrFunc func(obj runtime.Object) (labels.Set, fields.Set, error)

// Predicate selects objects by label and field selectors.
type Predicate struct {
	Label    labels.Selector // nil = everything
	Field    fields.Selector // nil = everything
	GetAttrs AttrFunc
}

// Matches reports whether obj is selected. A nil/empty predicate matches all.
func (p Predicate) Matches(obj runtime.Object) (bool, error) {
	if p.Empty() {
		return true, nil
	}
	l, f, err := p.GetAttrs(obj)
	if err != nil {
		return false, err
	}
	if p.Label != nil && !p.Label.Matches(l) {
		return false, nil
	}
	if p.Field != nil && !p.Field.Matches(f) {
		return false, nil
	}
	return true, nil
}

// Empty reports whether the predicate selects everything.
func (p Predicate) Empty() bool {
	return (p.Label == nil || p.Label.Empty()) && (p.Field == nil || p.Field.Empty())
}

// ListOptions carries list parameters straight from the query string.
type ListOptions struct {
	Predicate Predicate
	// ResourceVersion "" = most recent (quorum read from etcd);
	// "0" = any (may be served from the watch cache); "N" = at least N
	// (served consistently at or after N).
	ResourceVersion string
	// Limit > 0 enables paging; Continue is the opaque token from a
	// previous page (it pins the revision of the first page; 410 if that
	// revision was compacted).
	Limit    int64
	Continue string
}

// WatchOptions carries watch parameters.
type WatchOptions struct {
	Predicate Predicate
	// ResourceVersion "" or "0": start with synthetic ADDED events for
	// every current object, then follow changes. "N": deliver every change
	// after revision N exactly once (410 Expired if N is compacted).
	ResourceVersion string
	// SendInitialEvents is reserved; AllowBookmarks makes the stream carry
	// periodic BOOKMARK events with the latest revision.
	AllowBookmarks bool
}

// Preconditions are checked against the object currently stored.
type Preconditions struct {
	UID             *types.UID
	ResourceVersion *string
}

// Transformer encrypts values at rest (e.g. Secrets). key is the etcd key,
// used as additional authenticated data so a value cannot be moved.
type Transformer interface {
	TransformToStorage(key string, plain []byte) ([]byte, error)
	TransformFromStorage(key string, stored []byte) ([]byte, error)
}

// WithDefaultAttrs returns p with GetAttrs filled in when it has selectors
// but no GetAttrs (which would otherwise be a nil call): the attributes every
// object has, its labels, metadata.name and metadata.namespace.
func (p Predicate) WithDefaultAttrs() Predicate {
	if p.GetAttrs == nil && !p.Empty() {
		p.GetAttrs = metaAttrs
	}
	return p
}

func metaAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("selector attributes: %w", err)
	}
	return labels.Set(acc.GetLabels()), fields.Set{
		"metadata.name":      acc.GetName(),
		"metadata.namespace": acc.GetNamespace(),
	}, nil
}

package informer

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Lister reads T objects from an informer's store. The objects are shared
// with the cache: never modify them; DeepCopy first.
type Lister[T runtime.Object] struct {
	idx *Indexer
	gr  schema.GroupResource
}

// NewLister returns a Lister over inf's store.
func NewLister[T runtime.Object](inf *Informer) Lister[T] {
	return Lister[T]{idx: inf.Indexer(), gr: inf.Resource()}
}

// NewListerForIndexer returns a Lister over any Indexer; gr names the
// resource in NotFound errors.
func NewListerForIndexer[T runtime.Object](idx *Indexer, gr schema.GroupResource) Lister[T] {
	return Lister[T]{idx: idx, gr: gr}
}

// List returns the cached objects whose labels match sel (nil = all).
func (l Lister[T]) List(sel labels.Selector) ([]T, error) {
	return l.filter(l.idx.List(), sel)
}

// ListNamespace returns the objects in namespace ns whose labels match sel.
func (l Lister[T]) ListNamespace(ns string, sel labels.Selector) ([]T, error) {
	objs, err := l.idx.ByIndex(NamespaceIndex, ns)
	if err != nil {
		return nil, err
	}
	return l.filter(objs, sel)
}

// Get returns the object ns/name (ns "" for cluster-scoped objects), or a
// NotFound API error, so callers can use apierrors.IsNotFound.
func (l Lister[T]) Get(ns, name string) (T, error) {
	key := name
	if ns != "" {
		key = ns + "/" + name
	}
	var zero T
	obj, ok := l.idx.Get(key)
	if !ok {
		return zero, apierrors.NewNotFound(l.gr, name)
	}
	t, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("%s %s: cached object is %T, not %T", l.gr, key, obj, zero)
	}
	return t, nil
}

// ByIndex returns the objects filed under value in the named index.
func (l Lister[T]) ByIndex(index, value string) ([]T, error) {
	objs, err := l.idx.ByIndex(index, value)
	if err != nil {
		return nil, err
	}
	return l.filter(objs, nil)
}

func (l Lister[T]) filter(objs []runtime.Object, sel labels.Selector) ([]T, error) {
	out := make([]T, 0, len(objs))
	for _, obj := range objs {
		t, ok := obj.(T)
		if !ok {
			var zero T
			return nil, fmt.Errorf("%s: cached object is %T, not %T", l.gr, obj, zero)
		}
		if sel != nil && !sel.Empty() {
			m, err := meta.Accessor(obj)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", l.gr, err)
			}
			if !sel.Matches(labels.Set(m.GetLabels())) {
				continue
			}
		}
		out = append(out, t)
	}
	return out, nil
}

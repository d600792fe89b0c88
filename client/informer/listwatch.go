package informer

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// ListerWatcher is where an informer gets objects from: a list returning a
// *XxxList with metadata.resourceVersion, and a watch from a resourceVersion.
type ListerWatcher interface {
	List(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// TypedListerWatcher is what a typed client (typed.Client[T, L]) offers.
type TypedListerWatcher[L runtime.Object] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// FromTyped adapts a typed client (already scoped to its namespace) into a
// ListerWatcher. tweak, if non-nil, adjusts every list and watch request,
// e.g. to add a field selector such as spec.nodeName=<node>.
func FromTyped[L runtime.Object](c TypedListerWatcher[L], tweak func(*metav1.ListOptions)) ListerWatcher {
	return &typedLW[L]{c: c, tweak: tweak}
}

type typedLW[L runtime.Object] struct {
	c     TypedListerWatcher[L]
	tweak func(*metav1.ListOptions)
}

func (t *typedLW[L]) List(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	if t.tweak != nil {
		t.tweak(&opts)
	}
	l, err := t.c.List(ctx, opts)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (t *typedLW[L]) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	if t.tweak != nil {
		t.tweak(&opts)
	}
	return t.c.Watch(ctx, opts)
}

package cacher

import (
	"context"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik8s/minik8s/apiserver/storage"
)

// delivery is an event queued for one watcher. obj is the cache's shared
// object: it is copied only when sent, off the fan-out path.
type delivery struct {
	typ watch.EventType
	obj runtime.Object // nil for bookmarks
	rev int64          // if set, the resourceVersion to stamp on the copy
}

// cacheWatcher is one API watch served from the cache. The cache's
// fan-out only ever does non-blocking sends into input; the watcher's own
// goroutine (process) copies and delivers to the client, and is the only
// one to close result.
type cacheWatcher struct {
	c         *Cacher
	id        int
	match     func(key string) bool
	pred      storage.Predicate
	bookmarks bool
	minRev    int64 // only events after this revision are delivered

	initial []delivery // sent before anything from input
	input   chan delivery
	result  chan watch.Event

	ctx      context.Context
	cancel   func()
	done     chan struct{}
	stopOnce sync.Once
}

func (w *cacheWatcher) ResultChan() <-chan watch.Event { return w.result }

// Stop ends the watch and waits until its goroutine has exited (and the
// result channel is closed).
func (w *cacheWatcher) Stop() {
	w.stopOnce.Do(func() {
		w.c.removeWatcher(w.id)
		w.cancel()
		<-w.done
	})
}

func (w *cacheWatcher) process() {
	defer close(w.done)
	defer close(w.result)
	defer w.c.removeWatcher(w.id)
	defer w.cancel()
	for _, d := range w.initial {
		if !w.send(d) {
			return
		}
	}
	w.initial = nil
	for {
		select {
		case <-w.ctx.Done():
			return
		case d := <-w.input:
			if !w.send(d) {
				return
			}
		}
	}
}

func (w *cacheWatcher) send(d delivery) bool {
	var obj runtime.Object
	if d.typ == watch.Bookmark {
		obj = w.c.cfg.NewFunc()
	} else {
		obj = d.obj.DeepCopyObject()
	}
	if d.rev != 0 {
		if acc, err := meta.Accessor(obj); err == nil {
			acc.SetResourceVersion(strconv.FormatInt(d.rev, 10))
		}
	}
	select {
	case w.result <- watch.Event{Type: d.typ, Object: obj}:
		return true
	case <-w.ctx.Done():
		return false
	}
}

func (w *cacheWatcher) matches(obj runtime.Object) bool {
	ok, err := w.pred.Matches(obj)
	return err == nil && ok
}

// convert decides what this watcher sees of e. With a predicate, an
// object that starts matching is ADDED and one that stops matching is
// DELETED (its last matching state, stamped with the revision of the
// change), as Kubernetes does.
func (w *cacheWatcher) convert(e *event) (delivery, bool) {
	if e.rev <= w.minRev || !w.match(e.key) {
		return delivery{}, false
	}
	if w.pred.Empty() {
		return delivery{typ: e.typ, obj: e.obj}, true
	}
	switch e.typ {
	case watch.Added:
		if w.matches(e.obj) {
			return delivery{typ: watch.Added, obj: e.obj}, true
		}
	case watch.Deleted:
		if w.matches(e.obj) {
			return delivery{typ: watch.Deleted, obj: e.obj}, true
		}
	case watch.Modified:
		cur := w.matches(e.obj)
		old := e.prev != nil && w.matches(e.prev)
		switch {
		case cur && old:
			return delivery{typ: watch.Modified, obj: e.obj}, true
		case cur:
			return delivery{typ: watch.Added, obj: e.obj}, true
		case old:
			return delivery{typ: watch.Deleted, obj: e.prev, rev: e.rev}, true
		}
	}
	return delivery{}, false
}

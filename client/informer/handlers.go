package informer

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
)

// Handler receives an informer's notifications. Any func may be nil.
// DeleteFunc gets the deleted object, or a DeletedFinalStateUnknown when the
// deletion happened while the informer was not watching.
//
// Handlers should be cheap (enqueue a key), since each runs in one goroutine
// in event order; a slow handler delays only itself.
type Handler struct {
	AddFunc    func(obj runtime.Object)
	UpdateFunc func(oldObj, newObj runtime.Object)
	DeleteFunc func(obj any)
}

type notifyKind int

const (
	notifyAdd notifyKind = iota
	notifyUpdate
	notifyDelete
)

type notification struct {
	kind     notifyKind
	old, obj runtime.Object // add: obj; update: old and obj
	deleted  any            // delete: the object or a DeletedFinalStateUnknown
}

// handlerWorker delivers notifications to one Handler, in order, from its
// own goroutine. The buffer is unbounded so the informer's watch loop never
// waits for a handler.
type handlerWorker struct {
	h Handler

	mu   sync.Mutex
	buf  []notification
	wake chan struct{} // buffered 1: "the buffer may have grown"
}

func newHandlerWorker(h Handler) *handlerWorker {
	return &handlerWorker{h: h, wake: make(chan struct{}, 1)}
}

func (w *handlerWorker) push(n notification) {
	w.mu.Lock()
	w.buf = append(w.buf, n)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run delivers until ctx ends; notifications still buffered then are
// dropped, as the component is shutting down.
func (w *handlerWorker) run(ctx context.Context) {
	for {
		w.mu.Lock()
		if len(w.buf) == 0 {
			w.buf = nil // release the backing array after a burst
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			continue
		}
		n := w.buf[0]
		w.buf[0] = notification{}
		w.buf = w.buf[1:]
		w.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		w.deliver(n)
	}
}

func (w *handlerWorker) deliver(n notification) {
	switch n.kind {
	case notifyAdd:
		if w.h.AddFunc != nil {
			w.h.AddFunc(n.obj)
		}
	case notifyUpdate:
		if w.h.UpdateFunc != nil {
			w.h.UpdateFunc(n.old, n.obj)
		}
	case notifyDelete:
		if w.h.DeleteFunc != nil {
			w.h.DeleteFunc(n.deleted)
		}
	}
}

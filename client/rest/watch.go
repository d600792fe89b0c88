package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// streamWatcher decodes a chunked stream of {"type":..,"object":..} JSON
// values into watch.Events. Its goroutine owns the response body and ends
// when the stream ends, the context is cancelled or Stop is called; the
// result channel is closed when it ends.
type streamWatcher struct {
	ctx    context.Context
	cancel context.CancelFunc
	body   io.ReadCloser
	c      *Client
	newObj func() runtime.Object
	what   string

	result   chan watch.Event
	done     chan struct{}
	stopOnce sync.Once
}

func newStreamWatcher(ctx context.Context, cancel context.CancelFunc, body io.ReadCloser, c *Client, newObj func() runtime.Object, what string) *streamWatcher {
	w := &streamWatcher{
		ctx: ctx, cancel: cancel, body: body, c: c, newObj: newObj, what: what,
		// Unbuffered: an event is handed over only when the consumer takes
		// it, so Stop never strands events in a buffer nobody reads.
		result: make(chan watch.Event),
		done:   make(chan struct{}),
	}
	go w.run()
	return w
}

// ResultChan delivers the events; it is closed when the watch ends.
func (w *streamWatcher) ResultChan() <-chan watch.Event { return w.result }

// Stop ends the watch and releases the connection. It is safe to call more
// than once and from any goroutine.
func (w *streamWatcher) Stop() {
	w.stopOnce.Do(func() {
		close(w.done)
		w.cancel()
	})
}

func (w *streamWatcher) run() {
	defer close(w.result)
	defer w.cancel()
	defer w.body.Close()

	dec := json.NewDecoder(w.body)
	for {
		var frame metav1.WatchEvent
		if err := dec.Decode(&frame); err != nil {
			if w.quietEnd(err) {
				return
			}
			w.send(errorEvent(fmt.Errorf("watch %s: reading stream: %w", w.what, err)))
			return
		}
		ev, err := w.decodeEvent(frame)
		if err != nil {
			w.send(errorEvent(fmt.Errorf("watch %s: %w", w.what, err)))
			return
		}
		if !w.send(ev) {
			return
		}
	}
}

// quietEnd reports whether err is an ordinary end of the watch: the server
// closed the stream (its timeout), or we stopped or were cancelled.
func (w *streamWatcher) quietEnd(err error) bool {
	select {
	case <-w.done:
		return true
	default:
	}
	return w.ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func (w *streamWatcher) send(ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-w.done:
		return false
	case <-w.ctx.Done():
		return false
	}
}

func (w *streamWatcher) decodeEvent(frame metav1.WatchEvent) (watch.Event, error) {
	typ := watch.EventType(frame.Type)
	switch typ {
	case watch.Added, watch.Modified, watch.Deleted, watch.Bookmark:
	case watch.Error:
		var st metav1.Status
		if err := json.Unmarshal(frame.Object.Raw, &st); err != nil {
			return watch.Event{}, fmt.Errorf("decoding ERROR event: %w", err)
		}
		return watch.Event{Type: watch.Error, Object: &st}, nil
	default:
		return watch.Event{}, fmt.Errorf("unknown event type %q", frame.Type)
	}
	var into runtime.Object
	if w.newObj != nil {
		into = w.newObj()
	}
	obj, err := w.c.Decode(frame.Object.Raw, into)
	if err != nil {
		return watch.Event{}, fmt.Errorf("decoding %s event: %w", typ, err)
	}
	return watch.Event{Type: typ, Object: obj}, nil
}

// errorEvent reports a client-side stream failure the way the server
// reports its own: an ERROR event carrying a Status.
func errorEvent(err error) watch.Event {
	return watch.Event{Type: watch.Error, Object: &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Code:     http.StatusInternalServerError,
		Reason:   metav1.StatusReasonInternalError,
		Message:  err.Error(),
	}}
}

package etcd3

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik8s/minik8s/apiserver/storage"
)

// resultBuffer is how many decoded events may wait for a slow consumer
// before the etcd stream itself is held back.
const resultBuffer = 100

// Watch follows prefix (or exactly the key prefix names when it does not
// end in "/") straight from etcd.
//
//   - ResourceVersion "" or "0": the current objects first, as ADDED, then
//     every change after the revision they were read at.
//   - "N": every change after N, exactly once. If N is already compacted
//     Watch fails with ErrCodeExpired; if compaction overtakes a running
//     watch, the stream ends with an Error event (410 Expired), like
//     Kubernetes.
//
// Each event's object has resourceVersion = the revision of the change; a
// DELETED event carries the last state with the deletion's revision. With a
// Predicate, an object that stops matching is reported DELETED and one that
// starts matching ADDED, so a filtered client's view stays exact.
func (s *store) Watch(ctx context.Context, prefix string, opts storage.WatchOptions) (watch.Interface, error) {
	if err := s.checkPrefix(prefix); err != nil {
		return nil, err
	}
	var fromRev int64 // deliver changes after this; 0 = list first
	if rv := opts.ResourceVersion; rv != "" && rv != "0" {
		n, err := parseRV(prefix, rv)
		if err != nil {
			return nil, err
		}
		// Ask etcd up front whether history still reaches back to n, so
		// the common 410 is a plain error instead of a stream that dies.
		_, err = s.client.Get(ctx, prefix, clientv3.WithRev(n), clientv3.WithCountOnly())
		switch {
		case err == nil, isFutureRev(err):
			// A revision etcd has not reached yet is fine: its events
			// will arrive when it does.
		case isCompacted(err):
			return nil, storage.NewError(storage.ErrCodeExpired, prefix, "too old resource version: %d", n)
		default:
			return nil, fmt.Errorf("watch %s from %d: %w", prefix, n, err)
		}
		fromRev = n
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &etcdWatcher{
		s:         s,
		prefix:    prefix,
		recursive: strings.HasSuffix(prefix, "/"),
		pred:      opts.Predicate.WithDefaultAttrs(),
		bookmarks: opts.AllowBookmarks,
		result:    make(chan watch.Event, resultBuffer),
		cancel:    cancel,
		done:      make(chan struct{}),
	}
	go w.run(wctx, fromRev)
	return w, nil
}

// etcdWatcher turns one etcd watch into Kubernetes watch events. Its
// goroutine is owned by the watcher: Stop (or the caller's ctx) ends it,
// and it closes the result channel on the way out.
type etcdWatcher struct {
	s         *store
	prefix    string
	recursive bool
	pred      storage.Predicate
	bookmarks bool
	result    chan watch.Event
	cancel    context.CancelFunc
	done      chan struct{}
	stopOnce  sync.Once
}

func (w *etcdWatcher) ResultChan() <-chan watch.Event { return w.result }

// Stop ends the watch and waits for its goroutine to exit, so nothing is
// left running once Stop returns.
func (w *etcdWatcher) Stop() {
	w.stopOnce.Do(func() {
		w.cancel()
		<-w.done
	})
}

func (w *etcdWatcher) run(ctx context.Context, fromRev int64) {
	defer close(w.done)
	defer close(w.result)
	defer w.cancel()

	if fromRev == 0 {
		rev, ok := w.sendInitial(ctx)
		if !ok {
			return
		}
		fromRev = rev
	}

	// The leader requirement makes a partitioned member end the stream
	// (the client re-watches elsewhere) instead of going silent.
	lctx := clientv3.WithRequireLeader(ctx)
	opts := []clientv3.OpOption{clientv3.WithRev(fromRev + 1), clientv3.WithPrevKV()}
	if w.recursive {
		opts = append(opts, clientv3.WithPrefix())
	}
	if w.bookmarks {
		opts = append(opts, clientv3.WithProgressNotify())
	}
	wch := w.s.client.Watch(lctx, w.prefix, opts...)

	var progress <-chan time.Time
	if w.bookmarks {
		t := time.NewTicker(w.s.progressInterval)
		defer t.Stop()
		progress = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-progress:
			// etcd only volunteers progress every few minutes; asking
			// keeps bookmarks of idle resources fresh. Failure is
			// harmless: the next tick asks again.
			_ = w.s.client.RequestProgress(lctx)
		case resp, ok := <-wch:
			if !ok {
				if ctx.Err() == nil {
					w.sendError(ctx, http.StatusInternalServerError, metav1.StatusReasonInternalError,
						fmt.Sprintf("watch of %s ended unexpectedly", w.prefix))
				}
				return
			}
			if resp.CompactRevision != 0 {
				w.sendError(ctx, http.StatusGone, metav1.StatusReasonExpired,
					fmt.Sprintf("too old resource version: %d (%d)", fromRev, resp.CompactRevision))
				return
			}
			if err := resp.Err(); err != nil {
				if ctx.Err() == nil {
					w.sendError(ctx, http.StatusInternalServerError, metav1.StatusReasonInternalError,
						fmt.Sprintf("watch of %s: %v", w.prefix, err))
				}
				return
			}
			if resp.IsProgressNotify() {
				if w.bookmarks && resp.Header.Revision > fromRev {
					if !w.send(ctx, w.bookmark(resp.Header.Revision)) {
						return
					}
					fromRev = resp.Header.Revision
				}
				continue
			}
			for _, ev := range resp.Events {
				out, err := w.transform(ev)
				if err != nil {
					w.sendError(ctx, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
					return
				}
				fromRev = ev.Kv.ModRevision
				if out == nil {
					continue
				}
				if !w.send(ctx, *out) {
					return
				}
			}
		}
	}
}

// sendInitial lists what exists now as ADDED events and returns the
// revision the list was read at.
func (w *etcdWatcher) sendInitial(ctx context.Context) (int64, bool) {
	var opts []clientv3.OpOption
	if w.recursive {
		opts = append(opts, clientv3.WithPrefix())
	}
	resp, err := w.s.client.Get(ctx, w.prefix, opts...)
	if err != nil {
		if ctx.Err() == nil {
			w.sendError(ctx, http.StatusInternalServerError, metav1.StatusReasonInternalError,
				fmt.Sprintf("initial list of %s: %v", w.prefix, err))
		}
		return 0, false
	}
	for _, kv := range resp.Kvs {
		obj := w.s.newFunc()
		if err := w.s.decodeKV(string(kv.Key), kv.Value, obj, kv.ModRevision); err != nil {
			w.sendError(ctx, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
			return 0, false
		}
		if !w.matches(obj) {
			continue
		}
		if !w.send(ctx, watch.Event{Type: watch.Added, Object: obj}) {
			return 0, false
		}
	}
	return resp.Header.Revision, true
}

// transform maps one etcd event to a watch event, or nil when the
// predicate hides it.
func (w *etcdWatcher) transform(ev *clientv3.Event) (*watch.Event, error) {
	key := string(ev.Kv.Key)
	rev := ev.Kv.ModRevision
	decodePrev := func() (runtime.Object, error) {
		if ev.PrevKv == nil {
			return nil, fmt.Errorf("watch %s: event at revision %d has no previous value", key, rev)
		}
		obj := w.s.newFunc()
		// The previous state is reported as of this event's revision:
		// that is when it stopped being current.
		if err := w.s.decodeKV(key, ev.PrevKv.Value, obj, rev); err != nil {
			return nil, err
		}
		return obj, nil
	}

	if ev.Type == clientv3.EventTypeDelete {
		old, err := decodePrev()
		if err != nil {
			return nil, err
		}
		if !w.matches(old) {
			return nil, nil
		}
		return &watch.Event{Type: watch.Deleted, Object: old}, nil
	}

	cur := w.s.newFunc()
	if err := w.s.decodeKV(key, ev.Kv.Value, cur, rev); err != nil {
		return nil, err
	}
	if isCreate(ev) {
		if !w.matches(cur) {
			return nil, nil
		}
		return &watch.Event{Type: watch.Added, Object: cur}, nil
	}
	if w.pred.Empty() {
		return &watch.Event{Type: watch.Modified, Object: cur}, nil
	}
	old, err := decodePrev()
	if err != nil {
		return nil, err
	}
	curOK, oldOK := w.matches(cur), w.matches(old)
	switch {
	case curOK && oldOK:
		return &watch.Event{Type: watch.Modified, Object: cur}, nil
	case curOK:
		return &watch.Event{Type: watch.Added, Object: cur}, nil
	case oldOK:
		return &watch.Event{Type: watch.Deleted, Object: old}, nil
	}
	return nil, nil
}

func (w *etcdWatcher) matches(obj runtime.Object) bool {
	ok, err := w.pred.Matches(obj)
	if err != nil {
		// An object the selector cannot evaluate is not selected.
		slog.Debug("watch predicate failed", "component", "storage-etcd3", "prefix", w.prefix, "reason", err)
		return false
	}
	return ok
}

func (w *etcdWatcher) bookmark(rev int64) watch.Event {
	obj := w.s.newFunc()
	_ = setRV(w.prefix, obj, rev)
	return watch.Event{Type: watch.Bookmark, Object: obj}
}

func (w *etcdWatcher) send(ctx context.Context, ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *etcdWatcher) sendError(ctx context.Context, code int32, reason metav1.StatusReason, msg string) {
	w.send(ctx, watch.Event{Type: watch.Error, Object: &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Code:     code,
		Reason:   reason,
		Message:  msg,
	}})
}

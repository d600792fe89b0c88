package informer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// waitBound turns a hang into a test failure; no test asserts timing.
const waitBound = 10 * time.Second

// fakeListerWatcher is a scripted ListerWatcher: each List takes the next
// queued result (blocking until the test queues one), each Watch fails with
// a queued error if there is one, else hands a fakeWatch to the test.
type fakeListerWatcher struct {
	lists    chan listResult
	watchErr chan error
	watches  chan *fakeWatch

	mu        sync.Mutex
	listOpts  []metav1.ListOptions
	watchOpts []metav1.ListOptions
}

type listResult struct {
	obj runtime.Object
	err error
}

func newFakeListerWatcher() *fakeListerWatcher {
	return &fakeListerWatcher{
		lists:    make(chan listResult, 16),
		watchErr: make(chan error, 16),
		watches:  make(chan *fakeWatch),
	}
}

func (f *fakeListerWatcher) List(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	f.mu.Lock()
	f.listOpts = append(f.listOpts, opts)
	f.mu.Unlock()
	select {
	case r := <-f.lists:
		return r.obj, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeListerWatcher) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	f.mu.Lock()
	f.watchOpts = append(f.watchOpts, opts)
	f.mu.Unlock()
	select {
	case err := <-f.watchErr:
		return nil, err
	default:
	}
	w := &fakeWatch{opts: opts, result: make(chan watch.Event), stopped: make(chan struct{})}
	select {
	case f.watches <- w:
		return w, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// nextWatch waits for the informer to open a watch.
func (f *fakeListerWatcher) nextWatch(t *testing.T) *fakeWatch {
	t.Helper()
	select {
	case w := <-f.watches:
		return w
	case <-time.After(waitBound):
		t.Fatal("informer did not start a watch")
		return nil
	}
}

func (f *fakeListerWatcher) recordedListOpts() []metav1.ListOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]metav1.ListOptions(nil), f.listOpts...)
}

// fakeWatch is a watch.Interface driven by the test.
type fakeWatch struct {
	opts     metav1.ListOptions
	result   chan watch.Event
	stopped  chan struct{}
	stopOnce sync.Once
	closeOne sync.Once
}

func (w *fakeWatch) ResultChan() <-chan watch.Event { return w.result }
func (w *fakeWatch) Stop()                          { w.stopOnce.Do(func() { close(w.stopped) }) }

// send delivers an event, failing the test if the informer stopped reading.
func (w *fakeWatch) send(t *testing.T, typ watch.EventType, obj runtime.Object) {
	t.Helper()
	select {
	case w.result <- watch.Event{Type: typ, Object: obj}:
	case <-w.stopped:
		t.Fatalf("watch stopped before %s could be delivered", typ)
	case <-time.After(waitBound):
		t.Fatalf("informer did not read %s", typ)
	}
}

// end closes the stream as a server does at its timeout.
func (w *fakeWatch) end() { w.closeOne.Do(func() { close(w.result) }) }

func pod(ns, name, rv string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rv, Labels: labels}}
}

func podList(rv, cont string, pods ...*corev1.Pod) *corev1.PodList {
	l := &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: rv, Continue: cont}}
	for _, p := range pods {
		l.Items = append(l.Items, *p)
	}
	return l
}

func bookmark(rv string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}}
}

func expiredStatus() *metav1.Status {
	return &metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old resource version"}
}

// fakeRecorder is a Handler that writes one line per notification.
type fakeRecorder struct {
	lines chan string
}

func newFakeRecorder() *fakeRecorder { return &fakeRecorder{lines: make(chan string, 1000)} }

func describe(obj any) string {
	switch o := obj.(type) {
	case DeletedFinalStateUnknown:
		return "tombstone " + o.Key + "@" + resourceVersion(o.Obj)
	case runtime.Object:
		k, _ := MetaNamespaceKeyFunc(o)
		return k + "@" + resourceVersion(o)
	}
	return fmt.Sprintf("%T", obj)
}

func (r *fakeRecorder) handler() Handler {
	return Handler{
		AddFunc:    func(obj runtime.Object) { r.lines <- "add " + describe(obj) },
		UpdateFunc: func(old, obj runtime.Object) { r.lines <- "update " + describe(old) + " -> " + describe(obj) },
		DeleteFunc: func(obj any) { r.lines <- "delete " + describe(obj) },
	}
}

// expect reads exactly want, in order.
func (r *fakeRecorder) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-r.lines:
			if got != w {
				t.Fatalf("notification %q, want %q", got, w)
			}
		case <-time.After(waitBound):
			t.Fatalf("no notification, want %q", w)
		}
	}
}

// expectSet reads len(want) notifications in any order (a list's items
// are unordered once they pass through a map).
func (r *fakeRecorder) expectSet(t *testing.T, want ...string) {
	t.Helper()
	left := map[string]int{}
	for _, w := range want {
		left[w]++
	}
	for range want {
		select {
		case got := <-r.lines:
			if left[got] == 0 {
				t.Fatalf("unexpected notification %q; still want %v", got, left)
			}
			left[got]--
		case <-time.After(waitBound):
			t.Fatalf("missing notifications %v", left)
		}
	}
}

// sleepRecorder replaces Informer.sleep.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) record(_ context.Context, d time.Duration) {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
}

func (s *sleepRecorder) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waits)
}

// runInformer starts inf and returns a stop function that cancels and
// waits for Run to return.
func runInformer(t *testing.T, inf *Informer) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inf.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(waitBound):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

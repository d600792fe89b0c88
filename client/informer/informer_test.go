package informer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

var podsGR = schema.GroupResource{Resource: "pods"}

func newTestInformer(lw ListerWatcher, opts Options) (*Informer, *sleepRecorder) {
	if opts.Resource.Empty() {
		opts.Resource = podsGR
	}
	opts.Logger = slog.New(slog.DiscardHandler)
	inf := New(lw, opts)
	rec := &sleepRecorder{}
	inf.sleep = rec.record
	// Every watch the fake closes counts as "short", whatever the timing.
	inf.shortWatch = time.Hour
	return inf, rec
}

func waitSynced(t *testing.T, s ...Syncer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	if !WaitForCacheSync(ctx, s...) {
		t.Fatal("cache did not sync")
	}
}

// TestListThenWatch follows one informer through its life: initial list,
// watch events, a bookmark, a server-side close, a 410 with relist and
// synthetic notifications, and the re-watch from the new list.
func TestListThenWatch(t *testing.T) {
	lw := newFakeListerWatcher()
	inf, _ := newTestInformer(lw, Options{PageSize: -1})
	rec := newFakeRecorder()
	if err := inf.AddEventHandler(rec.handler()); err != nil {
		t.Fatal(err)
	}
	lw.lists <- listResult{obj: podList("10", "", pod("default", "a", "5", nil), pod("default", "b", "6", nil))}
	runInformer(t, inf)

	// Initial list.
	waitSynced(t, inf)
	rec.expectSet(t, "add default/a@5", "add default/b@6")
	w := lw.nextWatch(t)
	if w.opts.ResourceVersion != "10" || !w.opts.AllowWatchBookmarks || w.opts.TimeoutSeconds == nil {
		t.Fatalf("first watch opts = %+v; want rv 10, bookmarks, a timeout", w.opts)
	}

	// Watch events in order.
	w.send(t, watch.Modified, pod("default", "a", "11", nil))
	w.send(t, watch.Added, pod("default", "c", "12", nil))
	w.send(t, watch.Deleted, pod("default", "b", "13", nil))
	w.send(t, watch.Bookmark, bookmark("20"))
	rec.expect(t, "update default/a@5 -> default/a@11", "add default/c@12", "delete default/b@13")

	// The server closes the stream: re-watch from the bookmark's version.
	w.end()
	w = lw.nextWatch(t)
	if w.opts.ResourceVersion != "20" {
		t.Fatalf("re-watch from %q, want 20 (last bookmark)", w.opts.ResourceVersion)
	}
	w.send(t, watch.Modified, pod("default", "c", "21", nil))
	rec.expect(t, "update default/c@12 -> default/c@21")

	// 410: relist. While away, a was deleted, c changed, d was created;
	// nothing happened to e... which did not exist, so only three notes.
	lw.lists <- listResult{obj: podList("30", "", pod("default", "c", "25", nil), pod("kube-system", "d", "26", nil))}
	w.send(t, watch.Error, expiredStatus())
	rec.expectSet(t,
		"update default/c@21 -> default/c@25",
		"add kube-system/d@26",
		"delete tombstone default/a@11",
	)
	w = lw.nextWatch(t)
	if w.opts.ResourceVersion != "30" {
		t.Fatalf("watch after relist from %q, want 30", w.opts.ResourceVersion)
	}
	if got := inf.Indexer().ListKeys(); fmt.Sprint(got) != "[default/c kube-system/d]" {
		t.Errorf("store keys = %v", got)
	}
	if got := len(lw.recordedListOpts()); got != 2 {
		t.Errorf("lists = %d, want 2", got)
	}
}

func TestRelistOnlyNotifiesChanges(t *testing.T) {
	lw := newFakeListerWatcher()
	inf, _ := newTestInformer(lw, Options{PageSize: -1})
	rec := newFakeRecorder()
	_ = inf.AddEventHandler(rec.handler())
	lw.lists <- listResult{obj: podList("10", "", pod("ns", "same", "1", nil), pod("ns", "moved", "2", nil))}
	runInformer(t, inf)
	rec.expectSet(t, "add ns/same@1", "add ns/moved@2")

	// The watch cannot even start: the version is already compacted.
	w := lw.nextWatch(t)
	lw.lists <- listResult{obj: podList("40", "", pod("ns", "same", "1", nil), pod("ns", "moved", "33", nil))}
	lw.watchErr <- apierrors.NewResourceExpired("too old")
	w.end() // closes the first watch; the second Watch call fails with 410
	w = lw.nextWatch(t)
	if w.opts.ResourceVersion != "40" {
		t.Fatalf("watch from %q, want 40", w.opts.ResourceVersion)
	}
	rec.expect(t, "update ns/moved@2 -> ns/moved@33")
	select {
	case extra := <-rec.lines:
		t.Fatalf("unchanged object notified: %q", extra)
	default:
	}
}

func TestPagedList(t *testing.T) {
	tests := []struct {
		name     string
		pages    []listResult
		wantOpts []metav1.ListOptions
		wantKeys string
	}{
		{
			name: "follows continue tokens",
			pages: []listResult{
				{obj: podList("7", "t1", pod("n", "a", "1", nil))},
				{obj: podList("7", "t2", pod("n", "b", "2", nil))},
				{obj: podList("7", "", pod("n", "c", "3", nil))},
			},
			wantOpts: []metav1.ListOptions{{Limit: 1}, {Limit: 1, Continue: "t1"}, {Limit: 1, Continue: "t2"}},
			wantKeys: "[n/a n/b n/c]",
		},
		{
			name: "expired continue restarts unpaged",
			pages: []listResult{
				{obj: podList("7", "t1", pod("n", "a", "1", nil))},
				{err: apierrors.NewResourceExpired("continue token expired")},
				{obj: podList("9", "", pod("n", "a", "1", nil), pod("n", "z", "8", nil))},
			},
			wantOpts: []metav1.ListOptions{{Limit: 1}, {Limit: 1, Continue: "t1"}, {}},
			wantKeys: "[n/a n/z]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lw := newFakeListerWatcher()
			for _, p := range tt.pages {
				lw.lists <- p
			}
			inf, _ := newTestInformer(lw, Options{PageSize: 1})
			runInformer(t, inf)
			lw.nextWatch(t)
			if got := fmt.Sprint(lw.recordedListOpts()); got != fmt.Sprint(tt.wantOpts) {
				t.Errorf("list calls = %v\n want %v", got, tt.wantOpts)
			}
			if got := fmt.Sprint(inf.Indexer().ListKeys()); got != tt.wantKeys {
				t.Errorf("keys = %s, want %s", got, tt.wantKeys)
			}
		})
	}
}

func TestFailuresBackOff(t *testing.T) {
	tests := []struct {
		name string
		// act makes the informer fail once after it is watching.
		act func(t *testing.T, lw *fakeListerWatcher, w *fakeWatch)
		// wantWatchRV is the version of the next watch.
		wantWatchRV string
		wantLists   int
		wantSleeps  int
	}{
		{
			name: "watch error event other than 410 re-watches from the same version",
			act: func(t *testing.T, lw *fakeListerWatcher, w *fakeWatch) {
				w.send(t, watch.Error, &metav1.Status{Status: metav1.StatusFailure, Code: 500, Reason: metav1.StatusReasonInternalError})
			},
			wantWatchRV: "10", wantLists: 1, wantSleeps: 1,
		},
		{
			name: "watch refused re-watches without relisting",
			act: func(t *testing.T, lw *fakeListerWatcher, w *fakeWatch) {
				lw.watchErr <- errors.New("connection refused")
				w.end()
			},
			// One wait for the empty watch, one for the refused one.
			wantWatchRV: "10", wantLists: 1, wantSleeps: 2,
		},
		{
			name: "watch closing at once without events backs off",
			act: func(t *testing.T, lw *fakeListerWatcher, w *fakeWatch) {
				w.end()
			},
			wantWatchRV: "10", wantLists: 1, wantSleeps: 1,
		},
		{
			name: "failed list is retried",
			act: func(t *testing.T, lw *fakeListerWatcher, w *fakeWatch) {
				lw.lists <- listResult{err: errors.New("server down")}
				lw.lists <- listResult{obj: podList("50", "")}
				w.send(t, watch.Error, expiredStatus())
			},
			wantWatchRV: "50", wantLists: 3, wantSleeps: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lw := newFakeListerWatcher()
			lw.lists <- listResult{obj: podList("10", "")}
			inf, sleeps := newTestInformer(lw, Options{})
			runInformer(t, inf)
			w := lw.nextWatch(t)
			tt.act(t, lw, w)
			w = lw.nextWatch(t)
			if w.opts.ResourceVersion != tt.wantWatchRV {
				t.Errorf("next watch from %q, want %q", w.opts.ResourceVersion, tt.wantWatchRV)
			}
			if n := len(lw.recordedListOpts()); n != tt.wantLists {
				t.Errorf("lists = %d, want %d", n, tt.wantLists)
			}
			if sleeps.count() != tt.wantSleeps {
				t.Errorf("backoff waits = %d, want %d", sleeps.count(), tt.wantSleeps)
			}
		})
	}
}

func TestSlowHandlerDoesNotBlockOthers(t *testing.T) {
	lw := newFakeListerWatcher()
	lw.lists <- listResult{obj: podList("1", "")}
	inf, _ := newTestInformer(lw, Options{})

	release := make(chan struct{})
	var slowMu sync.Mutex
	var slowSaw []string
	slowStarted := make(chan struct{}, 1)
	_ = inf.AddEventHandler(Handler{AddFunc: func(obj runtime.Object) {
		select {
		case slowStarted <- struct{}{}:
		default:
		}
		<-release
		slowMu.Lock()
		slowSaw = append(slowSaw, describe(obj))
		slowMu.Unlock()
	}})
	fast := newFakeRecorder()
	_ = inf.AddEventHandler(fast.handler())
	runInformer(t, inf)
	w := lw.nextWatch(t)

	const n = 200
	var want []string
	for i := range n {
		p := pod("ns", fmt.Sprintf("p%03d", i), fmt.Sprint(i+2), nil)
		w.send(t, watch.Added, p)
		want = append(want, "add "+describe(p))
	}
	// The fast handler gets everything while the slow one is stuck on the
	// first event; the watch loop was never held up.
	fast.expect(t, want...)
	<-slowStarted
	close(release)
	deadline := time.After(waitBound)
	for {
		slowMu.Lock()
		got := len(slowSaw)
		slowMu.Unlock()
		if got == n {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("slow handler got %d of %d", got, n)
		case <-time.After(time.Millisecond):
		}
	}
	slowMu.Lock()
	defer slowMu.Unlock()
	if fmt.Sprint(slowSaw) != fmt.Sprint(trimPrefix(want)) {
		t.Errorf("slow handler saw events out of order")
	}
}

func trimPrefix(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l[len("add "):]
	}
	return out
}

func TestHandlerAddedLateGetsCurrentState(t *testing.T) {
	lw := newFakeListerWatcher()
	lw.lists <- listResult{obj: podList("3", "", pod("ns", "a", "1", nil), pod("ns", "b", "2", nil))}
	inf, _ := newTestInformer(lw, Options{})
	runInformer(t, inf)
	w := lw.nextWatch(t)
	waitSynced(t, inf)

	late := newFakeRecorder()
	if err := inf.AddEventHandler(late.handler()); err != nil {
		t.Fatal(err)
	}
	late.expectSet(t, "add ns/a@1", "add ns/b@2")
	w.send(t, watch.Deleted, pod("ns", "a", "4", nil))
	late.expect(t, "delete ns/a@4")
}

func TestResync(t *testing.T) {
	lw := newFakeListerWatcher()
	lw.lists <- listResult{obj: podList("3", "", pod("ns", "a", "1", nil))}
	inf, _ := newTestInformer(lw, Options{})
	rec := newFakeRecorder()
	_ = inf.AddEventHandlerWithResync(rec.handler(), time.Millisecond)
	runInformer(t, inf)
	rec.expect(t, "add ns/a@1")
	// Resync re-delivers the cached object as an update to itself, again
	// and again.
	rec.expect(t, "update ns/a@1 -> ns/a@1", "update ns/a@1 -> ns/a@1")
}

func TestRunLifecycle(t *testing.T) {
	lw := newFakeListerWatcher()
	lw.lists <- listResult{obj: podList("1", "")}
	inf, _ := newTestInformer(lw, Options{})
	blocked := make(chan struct{})
	_ = inf.AddEventHandler(Handler{AddFunc: func(runtime.Object) { <-blocked }})
	stop := runInformer(t, inf)
	w := lw.nextWatch(t)
	w.send(t, watch.Added, pod("ns", "x", "2", nil))
	if err := inf.Run(context.Background()); err == nil {
		t.Error("second Run must fail")
	}
	close(blocked)
	stop() // returns only once handler goroutines ended
	if err := inf.AddEventHandler(Handler{}); err == nil {
		t.Error("AddEventHandler on a stopped informer must fail")
	}
	select {
	case <-w.stopped:
	default:
		t.Error("the watch was not stopped when Run ended")
	}
}

func TestLister(t *testing.T) {
	lw := newFakeListerWatcher()
	lw.lists <- listResult{obj: podList("9", "",
		pod("default", "web-1", "1", map[string]string{"app": "web"}),
		pod("default", "db-1", "2", map[string]string{"app": "db"}),
		pod("prod", "web-2", "3", map[string]string{"app": "web"}),
	)}
	inf, _ := newTestInformer(lw, Options{Indexers: Indexers{"app": func(obj runtime.Object) ([]string, error) {
		return []string{obj.(*corev1.Pod).Labels["app"]}, nil
	}}})
	runInformer(t, inf)
	waitSynced(t, inf)
	l := NewLister[*corev1.Pod](inf)
	web := labels.SelectorFromSet(labels.Set{"app": "web"})

	names := func(pods []*corev1.Pod, err error) string {
		if err != nil {
			return "error: " + err.Error()
		}
		var out []string
		for _, p := range pods {
			out = append(out, p.Namespace+"/"+p.Name)
		}
		return fmt.Sprint(sortedCopy(out))
	}
	tests := []struct {
		name, got, want string
	}{
		{"all", names(l.List(nil)), "[default/db-1 default/web-1 prod/web-2]"},
		{"by selector", names(l.List(web)), "[default/web-1 prod/web-2]"},
		{"namespace", names(l.ListNamespace("default", labels.Everything())), "[default/db-1 default/web-1]"},
		{"namespace and selector", names(l.ListNamespace("default", web)), "[default/web-1]"},
		{"custom index", names(l.ByIndex("app", "db")), "[default/db-1]"},
		{"missing index", names(l.ByIndex("nope", "x")), `error: index "nope" does not exist`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, tt.got, tt.want)
		}
	}
	if p, err := l.Get("prod", "web-2"); err != nil || p.ResourceVersion != "3" {
		t.Errorf("Get prod/web-2 = %v, %v", p, err)
	}
	if _, err := l.Get("prod", "missing"); !apierrors.IsNotFound(err) {
		t.Errorf("Get missing = %v, want NotFound", err)
	}
	wrong := NewLister[*corev1.Node](inf)
	if _, err := wrong.Get("prod", "web-2"); err == nil {
		t.Error("Lister of the wrong type must return an error, not panic")
	}
}

func TestWaitForCacheSyncGivesUp(t *testing.T) {
	lw := newFakeListerWatcher() // never answers the list
	inf, _ := newTestInformer(lw, Options{})
	runInformer(t, inf)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if WaitForCacheSync(ctx, inf) {
		t.Fatal("WaitForCacheSync reported sync of an informer that never listed")
	}
}

package apiserver_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/minik8s/minik8s/apiserver"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// seen is one watch event reduced to what the tests compare.
type seen struct {
	typ  watch.EventType
	name string
	rv   string
	data string // data["v"]
}

func (s seen) String() string { return fmt.Sprintf("%s %s@%s v=%q", s.typ, s.name, s.rv, s.data) }

func reduce(t testing.TB, ev watch.Event) seen {
	t.Helper()
	switch o := ev.Object.(type) {
	case *corev1.ConfigMap:
		return seen{ev.Type, o.Name, o.ResourceVersion, o.Data["v"]}
	case *metav1.Status:
		return seen{ev.Type, fmt.Sprintf("status %d %s", o.Code, o.Reason), "", o.Message}
	}
	t.Fatalf("unexpected %s event object %T", ev.Type, ev.Object)
	return seen{}
}

// next waits for the next event (bounded; the bound is a hang guard, not a
// timing assertion).
func next(t testing.TB, w watch.Interface) seen {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatalf("watch ended early")
		}
		return reduce(t, ev)
	case <-time.After(30 * time.Second):
		t.Fatalf("no watch event within 30s")
	}
	return seen{}
}

// cmWriter records every write it makes as the event a watcher must see.
//
// Only these tests write while they watch, so the etcd head revision right
// after a delete is the deletion's revision.
type cmWriter struct {
	t  testing.TB
	s  *apiservertest.Server
	cs kubernetes.Interface
	ns string
	// history is every change made through this writer, in order.
	history []seen
}

// since is the part of the history after resourceVersion rv.
func (w *cmWriter) since(rv string) []seen {
	n := itRV(w.t, rv)
	var out []seen
	for _, e := range w.history {
		if itRV(w.t, e.rv) > n {
			out = append(out, e)
		}
	}
	return out
}

func (w *cmWriter) create(name, v string) string {
	w.t.Helper()
	cm, err := w.cs.CoreV1().ConfigMaps(w.ns).Create(itCtx(w.t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name},
		Data: map[string]string{"v": v}}, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatalf("create %s: %v", name, err)
	}
	w.history = append(w.history, seen{watch.Added, name, cm.ResourceVersion, v})
	return cm.ResourceVersion
}

func (w *cmWriter) update(name, v string) string {
	w.t.Helper()
	ctx := itCtx(w.t)
	cm, err := w.cs.CoreV1().ConfigMaps(w.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	cm.Data = map[string]string{"v": v}
	cm, err = w.cs.CoreV1().ConfigMaps(w.ns).Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		w.t.Fatalf("update %s: %v", name, err)
	}
	w.history = append(w.history, seen{watch.Modified, name, cm.ResourceVersion, v})
	return cm.ResourceVersion
}

func (w *cmWriter) delete(name string) string {
	w.t.Helper()
	ctx := itCtx(w.t)
	cm, err := w.cs.CoreV1().ConfigMaps(w.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.cs.CoreV1().ConfigMaps(w.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		w.t.Fatalf("delete %s: %v", name, err)
	}
	// The DELETED event carries the last state at the deletion's revision.
	rv := fmt.Sprint(itEtcdHead(w.t, w.s))
	w.history = append(w.history, seen{watch.Deleted, name, rv, cm.Data["v"]})
	return rv
}

// expectExactly reads len(want) events and checks them in order, then
// proves nothing else was queued by writing a sentinel and seeing it next.
func (w *cmWriter) expectExactly(t *testing.T, wi watch.Interface, want []seen) {
	t.Helper()
	var got []seen
	last := int64(0)
	for range want {
		ev := next(t, wi)
		got = append(got, ev)
		if ev.typ == watch.Error {
			t.Fatalf("watch error after %v: %v", got[:len(got)-1], ev)
		}
		rv := itRV(t, ev.rv)
		if rv <= last {
			t.Errorf("event %v: resourceVersion not increasing (previous %d)", ev, last)
		}
		last = rv
	}
	for i := range want {
		g, e := got[i], want[i]
		if g != e {
			t.Fatalf("event %d: got %v, want %v\n got:  %v\n want: %v", i, g, e, got, want)
		}
	}
	sentinel := fmt.Sprintf("sentinel-%d", time.Now().UnixNano())
	w.create(sentinel, "s")
	if ev := next(t, wi); ev.name != sentinel {
		t.Fatalf("after the expected events got %v, want the sentinel %s (an extra or duplicate event)", ev, sentinel)
	}
}

func itWatch(t testing.TB, cs kubernetes.Interface, ns string, opts metav1.ListOptions) watch.Interface {
	t.Helper()
	w, err := cs.CoreV1().ConfigMaps(ns).Watch(itCtx(t), opts)
	if err != nil {
		t.Fatalf("watch %s %+v: %v", ns, opts, err)
	}
	t.Cleanup(w.Stop)
	return w
}

// TestIntegrationWatchFromResourceVersion: a watch from resourceVersion N
// delivers exactly the changes after N, in order — both when N is in the
// watch cache's window and when it is older (served by etcd).
func TestIntegrationWatchFromResourceVersion(t *testing.T) {
	// A small watch cache so that "older than the cache" is reachable.
	s := apiservertest.Start(t, func(o *apiserver.Options) { o.WatchCacheSize = 8 })
	itBodyEncodings(t, s, func(t *testing.T, cs *kubernetes.Clientset, sfx string) {
		ns := "watch-" + sfx
		itNamespace(t, cs, ns)
		w := &cmWriter{t: t, s: s, cs: cs, ns: ns}
		w.create("a", "1")
		startRV := w.update("a", "2")
		w.create("b", "1")
		w.update("a", "3")
		w.delete("b")
		w.create("c", "1")
		w.update("c", "2")

		t.Run("in cache window", func(t *testing.T) {
			wi := itWatch(t, cs, ns, metav1.ListOptions{ResourceVersion: startRV})
			w.expectExactly(t, wi, w.since(startRV))
		})

		t.Run("older than the cache", func(t *testing.T) {
			// Push startRV out of the 8-event window with writes elsewhere.
			filler := &cmWriter{t: t, s: s, cs: cs, ns: "default"}
			for i := range 12 {
				filler.create(fmt.Sprintf("fill-%s-%d", sfx, i), "x")
			}
			wi := itWatch(t, cs, ns, metav1.ListOptions{ResourceVersion: startRV})
			w.expectExactly(t, wi, w.since(startRV))
		})

		t.Run("from the latest", func(t *testing.T) {
			l, err := cs.CoreV1().ConfigMaps(ns).List(itCtx(t), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wi := itWatch(t, cs, ns, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
			w.update("a", "4")
			w.delete("c")
			w.expectExactly(t, wi, w.since(l.ResourceVersion))
		})
	})
}

// TestIntegrationWatchInitialEvents: resourceVersion "0" and "" start with
// ADDED for every existing object, then follow changes; label selectors
// turn objects entering/leaving the selection into ADDED/DELETED.
func TestIntegrationWatchInitialEvents(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	itNamespace(t, cs, "initial")
	w := &cmWriter{t: t, s: s, cs: cs, ns: "initial"}
	w.create("x", "1")
	w.create("y", "1")
	w.update("x", "2")
	w.create("z", "1")
	w.delete("z")
	// resourceVersion "0" means "any recent state": the snapshot may come
	// from a watch cache that lags a little. Wait until a cache-served list
	// has caught up with the last write, then the snapshot must show it.
	t.Run("rv=0", func(t *testing.T) {
		waitCacheCaughtUp(t, cs, "initial", w.history[len(w.history)-1].rv)
		wi := itWatch(t, cs, "initial", metav1.ListOptions{ResourceVersion: "0"})
		got := map[string]string{}
		for range 2 {
			ev := next(t, wi)
			if ev.typ != watch.Added {
				t.Fatalf("initial event %v, want ADDED", ev)
			}
			got[ev.name] = ev.data
		}
		if want := map[string]string{"x": "2", "y": "1"}; !mapsEqual(got, want) {
			t.Fatalf("initial events %v, want %v", got, want)
		}
		from := w.update("y", "2")
		w.expectExactly(t, wi, w.since(fmt.Sprint(itRV(t, from)-1)))
	})
	t.Run("label selector", func(t *testing.T) {
		wi := itWatch(t, cs, "initial", metav1.ListOptions{ResourceVersion: "0", LabelSelector: "pick=yes"})
		cms := cs.CoreV1().ConfigMaps("initial")
		cm, err := cms.Get(ctx, "x", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Labels = map[string]string{"pick": "yes"}
		if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, wi); ev.typ != watch.Added || ev.name != "x" || ev.rv != cm.ResourceVersion {
			t.Fatalf("object starting to match: %v, want ADDED x@%s", ev, cm.ResourceVersion)
		}
		cm.Labels = nil
		if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, wi); ev.typ != watch.Deleted || ev.name != "x" || ev.rv != cm.ResourceVersion {
			t.Fatalf("object ceasing to match: %v, want DELETED x@%s", ev, cm.ResourceVersion)
		}
	})
	t.Run("single object", func(t *testing.T) {
		waitCacheCaughtUp(t, cs, "initial", w.history[len(w.history)-1].rv)
		wi := itWatch(t, cs, "initial", metav1.ListOptions{ResourceVersion: "0", FieldSelector: "metadata.name=y"})
		if ev := next(t, wi); ev.typ != watch.Added || ev.name != "y" {
			t.Fatalf("first event %v, want ADDED y", ev)
		}
		w.update("x", "9")
		w.update("y", "9")
		if ev := next(t, wi); ev.typ != watch.Modified || ev.name != "y" || ev.data != "9" {
			t.Fatalf("got %v, want MODIFIED y v=9 (and nothing about x)", ev)
		}
	})
}

// TestIntegrationWatchBookmarks: with allowWatchBookmarks the server sends
// BOOKMARK events, every --watch-bookmark-interval (a minute by default,
// 200ms here), carrying a resourceVersion no older than the last event
// and following later writes; a watch resumed from a bookmark sees only
// later changes; a watch that did not ask for bookmarks gets none.
func TestIntegrationWatchBookmarks(t *testing.T) {
	const interval = 200 * time.Millisecond
	s := apiservertest.Start(t, func(o *apiserver.Options) { o.WatchBookmarkInterval = interval })
	cs := itClientset(t, s, false)
	itNamespace(t, cs, "bm")
	w := &cmWriter{t: t, s: s, cs: cs, ns: "bm"}
	w.create("a", "1")
	wi, err := cs.CoreV1().ConfigMaps("bm").Watch(itCtx(t), metav1.ListOptions{ResourceVersion: "0", AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer wi.Stop()
	plain, err := cs.CoreV1().ConfigMaps("bm").Watch(itCtx(t), metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Stop()

	// nextBookmark returns the resourceVersion of the next BOOKMARK; the
	// deadline is many intervals, so only a missing bookmark trips it.
	nextBookmark := func() string {
		t.Helper()
		deadline := time.After(50 * interval)
		for {
			select {
			case ev, ok := <-wi.ResultChan():
				if !ok {
					t.Fatal("watch ended before a bookmark")
				}
				if ev.Type != watch.Bookmark {
					reduce(t, ev)
					continue
				}
				cm, ok := ev.Object.(*corev1.ConfigMap)
				if !ok {
					t.Fatalf("bookmark object %T, want *ConfigMap", ev.Object)
				}
				if cm.Name != "" || len(cm.Data) != 0 {
					t.Errorf("bookmark carries an object: %+v", cm)
				}
				return cm.ResourceVersion
			case <-deadline:
				t.Fatalf("no BOOKMARK within %v of a watch with allowWatchBookmarks (interval %v)", 50*interval, interval)
			}
		}
	}

	lastRV := w.update("a", "2")
	// The first bookmark may have been queued before the update; the one
	// after it cannot have been.
	nextBookmark()
	bookmarkRV := nextBookmark()
	if itRV(t, bookmarkRV) < itRV(t, lastRV) {
		t.Errorf("bookmark resourceVersion %s is older than the last event %s", bookmarkRV, lastRV)
	}
	// Later bookmarks follow later writes.
	later := w.create("b", "1")
	nextBookmark()
	if rv := nextBookmark(); itRV(t, rv) < itRV(t, later) {
		t.Errorf("bookmark resourceVersion %s after a write at %s", rv, later)
	}

	w.update("a", "3")
	resumed := itWatch(t, cs, "bm", metav1.ListOptions{ResourceVersion: bookmarkRV})
	w.expectExactly(t, resumed, w.since(bookmarkRV))

	// Four bookmarks on the first watch means several intervals passed:
	// the watch that did not ask for bookmarks must have none queued.
	for {
		select {
		case ev := <-plain.ResultChan():
			if ev.Type == watch.Bookmark {
				t.Fatalf("a watch without allowWatchBookmarks got a BOOKMARK")
			}
			continue
		default:
		}
		break
	}
}

// TestIntegrationWatchAcrossRestart: a watch from a resourceVersion taken
// before the API server restarted delivers every change since then exactly
// once, in order.
func TestIntegrationWatchAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := apiservertest.StartIn(t, dir)
	cs := itClientset(t, s, false)
	itNamespace(t, cs, "restart")
	w := &cmWriter{t: t, s: s, cs: cs, ns: "restart"}
	startRV := w.create("a", "1")
	w.create("b", "1")
	w.update("a", "2")
	w.delete("b")
	w.create("c", "1")
	s.Stop()

	s2 := apiservertest.StartIn(t, dir)
	w.s, w.cs = s2, itClientset(t, s2, true)
	w.update("c", "2")
	w.create("d", "1")
	w.delete("a")
	wi := itWatch(t, w.cs, "restart", metav1.ListOptions{ResourceVersion: startRV})
	w.expectExactly(t, wi, w.since(startRV))

	// And the restarted server's own watch cache serves a fresh watch.
	l, err := w.cs.CoreV1().ConfigMaps("restart").List(itCtx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wi2 := itWatch(t, w.cs, "restart", metav1.ListOptions{ResourceVersion: l.ResourceVersion})
	w.update("d", "2")
	w.expectExactly(t, wi2, w.since(l.ResourceVersion))
}

// TestIntegrationWatchAndListAfterCompaction: once etcd has compacted a
// revision (and the watch cache no longer covers it), a watch from it is
// 410 Gone (reason Expired) — as the response or as an ERROR event — and
// so is a list with a continue token pinned to it.
func TestIntegrationWatchAndListAfterCompaction(t *testing.T) {
	s := apiservertest.Start(t, func(o *apiserver.Options) { o.WatchCacheSize = 4 })
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	itNamespace(t, cs, "compact")
	w := &cmWriter{t: t, s: s, cs: cs, ns: "compact"}
	for i := range 5 {
		w.create(fmt.Sprintf("cm-%d", i), "1")
	}
	oldRV := w.update("cm-0", "2")
	page, err := cs.CoreV1().ConfigMaps("compact").List(ctx, metav1.ListOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if page.Continue == "" {
		t.Fatal("no continue token for a 2-item page of 5")
	}
	// Move on well past the small watch cache, then compact everything.
	for i := range 10 {
		w.update("cm-1", fmt.Sprint(i))
	}
	head := itEtcdHead(t, s)
	if _, err := s.EtcdClient().Compact(ctx, head); err != nil {
		t.Fatal(err)
	}

	t.Run("watch", func(t *testing.T) {
		// A watch that ends without an event means "resume from your last
		// resourceVersion" (the watch cache closes its watchers when it
		// relists, which compaction can cause on a loaded machine), so a
		// client re-watches; the answer must then be 410. Allow a few.
		for attempt := 1; ; attempt++ {
			wi, err := cs.CoreV1().ConfigMaps("compact").Watch(ctx, metav1.ListOptions{ResourceVersion: oldRV})
			if err != nil {
				st := itWantStatus(t, err, 410, metav1.StatusReasonExpired)
				t.Logf("watch from a compacted revision: %d %s %q", st.Code, st.Reason, st.Message)
				return
			}
			select {
			case ev, ok := <-wi.ResultChan():
				wi.Stop()
				if !ok {
					if attempt == 3 {
						t.Fatal("watch from a compacted revision ended without an error, 3 times")
					}
					continue
				}
				st, isStatus := ev.Object.(*metav1.Status)
				if ev.Type != watch.Error || !isStatus || st.Code != 410 || st.Reason != metav1.StatusReasonExpired {
					t.Fatalf("watch from a compacted revision: first event %s %+v, want ERROR 410 Expired", ev.Type, ev.Object)
				}
				return
			case <-time.After(30 * time.Second):
				wi.Stop()
				t.Fatal("watch from a compacted revision: nothing within 30s")
			}
		}
	})

	t.Run("continue", func(t *testing.T) {
		_, err := cs.CoreV1().ConfigMaps("compact").List(ctx, metav1.ListOptions{Limit: 2, Continue: page.Continue})
		itWantStatus(t, err, 410, metav1.StatusReasonExpired)
	})

	t.Run("raw watch status", func(t *testing.T) {
		c := newClient(t, s)
		code, body := c.do("GET", "/api/v1/namespaces/compact/configmaps?watch=1&resourceVersion="+oldRV, "", "")
		if code == 200 {
			if !strings.Contains(fmt.Sprint(body), "410") {
				t.Fatalf("raw watch: 200 without a 410 error event: %v", body)
			}
			return
		}
		if code != 410 || body["reason"] != "Expired" || body["kind"] != "Status" {
			t.Fatalf("raw watch: %d %v, want 410 Status Expired", code, body)
		}
	})

	t.Run("new watches still work", func(t *testing.T) {
		wi := itWatch(t, cs, "compact", metav1.ListOptions{ResourceVersion: fmt.Sprint(head)})
		w.update("cm-2", "z")
		w.expectExactly(t, wi, w.since(fmt.Sprint(head)))
	})
}

// waitCacheCaughtUp waits until a list served from the watch cache
// (resourceVersion=0) is at least at rv, so that a watch with
// resourceVersion=0 starts from a snapshot that includes rv.
func waitCacheCaughtUp(t testing.TB, cs kubernetes.Interface, ns, rv string) {
	t.Helper()
	itEventually(t, 30*time.Second, "list?resourceVersion=0 catching up", func() error {
		l, err := cs.CoreV1().ConfigMaps(ns).List(itCtx(t), metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return err
		}
		if itRV(t, l.ResourceVersion) < itRV(t, rv) {
			return fmt.Errorf("cache list at %s, last write %s", l.ResourceVersion, rv)
		}
		return nil
	})
}

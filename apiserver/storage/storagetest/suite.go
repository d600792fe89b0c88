package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik8s/minik8s/apiserver/storage"
)

// Factory builds the storage.Interface under test for Widgets (Prefix) on a
// fresh etcd, and returns the raw client of that etcd (to compact, or to
// look at what is stored).
type Factory func(t *testing.T) (storage.Interface, *clientv3.Client)

// RunConformance runs the behaviour every storage.Interface implementation
// must show, whether it talks to etcd directly or through a cache. skip
// names subtests an implementation covers elsewhere (e.g. a cache that
// only delegates writes need not repeat the heavy write tests).
func RunConformance(t *testing.T, f Factory, skip ...string) {
	cases := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"CreateGet", testCreateGet},
		{"GuaranteedUpdateConcurrent", testGuaranteedUpdateConcurrent},
		{"GuaranteedUpdateNoop", testGuaranteedUpdateNoop},
		{"GuaranteedUpdateFromCache", testGuaranteedUpdateFromCache},
		{"Preconditions", testPreconditions},
		{"Delete", testDelete},
		{"ListPagingSnapshot", testListPagingSnapshot},
		{"ListPagingPredicate", testListPagingPredicate},
		{"ListContinueCompacted", testListContinueCompacted},
		{"ListResourceVersion", testListResourceVersion},
		{"LabelSelectorWithoutAttrs", testLabelSelectorWithoutAttrs},
		{"WatchFromRV", testWatchFromRV},
		{"WatchInitialEvents", testWatchInitialEvents},
		{"WatchPredicateTransitions", testWatchPredicateTransitions},
		{"WatchExactKeyAndNamespace", testWatchExactKeyAndNamespace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if slices.Contains(skip, c.name) {
				t.Skip("covered elsewhere")
			}
			c.fn(t, f)
		})
	}
}

// Ctx returns a context that ends with the test.
func Ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// MustCreate stores w and returns the stored copy.
func MustCreate(t *testing.T, s storage.Interface, w *Widget) *Widget {
	t.Helper()
	out := &Widget{}
	if err := s.Create(Ctx(t), Key(w.Namespace, w.Name), w, out); err != nil {
		t.Fatalf("create %s/%s: %v", w.Namespace, w.Name, err)
	}
	return out
}

// MustUpdate applies change to the stored Widget and returns the result.
func MustUpdate(t *testing.T, s storage.Interface, ns, name string, change func(*Widget)) *Widget {
	t.Helper()
	out := &Widget{}
	err := s.GuaranteedUpdate(Ctx(t), Key(ns, name), out, nil, func(cur runtime.Object) (runtime.Object, error) {
		w := cur.(*Widget)
		change(w)
		return w, nil
	}, nil)
	if err != nil {
		t.Fatalf("update %s/%s: %v", ns, name, err)
	}
	return out
}

// MustDelete deletes a Widget and returns its last state.
func MustDelete(t *testing.T, s storage.Interface, ns, name string) *Widget {
	t.Helper()
	out := &Widget{}
	if err := s.Delete(Ctx(t), Key(ns, name), out, nil, nil); err != nil {
		t.Fatalf("delete %s/%s: %v", ns, name, err)
	}
	return out
}

// MustList lists Widgets under prefix.
func MustList(t *testing.T, s storage.Interface, prefix string, opts storage.ListOptions) *WidgetList {
	t.Helper()
	l := &WidgetList{}
	if err := s.GetList(Ctx(t), prefix, opts, l); err != nil {
		t.Fatalf("list %s %+v: %v", prefix, opts, err)
	}
	return l
}

// MustRevision returns the current etcd revision.
func MustRevision(t *testing.T, s storage.Interface) int64 {
	t.Helper()
	rev, err := s.Revision(Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// MustRV parses the resourceVersion of a stored object.
func MustRV(t *testing.T, o metav1.Object) int64 {
	t.Helper()
	n, err := RV(o)
	if err != nil {
		t.Fatalf("resourceVersion %q of %s: %v", o.GetResourceVersion(), o.GetName(), err)
	}
	return n
}

// ListRV parses a list's resourceVersion.
func ListRV(t *testing.T, l *WidgetList) int64 {
	t.Helper()
	n, err := strconv.ParseInt(l.ResourceVersion, 10, 64)
	if err != nil {
		t.Fatalf("list resourceVersion %q: %v", l.ResourceVersion, err)
	}
	return n
}

// eventWait bounds how long a test waits for an expected event. It is a
// failure bound, not a measurement.
const eventWait = 30 * time.Second

// NextEvent returns the next event of w or fails the test.
func NextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed, want an event")
		}
		return ev
	case <-time.After(eventWait):
		t.Fatal("no watch event")
	}
	return watch.Event{}
}

// NextNonBookmark skips bookmarks.
func NextNonBookmark(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	for {
		ev := NextEvent(t, w)
		if ev.Type != watch.Bookmark {
			return ev
		}
	}
}

// ExpectEvent reads the next event and checks its type, name, Count and
// resourceVersion (rv 0 = do not check).
func ExpectEvent(t *testing.T, w watch.Interface, typ watch.EventType, name string, count int, rv int64) *Widget {
	t.Helper()
	ev := NextNonBookmark(t, w)
	wd, ok := ev.Object.(*Widget)
	if ev.Type != typ || !ok || wd.Name != name || wd.Spec.Count != count {
		t.Fatalf("got event %s %s, want %s %s count=%d", ev.Type, describe(ev.Object), typ, name, count)
	}
	if rv != 0 && MustRV(t, wd) != rv {
		t.Fatalf("event %s %s: resourceVersion %s, want %d", typ, name, wd.ResourceVersion, rv)
	}
	return wd
}

// ExpectQuiet checks that no event other than bookmarks arrives for a
// short while (a bounded look, used after the events a test expects).
func ExpectQuiet(t *testing.T, w watch.Interface) {
	t.Helper()
	deadline := time.After(300 * time.Millisecond)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("watch closed unexpectedly")
			}
			if ev.Type != watch.Bookmark {
				t.Fatalf("unexpected event %s %s", ev.Type, describe(ev.Object))
			}
		case <-deadline:
			return
		}
	}
}

func describe(o runtime.Object) string {
	switch v := o.(type) {
	case *Widget:
		return fmt.Sprintf("%s/%s count=%d rv=%s", v.Namespace, v.Name, v.Spec.Count, v.ResourceVersion)
	case *metav1.Status:
		return fmt.Sprintf("Status %d %s: %s", v.Code, v.Reason, v.Message)
	default:
		return fmt.Sprintf("%T", o)
	}
}

func testCreateGet(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	in := New("ns1", "a", "red", 1)
	in.Labels = map[string]string{"app": "x"}
	out := MustCreate(t, s, in)
	if out.Name != "a" || out.Spec.Color != "red" || out.Labels["app"] != "x" || MustRV(t, out) == 0 {
		t.Fatalf("create returned %+v", out)
	}
	got := &Widget{}
	if err := s.Get(ctx, Key("ns1", "a"), got); err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion != out.ResourceVersion || got.Spec != out.Spec || got.UID != in.UID {
		t.Fatalf("get returned %+v, want %+v", got, out)
	}
	// Decoding into a used object must not leave stale fields behind.
	stale := &Widget{Spec: WidgetSpec{Note: "stale"}}
	stale.Annotations = map[string]string{"stale": "yes"}
	if err := s.Get(ctx, Key("ns1", "a"), stale); err != nil {
		t.Fatal(err)
	}
	if stale.Spec.Note != "" || stale.Annotations != nil {
		t.Fatalf("get into a used object kept stale fields: %+v", stale)
	}

	err := s.Create(ctx, Key("ns1", "a"), New("ns1", "a", "blue", 2), &Widget{})
	if !storage.IsExists(err) {
		t.Fatalf("second create: err = %v, want KeyExists", err)
	}
	err = s.Get(ctx, Key("ns1", "missing"), &Widget{})
	var se *storage.Error
	if !storage.IsNotFound(err) || !errors.As(err, &se) || se.Key != Key("ns1", "missing") {
		t.Fatalf("get missing: err = %v, want NotFound naming the key", err)
	}
	withRV := New("ns1", "b", "red", 1)
	withRV.ResourceVersion = "5"
	if err := s.Create(ctx, Key("ns1", "b"), withRV, &Widget{}); !storage.IsCode(err, storage.ErrCodeInvalidObj) {
		t.Fatalf("create with resourceVersion: err = %v, want InvalidObj", err)
	}
	if err := s.Get(ctx, "/registry/other/ns1/a", &Widget{}); !storage.IsCode(err, storage.ErrCodeInvalidObj) {
		t.Fatalf("get outside prefix: err = %v, want InvalidObj", err)
	}
}

func testGuaranteedUpdateConcurrent(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	MustCreate(t, s, New("ns1", "counter", "red", 0))
	const workers, perWorker = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				err := s.GuaranteedUpdate(ctx, Key("ns1", "counter"), &Widget{}, nil, func(cur runtime.Object) (runtime.Object, error) {
					w := cur.(*Widget)
					w.Spec.Count++
					return w, nil
				}, nil)
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := &Widget{}
	if err := s.Get(ctx, Key("ns1", "counter"), got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Count != workers*perWorker {
		t.Fatalf("count = %d, want %d", got.Spec.Count, workers*perWorker)
	}
}

func testGuaranteedUpdateNoop(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	created := MustCreate(t, s, New("ns1", "a", "red", 1))
	before := MustRevision(t, s)
	out := &Widget{}
	err := s.GuaranteedUpdate(ctx, Key("ns1", "a"), out, nil, func(cur runtime.Object) (runtime.Object, error) {
		return cur, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.ResourceVersion != created.ResourceVersion || out.Spec != created.Spec {
		t.Fatalf("no-op update returned %+v, want %+v", out, created)
	}
	if after := MustRevision(t, s); after != before {
		t.Fatalf("no-op update wrote: revision %d -> %d", before, after)
	}
	// A real change gets a new resourceVersion, and the returned object
	// carries it.
	upd := MustUpdate(t, s, "ns1", "a", func(w *Widget) { w.Spec.Count = 2 })
	if MustRV(t, upd) <= MustRV(t, created) || upd.Spec.Count != 2 {
		t.Fatalf("update returned %+v", upd)
	}
	if err := s.GuaranteedUpdate(ctx, Key("ns1", "missing"), &Widget{}, nil, func(cur runtime.Object) (runtime.Object, error) {
		return cur, nil
	}, nil); !storage.IsNotFound(err) {
		t.Fatalf("update missing: err = %v, want NotFound", err)
	}
	sentinel := errors.New("refused by tryUpdate")
	if err := s.GuaranteedUpdate(ctx, Key("ns1", "a"), &Widget{}, nil, func(cur runtime.Object) (runtime.Object, error) {
		return nil, sentinel
	}, nil); !errors.Is(err, sentinel) {
		t.Fatalf("tryUpdate error: got %v, want it returned as is", err)
	}
}

// testGuaranteedUpdateFromCache: a cached copy handed to GuaranteedUpdate
// only saves a read; whether it is current or stale, the update applies to
// what is stored, as without it.
func testGuaranteedUpdateFromCache(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	stale := MustCreate(t, s, New("ns1", "a", "red", 1)) // count 1
	MustUpdate(t, s, "ns1", "a", func(w *Widget) { w.Spec.Count = 5 })
	update := func(cached *Widget, precond *storage.Preconditions, try func(w *Widget) error) (*Widget, error) {
		t.Helper()
		out := &Widget{}
		var c runtime.Object
		if cached != nil {
			c = cached.DeepCopyObject()
		}
		err := s.GuaranteedUpdate(ctx, Key("ns1", "a"), out, precond, func(cur runtime.Object) (runtime.Object, error) {
			w := cur.(*Widget)
			if err := try(w); err != nil {
				return nil, err
			}
			return w, nil
		}, c)
		return out, err
	}
	inc := func(w *Widget) error { w.Spec.Count++; return nil }

	// A stale copy: the increment applies to the stored 5, not the cached 1.
	got, err := update(stale, nil, inc)
	if err != nil || got.Spec.Count != 6 {
		t.Fatalf("update from a stale copy: %+v %v, want count 6", got.Spec, err)
	}
	// A current copy.
	current := got
	got, err = update(current, nil, inc)
	if err != nil || got.Spec.Count != 7 || MustRV(t, got) <= MustRV(t, current) {
		t.Fatalf("update from a current copy: count %d rv %s (was %s) %v, want count 7 and a newer rv",
			got.Spec.Count, got.ResourceVersion, current.ResourceVersion, err)
	}
	// tryUpdate refusing the stale state is asked again on the stored one.
	got, err = update(stale, nil, func(w *Widget) error {
		if w.Spec.Count != 7 {
			return errors.New("not the stored state")
		}
		w.Spec.Color = "blue"
		return nil
	})
	if err != nil || got.Spec.Color != "blue" {
		t.Fatalf("tryUpdate refusing the stale copy: %+v %v, want a retry on the stored state", got.Spec, err)
	}
	// A change that is a no-op against the stale copy (count 1 -> 1) but
	// not against the stored object (7 -> 1) is written.
	got, err = update(stale, nil, func(w *Widget) error { w.Spec.Count, w.Spec.Color = 1, "red"; return nil })
	if err != nil || got.Spec.Count != 1 || got.Spec.Color != "red" {
		t.Fatalf("no-op only against the stale copy: %+v %v", got.Spec, err)
	}
	stored := &Widget{}
	if err := s.Get(ctx, Key("ns1", "a"), stored); err != nil || stored.Spec.Count != 1 || stored.ResourceVersion != got.ResourceVersion {
		t.Fatalf("stored %+v rv %s, want count 1 at %s (%v)", stored.Spec, stored.ResourceVersion, got.ResourceVersion, err)
	}
	// A real no-op on a current copy writes nothing.
	before := MustRevision(t, s)
	if got, err = update(stored, nil, func(*Widget) error { return nil }); err != nil || got.ResourceVersion != stored.ResourceVersion {
		t.Fatalf("no-op from a current copy: rv %s %v, want %s", got.ResourceVersion, err, stored.ResourceVersion)
	}
	if after := MustRevision(t, s); after != before {
		t.Fatalf("a no-op from a current copy wrote: revision %d -> %d", before, after)
	}

	// The object was deleted and created again: the copy of the old one
	// fails the UID precondition, the stored one passes it.
	MustDelete(t, s, "ns1", "a")
	again := New("ns1", "a", "green", 10)
	again.UID = "uid-second"
	MustCreate(t, s, again)
	uid := again.UID
	got, err = update(stale, &storage.Preconditions{UID: &uid}, inc)
	if err != nil || got.Spec.Count != 11 || got.UID != uid {
		t.Fatalf("stale copy of a re-created object: %+v uid %s %v", got.Spec, got.UID, err)
	}
	MustDelete(t, s, "ns1", "a")
	if _, err := update(stale, nil, inc); !storage.IsNotFound(err) {
		t.Fatalf("update of a deleted object from a stale copy: %v, want NotFound", err)
	}
}

func testPreconditions(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	created := MustCreate(t, s, New("ns1", "a", "red", 1))
	inc := func(cur runtime.Object) (runtime.Object, error) {
		w := cur.(*Widget)
		w.Spec.Count++
		return w, nil
	}
	wrongUID := types.UID("other")
	err := s.GuaranteedUpdate(ctx, Key("ns1", "a"), &Widget{}, &storage.Preconditions{UID: &wrongUID}, inc, nil)
	if !storage.IsCode(err, storage.ErrCodePrecondition) {
		t.Fatalf("uid precondition: err = %v, want Precondition", err)
	}
	staleRV := "1"
	err = s.GuaranteedUpdate(ctx, Key("ns1", "a"), &Widget{}, &storage.Preconditions{ResourceVersion: &staleRV}, inc, nil)
	if !storage.IsConflict(err) {
		t.Fatalf("rv precondition: err = %v, want Conflict", err)
	}
	uid, rv := created.UID, created.ResourceVersion
	out := &Widget{}
	if err := s.GuaranteedUpdate(ctx, Key("ns1", "a"), out, &storage.Preconditions{UID: &uid, ResourceVersion: &rv}, inc, nil); err != nil {
		t.Fatalf("matching preconditions: %v", err)
	}
	if out.Spec.Count != 2 {
		t.Fatalf("count = %d, want 2", out.Spec.Count)
	}
	// The old resourceVersion is stale now.
	if err := s.Delete(ctx, Key("ns1", "a"), &Widget{}, &storage.Preconditions{ResourceVersion: &rv}, nil); !storage.IsConflict(err) {
		t.Fatalf("delete with stale rv: err = %v, want Conflict", err)
	}
	if err := s.Delete(ctx, Key("ns1", "a"), &Widget{}, &storage.Preconditions{UID: &wrongUID}, nil); !storage.IsCode(err, storage.ErrCodePrecondition) {
		t.Fatalf("delete with wrong uid: err = %v, want Precondition", err)
	}
	rv2 := out.ResourceVersion
	if err := s.Delete(ctx, Key("ns1", "a"), &Widget{}, &storage.Preconditions{UID: &uid, ResourceVersion: &rv2}, nil); err != nil {
		t.Fatalf("delete with matching preconditions: %v", err)
	}
}

func testDelete(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	MustCreate(t, s, New("ns1", "a", "red", 1))
	upd := MustUpdate(t, s, "ns1", "a", func(w *Widget) { w.Spec.Count = 7 })

	refused := errors.New("has finalizers")
	if err := s.Delete(ctx, Key("ns1", "a"), &Widget{}, nil, func(cur runtime.Object) error {
		if cur.(*Widget).Spec.Count != 7 {
			return fmt.Errorf("validate saw %+v", cur)
		}
		return refused
	}); !errors.Is(err, refused) {
		t.Fatalf("validate error: got %v, want it returned as is", err)
	}
	if err := s.Get(ctx, Key("ns1", "a"), &Widget{}); err != nil {
		t.Fatalf("object gone after a refused delete: %v", err)
	}
	out := MustDelete(t, s, "ns1", "a")
	if out.Spec.Count != 7 || out.ResourceVersion != upd.ResourceVersion {
		t.Fatalf("delete returned %+v, want the last state %+v", out, upd)
	}
	if err := s.Get(ctx, Key("ns1", "a"), &Widget{}); !storage.IsNotFound(err) {
		t.Fatalf("get after delete: err = %v, want NotFound", err)
	}
	if err := s.Delete(ctx, Key("ns1", "a"), &Widget{}, nil, nil); !storage.IsNotFound(err) {
		t.Fatalf("second delete: err = %v, want NotFound", err)
	}
}

func names(l *WidgetList) []string {
	var out []string
	for _, w := range l.Items {
		out = append(out, w.Name)
	}
	return out
}

// A paged list is one snapshot: writes between pages do not show up in
// later pages, and every page reports the first page's resourceVersion.
func testListPagingSnapshot(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	want := map[string]int{}
	for i := range 25 {
		name := fmt.Sprintf("w%02d", i*2) // leave gaps to insert between
		MustCreate(t, s, New("ns1", name, "red", i))
		want[name] = i
	}
	MustCreate(t, s, New("ns2", "other", "red", 99)) // outside ns1/

	p1 := MustList(t, s, Prefix+"ns1/", storage.ListOptions{Limit: 10})
	if len(p1.Items) != 10 || p1.Continue == "" {
		t.Fatalf("page 1: %d items, continue %q", len(p1.Items), p1.Continue)
	}
	if p1.RemainingItemCount == nil || *p1.RemainingItemCount != 15 {
		t.Fatalf("page 1 remainingItemCount = %v, want 15", p1.RemainingItemCount)
	}
	// Writes between pages: a new key on a later page, an update and a
	// delete of objects on later pages.
	MustCreate(t, s, New("ns1", "w31", "red", 100))
	MustUpdate(t, s, "ns1", "w40", func(w *Widget) { w.Spec.Count = 1000 })
	MustDelete(t, s, "ns1", "w44")

	p2 := MustList(t, s, Prefix+"ns1/", storage.ListOptions{Limit: 10, Continue: p1.Continue})
	MustCreate(t, s, New("ns1", "w47", "red", 100))
	p3 := MustList(t, s, Prefix+"ns1/", storage.ListOptions{Limit: 10, Continue: p2.Continue})
	if len(p2.Items) != 10 || len(p3.Items) != 5 || p3.Continue != "" || p3.RemainingItemCount != nil {
		t.Fatalf("pages 2,3: %d and %d items, final continue %q", len(p2.Items), len(p3.Items), p3.Continue)
	}
	got := map[string]int{}
	var order []string
	for _, p := range []*WidgetList{p1, p2, p3} {
		if p.ResourceVersion != p1.ResourceVersion {
			t.Fatalf("page resourceVersion %s, want %s (the first page's)", p.ResourceVersion, p1.ResourceVersion)
		}
		for _, w := range p.Items {
			got[w.Name] = w.Spec.Count
			order = append(order, w.Name)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged list = %v\nwant the snapshot %v", got, want)
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Fatalf("items not in key order: %v", order)
		}
	}
	// A fresh list sees the writes.
	all := MustList(t, s, Prefix+"ns1/", storage.ListOptions{})
	if len(all.Items) != 26 || all.Continue != "" {
		t.Fatalf("unpaged list: %d items (%v)", len(all.Items), names(all))
	}
	if ListRV(t, all) <= ListRV(t, p1) {
		t.Fatalf("list resourceVersion did not advance: %s then %s", p1.ResourceVersion, all.ResourceVersion)
	}
	// A prefix without its trailing slash still lists only that namespace.
	if l := MustList(t, s, Prefix+"ns2", storage.ListOptions{}); len(l.Items) != 1 {
		t.Fatalf("list of ns2: %v", names(l))
	}
	if err := s.GetList(ctx, Prefix+"ns1/", storage.ListOptions{Limit: 10, Continue: "garbage!"}, &WidgetList{}); err == nil {
		t.Fatal("garbage continue token accepted")
	}
}

func testListPagingPredicate(t *testing.T, f Factory) {
	s, _ := f(t)
	for i := range 30 {
		color := "blue"
		if i%3 == 0 {
			color = "red"
		}
		MustCreate(t, s, New("ns1", fmt.Sprintf("w%02d", i), color, i))
	}
	pred := storage.Predicate{Field: fields.OneTermEqualSelector("spec.color", "red"), GetAttrs: Attrs}
	var all []string
	cont := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		l := MustList(t, s, Prefix, storage.ListOptions{Predicate: pred, Limit: 4, Continue: cont})
		if len(l.Items) > 4 {
			t.Fatalf("page has %d items, limit 4", len(l.Items))
		}
		for _, w := range l.Items {
			if w.Spec.Color != "red" {
				t.Fatalf("predicate not applied: %s is %s", w.Name, w.Spec.Color)
			}
			all = append(all, w.Name)
		}
		if l.Continue == "" {
			break
		}
		if len(l.Items) != 4 {
			t.Fatalf("a page with more to come has %d items, want 4", len(l.Items))
		}
		cont = l.Continue
	}
	if len(all) != 10 {
		t.Fatalf("paged filtered list: %v, want the 10 red widgets", all)
	}
	l := MustList(t, s, Prefix, storage.ListOptions{Predicate: pred})
	if len(l.Items) != 10 {
		t.Fatalf("unpaged filtered list: %v", names(l))
	}
}

func testListContinueCompacted(t *testing.T, f Factory) {
	s, client := f(t)
	ctx := Ctx(t)
	for i := range 5 {
		MustCreate(t, s, New("ns1", fmt.Sprintf("w%d", i), "red", i))
	}
	p1 := MustList(t, s, Prefix, storage.ListOptions{Limit: 2})
	MustUpdate(t, s, "ns1", "w0", func(w *Widget) { w.Spec.Count = 50 })
	if _, err := client.Compact(ctx, MustRevision(t, s)); err != nil {
		t.Fatal(err)
	}
	err := s.GetList(ctx, Prefix, storage.ListOptions{Limit: 2, Continue: p1.Continue}, &WidgetList{})
	if !storage.IsExpired(err) {
		t.Fatalf("continue after compaction: err = %v, want Expired", err)
	}
}

func testListResourceVersion(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	c1 := MustCreate(t, s, New("ns1", "a", "red", 1))
	MustUpdate(t, s, "ns1", "a", func(w *Widget) { w.Spec.Count = 2 })
	MustCreate(t, s, New("ns1", "b", "red", 1))

	// "N" with a limit reads exactly at N.
	l := MustList(t, s, Prefix, storage.ListOptions{ResourceVersion: c1.ResourceVersion, Limit: 10})
	if len(l.Items) != 1 || l.Items[0].Spec.Count != 1 || l.ResourceVersion != c1.ResourceVersion {
		t.Fatalf("exact list at %s: rv %s items %+v", c1.ResourceVersion, l.ResourceVersion, l.Items)
	}
	// "N" without a limit is "at least N": the current state.
	l = MustList(t, s, Prefix, storage.ListOptions{ResourceVersion: c1.ResourceVersion})
	if len(l.Items) != 2 || ListRV(t, l) < MustRV(t, c1) {
		t.Fatalf("not-older-than list: rv %s items %v", l.ResourceVersion, names(l))
	}
	cur := MustRevision(t, s)
	future := fmt.Sprint(cur + 1000)
	err := s.GetList(ctx, Prefix, storage.ListOptions{ResourceVersion: future}, &WidgetList{})
	if !storage.IsCode(err, storage.ErrCodeTooLargeResourceVersion) {
		t.Fatalf("list at future rv: err = %v, want TooLargeResourceVersion", err)
	}
	// An empty list still carries the revision.
	l = MustList(t, s, Prefix+"empty/", storage.ListOptions{})
	if len(l.Items) != 0 || ListRV(t, l) < cur || l.Items == nil {
		t.Fatalf("empty list: rv %s items %#v", l.ResourceVersion, l.Items)
	}
	if err := s.GetList(ctx, Prefix, storage.ListOptions{ResourceVersion: "abc"}, &WidgetList{}); err == nil {
		t.Fatal("bad resourceVersion accepted")
	}
}

// Watching from N delivers exactly the changes after N, in order, then
// live changes.
func testWatchFromRV(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	MustCreate(t, s, New("ns1", "a", "red", 1))
	mark := MustUpdate(t, s, "ns1", "a", func(w *Widget) { w.Spec.Count = 2 })
	b := MustCreate(t, s, New("ns1", "b", "red", 1))
	a3 := MustUpdate(t, s, "ns1", "a", func(w *Widget) { w.Spec.Count = 3 })
	MustDelete(t, s, "ns1", "b")
	delRev := MustRevision(t, s)

	w, err := s.Watch(ctx, Prefix, storage.WatchOptions{ResourceVersion: mark.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ExpectEvent(t, w, watch.Added, "b", 1, MustRV(t, b))
	ExpectEvent(t, w, watch.Modified, "a", 3, MustRV(t, a3))
	// DELETED carries the last state, stamped with the deletion revision.
	ExpectEvent(t, w, watch.Deleted, "b", 1, delRev)
	c := MustCreate(t, s, New("ns1", "c", "red", 1))
	ExpectEvent(t, w, watch.Added, "c", 1, MustRV(t, c))
	ExpectQuiet(t, w)

	// Stop closes the result channel.
	w.Stop()
	select {
	case _, ok := <-w.ResultChan():
		for ok {
			_, ok = <-w.ResultChan()
		}
	case <-time.After(eventWait):
		t.Fatal("result channel not closed after Stop")
	}
}

func testWatchInitialEvents(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	a := MustCreate(t, s, New("ns1", "a", "red", 1))
	b := MustCreate(t, s, New("ns1", "b", "blue", 1))
	for _, rv := range []string{"", "0"} {
		w, err := s.Watch(ctx, Prefix, storage.WatchOptions{ResourceVersion: rv})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for range 2 {
			ev := NextNonBookmark(t, w)
			wd := ev.Object.(*Widget)
			if ev.Type != watch.Added {
				t.Fatalf("rv %q: initial event %s %s", rv, ev.Type, wd.Name)
			}
			got[wd.Name] = MustRV(t, wd)
		}
		if got["a"] != MustRV(t, a) || got["b"] != MustRV(t, b) {
			t.Fatalf("rv %q: initial events %v", rv, got)
		}
		upd := MustUpdate(t, s, "ns1", "a", func(w *Widget) { w.Spec.Count++ })
		ExpectEvent(t, w, watch.Modified, "a", upd.Spec.Count, MustRV(t, upd))
		ExpectQuiet(t, w)
		w.Stop()
		a = upd
	}
}

// CheckWatchCompacted: a watch from a compacted revision fails with 410
// Expired. Not part of RunConformance because a cache may legitimately
// still hold those events and serve them.
func CheckWatchCompacted(t *testing.T, f Factory) {
	s, client := f(t)
	ctx := Ctx(t)
	old := MustCreate(t, s, New("ns1", "a", "red", 1))
	MustUpdate(t, s, "ns1", "a", func(w *Widget) { w.Spec.Count = 2 })
	MustUpdate(t, s, "ns1", "a", func(w *Widget) { w.Spec.Count = 3 })
	if _, err := client.Compact(ctx, MustRevision(t, s)); err != nil {
		t.Fatal(err)
	}
	// The first resourceVersion any client could have seen is gone.
	w, err := s.Watch(ctx, Prefix, storage.WatchOptions{ResourceVersion: fmt.Sprint(MustRV(t, old) - 1)})
	if err == nil {
		// Kubernetes may also report it in-stream; accept that form.
		ev := NextEvent(t, w)
		st, ok := ev.Object.(*metav1.Status)
		w.Stop()
		if ev.Type != watch.Error || !ok || st.Code != 410 || st.Reason != metav1.StatusReasonExpired {
			t.Fatalf("watch from compacted rv: got %s %s, want 410 Expired", ev.Type, describe(ev.Object))
		}
		return
	}
	if !storage.IsExpired(err) {
		t.Fatalf("watch from compacted rv: err = %v, want Expired", err)
	}
}

func testWatchPredicateTransitions(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	start := MustRevision(t, s)
	pred := storage.Predicate{Field: fields.OneTermEqualSelector("spec.color", "red"), GetAttrs: Attrs}
	w, err := s.Watch(ctx, Prefix, storage.WatchOptions{ResourceVersion: fmt.Sprint(start), Predicate: pred})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	MustCreate(t, s, New("ns1", "a", "blue", 1))                                // hidden
	r := MustUpdate(t, s, "ns1", "a", func(w *Widget) { w.Spec.Color = "red" }) // starts matching
	ExpectEvent(t, w, watch.Added, "a", 1, MustRV(t, r))
	r = MustUpdate(t, s, "ns1", "a", func(w *Widget) { w.Spec.Count = 2 })
	ExpectEvent(t, w, watch.Modified, "a", 2, MustRV(t, r))
	g := MustUpdate(t, s, "ns1", "a", func(w *Widget) { w.Spec.Color = "green" }) // stops matching
	ev := ExpectEvent(t, w, watch.Deleted, "a", 2, MustRV(t, g))
	if ev.Spec.Color != "red" {
		t.Fatalf("stop-matching DELETED carries %q, want the last matching state (red)", ev.Spec.Color)
	}
	MustDelete(t, s, "ns1", "a") // hidden: it was not red
	MustCreate(t, s, New("ns1", "b", "red", 5))
	ExpectEvent(t, w, watch.Added, "b", 5, 0)
	MustDelete(t, s, "ns1", "b")
	ExpectEvent(t, w, watch.Deleted, "b", 5, MustRevision(t, s))
	ExpectQuiet(t, w)
}

func testWatchExactKeyAndNamespace(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	start := fmt.Sprint(MustRevision(t, s))
	wKey, err := s.Watch(ctx, Key("ns1", "a"), storage.WatchOptions{ResourceVersion: start})
	if err != nil {
		t.Fatal(err)
	}
	defer wKey.Stop()
	wNS, err := s.Watch(ctx, Prefix+"ns1/", storage.WatchOptions{ResourceVersion: start})
	if err != nil {
		t.Fatal(err)
	}
	defer wNS.Stop()
	MustCreate(t, s, New("ns1", "ab", "red", 1)) // shares the key's prefix
	MustCreate(t, s, New("ns10", "a", "red", 1))
	MustCreate(t, s, New("ns1", "a", "red", 2))
	ExpectEvent(t, wKey, watch.Added, "a", 2, 0)
	ExpectEvent(t, wNS, watch.Added, "ab", 1, 0)
	ExpectEvent(t, wNS, watch.Added, "a", 2, 0)
	ExpectQuiet(t, wKey)
	ExpectQuiet(t, wNS)
}

// A label selector works even when the caller gave no GetAttrs, both for
// lists and for watches.
func testLabelSelectorWithoutAttrs(t *testing.T, f Factory) {
	s, _ := f(t)
	ctx := Ctx(t)
	start := fmt.Sprint(MustRevision(t, s))
	sel, err := labels.Parse("app=web")
	if err != nil {
		t.Fatal(err)
	}
	pred := storage.Predicate{Label: sel}
	w, err := s.Watch(ctx, Prefix, storage.WatchOptions{ResourceVersion: start, Predicate: pred})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i, app := range []string{"web", "db", "web"} {
		o := New("ns1", fmt.Sprintf("w%d", i), "red", i)
		o.Labels = map[string]string{"app": app}
		MustCreate(t, s, o)
	}
	ExpectEvent(t, w, watch.Added, "w0", 0, 0)
	ExpectEvent(t, w, watch.Added, "w2", 2, 0)
	ExpectQuiet(t, w)
	for _, rv := range []string{"", "0"} {
		deadline := time.Now().Add(eventWait)
		for {
			l := MustList(t, s, Prefix, storage.ListOptions{Predicate: pred, ResourceVersion: rv})
			if fmt.Sprint(names(l)) == "[w0 w2]" {
				break
			}
			// resourceVersion "0" may be served by a cache that is a
			// moment behind.
			if rv == "" || time.Now().After(deadline) {
				t.Fatalf("list rv=%q with app=web: %v", rv, names(l))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

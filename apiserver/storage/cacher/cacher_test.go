package cacher_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik8s/minik8s/apiserver/etcd/etcdtest"
	"github.com/minik8s/minik8s/apiserver/storage"
	"github.com/minik8s/minik8s/apiserver/storage/cacher"
	"github.com/minik8s/minik8s/apiserver/storage/etcd3"
	"github.com/minik8s/minik8s/apiserver/storage/storagetest"
)

func newEtcdStore(client *clientv3.Client) storage.Interface {
	return etcd3.New(client, storagetest.Codec(), storagetest.NewFunc, storagetest.NewListFunc, storagetest.Prefix, nil,
		etcd3.WithProgressInterval(100*time.Millisecond))
}

func newCacher(t *testing.T, under storage.Interface, mod func(*cacher.Config)) *cacher.Cacher {
	t.Helper()
	cfg := cacher.Config{
		Prefix:      storagetest.Prefix,
		NewFunc:     storagetest.NewFunc,
		NewListFunc: storagetest.NewListFunc,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := cacher.New(context.Background(), under, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	if err := c.WaitReady(storagetest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformance(t *testing.T) {
	storagetest.RunConformance(t, func(t *testing.T) (storage.Interface, *clientv3.Client) {
		client := etcdtest.Start(t)
		return newCacher(t, newEtcdStore(client), nil), client
	})
}

// counting wraps a store and counts the reads that reach it.
type counting struct {
	storage.Interface
	lists   atomic.Int64
	watches atomic.Int64
}

func (c *counting) GetList(ctx context.Context, prefix string, opts storage.ListOptions, l runtime.Object) error {
	c.lists.Add(1)
	return c.Interface.GetList(ctx, prefix, opts, l)
}

func (c *counting) Watch(ctx context.Context, prefix string, opts storage.WatchOptions) (watch.Interface, error) {
	c.watches.Add(1)
	return c.Interface.Watch(ctx, prefix, opts)
}

// waitCached lists with resourceVersion "0" until the cache reflects at
// least revision rev.
func waitCached(t *testing.T, s storage.Interface, prefix string, rev int64) *storagetest.WidgetList {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := storagetest.MustList(t, s, prefix, storage.ListOptions{ResourceVersion: "0"})
		if storagetest.ListRV(t, l) >= rev {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache stuck at revision %s, want %d", l.ResourceVersion, rev)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestListFromCache(t *testing.T) {
	client := etcdtest.Start(t)
	under := &counting{Interface: newEtcdStore(client)}
	c := newCacher(t, under, nil)
	for i := range 12 {
		color := "blue"
		if i%2 == 0 {
			color = "red"
		}
		storagetest.MustCreate(t, c, storagetest.New("ns1", fmt.Sprintf("w%02d", 11-i), color, i))
	}
	storagetest.MustCreate(t, c, storagetest.New("ns2", "x", "red", 0))
	rev := storagetest.MustRevision(t, c)
	l := waitCached(t, c, storagetest.Prefix, rev)
	if len(l.Items) != 13 || storagetest.ListRV(t, l) != rev {
		t.Fatalf("cached list: rv %s, %d items", l.ResourceVersion, len(l.Items))
	}
	for i := 1; i < len(l.Items); i++ {
		if storagetest.Key(l.Items[i-1].Namespace, l.Items[i-1].Name) >= storagetest.Key(l.Items[i].Namespace, l.Items[i].Name) {
			t.Fatalf("cached list not sorted by key at %d", i)
		}
	}
	listsBefore := under.lists.Load()

	// Namespace prefix, predicate, and Limit ignored as with Kubernetes'
	// resourceVersion=0.
	pred := storage.Predicate{Field: fields.OneTermEqualSelector("spec.color", "red"), GetAttrs: storagetest.Attrs}
	l = storagetest.MustList(t, c, storagetest.Prefix+"ns1/", storage.ListOptions{ResourceVersion: "0", Predicate: pred, Limit: 2})
	if len(l.Items) != 6 || l.Continue != "" {
		t.Fatalf("cached filtered list: %d items, continue %q", len(l.Items), l.Continue)
	}
	for _, w := range l.Items {
		if w.Namespace != "ns1" || w.Spec.Color != "red" {
			t.Fatalf("cached filtered list has %s/%s %s", w.Namespace, w.Name, w.Spec.Color)
		}
	}
	// What a caller gets is a copy: scribbling on it changes nothing.
	l.Items[0].Spec.Color = "scribbled"
	l.Items[0].Labels = map[string]string{"x": "y"}
	again := storagetest.MustList(t, c, storagetest.Prefix+"ns1/", storage.ListOptions{ResourceVersion: "0", Predicate: pred})
	if again.Items[0].Spec.Color != "red" || again.Items[0].Labels != nil {
		t.Fatalf("cache was modified through a listed object: %+v", again.Items[0])
	}
	if n := under.lists.Load(); n != listsBefore {
		t.Fatalf("resourceVersion=0 lists reached etcd %d times", n-listsBefore)
	}
	// Anything but "0" is read from etcd.
	storagetest.MustList(t, c, storagetest.Prefix, storage.ListOptions{})
	if under.lists.Load() != listsBefore+1 {
		t.Fatal("a consistent list did not go to etcd")
	}
}

// The one etcd watch of the cache serves any number of watchers.
func TestOneEtcdWatchForManyWatchers(t *testing.T) {
	client := etcdtest.Start(t)
	under := &counting{Interface: newEtcdStore(client)}
	c := newCacher(t, under, nil)
	ctx := storagetest.Ctx(t)
	var ws []watch.Interface
	for range 10 {
		w, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: "0"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		ws = append(ws, w)
	}
	a := storagetest.MustCreate(t, c, storagetest.New("ns1", "a", "red", 1))
	for _, w := range ws {
		storagetest.ExpectEvent(t, w, watch.Added, "a", 1, storagetest.MustRV(t, a))
	}
	if n := under.watches.Load(); n != 1 {
		t.Fatalf("etcd watches = %d, want 1", n)
	}
}

// Watching from a resourceVersion delivers every later change exactly
// once, also from a new cache instance (an apiserver restart) that has
// never seen those changes: it falls back to etcd's history.
func TestWatchFromRVAcrossRestart(t *testing.T) {
	client := etcdtest.Start(t)
	ctx := storagetest.Ctx(t)
	first, err := cacher.New(context.Background(), newEtcdStore(client), cacher.Config{
		Prefix: storagetest.Prefix, NewFunc: storagetest.NewFunc, NewListFunc: storagetest.NewListFunc,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Stop()
	if err := first.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	type change struct {
		typ   watch.EventType
		name  string
		count int
		rev   int64
	}
	var changes []change
	write := func(s storage.Interface, i int) {
		name := fmt.Sprintf("w%d", i%4)
		out := &storagetest.Widget{}
		err := s.Create(ctx, storagetest.Key("ns1", name), storagetest.New("ns1", name, "red", i), out)
		typ := watch.Added
		if storage.IsExists(err) {
			if i%3 == 0 {
				out = storagetest.MustDelete(t, s, "ns1", name)
				changes = append(changes, change{watch.Deleted, name, out.Spec.Count, storagetest.MustRevision(t, s)})
				return
			}
			out = storagetest.MustUpdate(t, s, "ns1", name, func(w *storagetest.Widget) { w.Spec.Count = i })
			typ, err = watch.Modified, nil
		}
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, change{typ, name, out.Spec.Count, storagetest.MustRV(t, out)})
	}
	for i := range 10 {
		write(first, i)
	}
	from := changes[2].rev
	expectFrom := func(w watch.Interface, after int64) {
		t.Helper()
		for _, ch := range changes {
			if ch.rev > after {
				storagetest.ExpectEvent(t, w, ch.typ, ch.name, ch.count, ch.rev)
			}
		}
	}
	w1, err := first.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: fmt.Sprint(from)})
	if err != nil {
		t.Fatal(err)
	}
	expectFrom(w1, from)
	storagetest.ExpectQuiet(t, w1)
	w1.Stop()
	first.Stop()

	lastSeenByFirst := changes[len(changes)-1].rev
	for i := 10; i < 16; i++ {
		write(client2store(client), i)
	}
	under := &counting{Interface: newEtcdStore(client)}
	second := newCacher(t, under, nil)
	for _, rv := range []int64{from, lastSeenByFirst} {
		w, err := second.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: fmt.Sprint(rv)})
		if err != nil {
			t.Fatal(err)
		}
		expectFrom(w, rv)
		storagetest.ExpectQuiet(t, w)
		// Live changes follow, once.
		n := len(changes)
		write(second, 16+int(rv%2))
		expectFrom(w, changes[n-1].rev)
		storagetest.ExpectQuiet(t, w)
		w.Stop()
	}
	if under.watches.Load() < 3 {
		t.Fatalf("old resourceVersions were not served from etcd (%d etcd watches)", under.watches.Load())
	}
}

func client2store(client *clientv3.Client) storage.Interface { return newEtcdStore(client) }

// Older than the buffer and compacted in etcd: 410 Expired. Still in the
// buffer: served, even though etcd no longer has it.
func TestWatchOlderThanBufferCompacted(t *testing.T) {
	client := etcdtest.Start(t)
	c := newCacher(t, newEtcdStore(client), func(cfg *cacher.Config) { cfg.EventBufferSize = 3 })
	ctx := storagetest.Ctx(t)
	first := storagetest.MustCreate(t, c, storagetest.New("ns1", "a", "red", 0))
	var last *storagetest.Widget
	for i := 1; i <= 6; i++ {
		last = storagetest.MustUpdate(t, c, "ns1", "a", func(w *storagetest.Widget) { w.Spec.Count = i })
	}
	waitCached(t, c, storagetest.Prefix, storagetest.MustRV(t, last))
	if _, err := client.Compact(ctx, storagetest.MustRevision(t, c)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: first.ResourceVersion})
	if !storage.IsExpired(err) {
		t.Fatalf("watch older than buffer after compaction: err = %v, want Expired", err)
	}
	// The last 3 events are buffered: resuming from the 4th-last works.
	w, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: fmt.Sprint(storagetest.MustRV(t, last) - 3)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := 4; i <= 6; i++ {
		storagetest.ExpectEvent(t, w, watch.Modified, "a", i, 0)
	}
	storagetest.ExpectQuiet(t, w)
}

// A resourceVersion newer than anything the cache saw (the resource is
// idle while others change) is fine; one from etcd's future is not.
func TestWatchAheadOfCache(t *testing.T) {
	client := etcdtest.Start(t)
	c := newCacher(t, newEtcdStore(client), func(cfg *cacher.Config) { cfg.FreshnessWait = 200 * time.Millisecond })
	ctx := storagetest.Ctx(t)
	storagetest.MustCreate(t, c, storagetest.New("ns1", "a", "red", 0))
	r, err := client.Put(ctx, "/registry/others/x", "y")
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: fmt.Sprint(r.Header.Revision)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	b := storagetest.MustCreate(t, c, storagetest.New("ns1", "b", "red", 1))
	storagetest.ExpectEvent(t, w, watch.Added, "b", 1, storagetest.MustRV(t, b))
	storagetest.ExpectQuiet(t, w)

	_, err = c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: fmt.Sprint(r.Header.Revision + 1000)})
	if !storage.IsCode(err, storage.ErrCodeTooLargeResourceVersion) {
		t.Fatalf("watch from the future: err = %v, want TooLargeResourceVersion", err)
	}
}

func TestBookmarks(t *testing.T) {
	client := etcdtest.Start(t)
	c := newCacher(t, newEtcdStore(client), func(cfg *cacher.Config) { cfg.BookmarkInterval = 50 * time.Millisecond })
	ctx := storagetest.Ctx(t)
	a := storagetest.MustCreate(t, c, storagetest.New("ns1", "a", "red", 0))
	waitCached(t, c, storagetest.Prefix, storagetest.MustRV(t, a))

	wb, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: a.ResourceVersion, AllowBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Stop()
	plain, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: a.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Stop()

	// Idle: bookmarks still come, with the cache's revision, as an
	// otherwise empty Widget.
	ev := storagetest.NextEvent(t, wb)
	bm, ok := ev.Object.(*storagetest.Widget)
	if ev.Type != watch.Bookmark || !ok || bm.Name != "" || storagetest.MustRV(t, bm) < storagetest.MustRV(t, a) {
		t.Fatalf("got %s %#v, want a bookmark", ev.Type, ev.Object)
	}
	// After a change, a bookmark follows the event and is not older.
	b := storagetest.MustCreate(t, c, storagetest.New("ns1", "b", "red", 0))
	storagetest.ExpectEvent(t, wb, watch.Added, "b", 0, storagetest.MustRV(t, b))
	for {
		ev := storagetest.NextEvent(t, wb)
		if ev.Type != watch.Bookmark {
			t.Fatalf("unexpected %s", ev.Type)
		}
		if storagetest.MustRV(t, ev.Object.(*storagetest.Widget)) >= storagetest.MustRV(t, b) {
			break
		}
	}
	// Revisions of other resources reach idle caches through etcd
	// progress notifications.
	r, err := client.Put(ctx, "/registry/others/x", "y")
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev := storagetest.NextEvent(t, wb)
		if storagetest.MustRV(t, ev.Object.(*storagetest.Widget)) >= r.Header.Revision {
			break
		}
	}
	// A watch that did not ask for bookmarks gets only the event.
	storagetest.ExpectEvent(t, plain, watch.Added, "b", 0, 0)
	select {
	case ev := <-plain.ResultChan():
		t.Fatalf("watch without bookmarks got %s", ev.Type)
	case <-time.After(300 * time.Millisecond):
	}
}

// A watcher that does not read is closed once its queue is full; the
// others get every event meanwhile.
func TestSlowWatcherDropped(t *testing.T) {
	client := etcdtest.Start(t)
	c := newCacher(t, newEtcdStore(client), func(cfg *cacher.Config) { cfg.WatcherBufferSize = 5 })
	ctx := storagetest.Ctx(t)
	start := fmt.Sprint(storagetest.MustRevision(t, c))
	slow, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: start})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Stop()
	fast, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: start})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Stop()

	// The fast watcher reads each event before the next write, so its
	// queue never holds more than one; the slow one never reads.
	const n = 40
	for i := range n {
		storagetest.MustCreate(t, c, storagetest.New("ns1", fmt.Sprintf("w%02d", i), "red", i))
		storagetest.ExpectEvent(t, fast, watch.Added, fmt.Sprintf("w%02d", i), i, 0)
	}
	read := 0
	deadline := time.After(30 * time.Second)
	for {
		select {
		case _, ok := <-slow.ResultChan():
			if !ok {
				if read >= n {
					t.Fatalf("slow watcher got all %d events; it was never dropped", read)
				}
				return
			}
			read++
		case <-deadline:
			t.Fatal("slow watcher never closed")
		}
	}
}

// Objects in events are copies per watcher.
func TestWatchObjectsAreCopies(t *testing.T) {
	client := etcdtest.Start(t)
	c := newCacher(t, newEtcdStore(client), nil)
	ctx := storagetest.Ctx(t)
	w1, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w1.Stop()
	w2, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	storagetest.MustCreate(t, c, storagetest.New("ns1", "a", "red", 1))
	o1 := storagetest.ExpectEvent(t, w1, watch.Added, "a", 1, 0)
	o1.Spec.Color = "scribbled"
	o1.Labels = map[string]string{"x": "y"}
	o2 := storagetest.ExpectEvent(t, w2, watch.Added, "a", 1, 0)
	if o2.Spec.Color != "red" || o2.Labels != nil {
		t.Fatalf("second watcher saw the first one's changes: %+v", o2)
	}
	w3, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w3.Stop()
	if o3 := storagetest.ExpectEvent(t, w3, watch.Added, "a", 1, 0); o3.Spec.Color != "red" {
		t.Fatalf("cache was modified through an event object: %+v", o3)
	}
}

// breakable hands out watches the test can break, like an etcd outage.
type breakable struct {
	storage.Interface
	mu      sync.Mutex
	current *brokenWatch
	count   int
}

type brokenWatch struct {
	watch.Interface
	out  chan watch.Event
	kill chan struct{}
}

func (b *breakable) Watch(ctx context.Context, prefix string, opts storage.WatchOptions) (watch.Interface, error) {
	w, err := b.Interface.Watch(ctx, prefix, opts)
	if err != nil {
		return nil, err
	}
	bw := &brokenWatch{Interface: w, out: make(chan watch.Event), kill: make(chan struct{})}
	go func() {
		defer close(bw.out)
		for {
			select {
			case <-bw.kill:
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				select {
				case bw.out <- ev:
				case <-bw.kill:
					return
				}
			}
		}
	}()
	b.mu.Lock()
	b.current, b.count = bw, b.count+1
	b.mu.Unlock()
	return bw, nil
}

func (w *brokenWatch) ResultChan() <-chan watch.Event { return w.out }
func (w *brokenWatch) Stop() {
	w.Interface.Stop()
	select {
	case <-w.kill:
	default:
		close(w.kill)
	}
}

// When its etcd watch breaks the cache closes its watchers, relists, and
// serves again; changes made meanwhile are not lost.
func TestRelistAfterWatchFailure(t *testing.T) {
	client := etcdtest.Start(t)
	under := &breakable{Interface: newEtcdStore(client)}
	c := newCacher(t, under, nil)
	ctx := storagetest.Ctx(t)
	a := storagetest.MustCreate(t, c, storagetest.New("ns1", "a", "red", 1))
	w, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	storagetest.ExpectEvent(t, w, watch.Added, "a", 1, storagetest.MustRV(t, a))

	under.mu.Lock()
	under.current.Stop()
	under.mu.Unlock()
	for {
		_, ok := <-w.ResultChan()
		if !ok {
			break // the watcher was closed
		}
	}
	b := storagetest.MustCreate(t, c, storagetest.New("ns1", "b", "red", 2))
	l := waitCached(t, c, storagetest.Prefix, storagetest.MustRV(t, b))
	if len(l.Items) != 2 {
		t.Fatalf("after relist the cache has %d objects, want 2", len(l.Items))
	}
	// Resuming from the last seen revision gets the change made meanwhile.
	w2, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: a.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	storagetest.ExpectEvent(t, w2, watch.Added, "b", 2, storagetest.MustRV(t, b))
	under.mu.Lock()
	defer under.mu.Unlock()
	if under.count < 2 {
		t.Fatalf("cache did not re-watch (%d watches)", under.count)
	}
}

// Stopping the cache ends the watches it serves.
func TestStopEndsWatchers(t *testing.T) {
	client := etcdtest.Start(t)
	c, err := cacher.New(context.Background(), newEtcdStore(client), cacher.Config{
		Prefix: storagetest.Prefix, NewFunc: storagetest.NewFunc, NewListFunc: storagetest.NewListFunc,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := storagetest.Ctx(t)
	w, err := c.Watch(ctx, storagetest.Prefix, storage.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Stop()
	for {
		select {
		case _, ok := <-w.ResultChan():
			if !ok {
				if err := c.GetList(ctx, storagetest.Prefix, storage.ListOptions{ResourceVersion: "0"}, &storagetest.WidgetList{}); err == nil {
					t.Fatal("a stopped cache served a list")
				}
				return
			}
		case <-time.After(30 * time.Second):
			t.Fatal("watch not closed after the cache stopped")
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := cacher.New(context.Background(), nil, cacher.Config{}); err == nil {
		t.Fatal("New accepted an empty config")
	}
}

// cachedArg records the cached copy each GuaranteedUpdate hands down.
type cachedArg struct {
	storage.Interface
	mu   sync.Mutex
	seen []runtime.Object
	rvs  []string // their resourceVersions when handed down
}

func (c *cachedArg) GuaranteedUpdate(ctx context.Context, key string, out runtime.Object, p *storage.Preconditions,
	try func(runtime.Object) (runtime.Object, error), cached runtime.Object) error {
	c.mu.Lock()
	c.seen = append(c.seen, cached)
	if w, ok := cached.(*storagetest.Widget); ok {
		c.rvs = append(c.rvs, w.ResourceVersion)
	} else {
		c.rvs = append(c.rvs, "")
	}
	c.mu.Unlock()
	return c.Interface.GuaranteedUpdate(ctx, key, out, p, try, cached)
}

// TestGuaranteedUpdateStartsFromTheCache: an update of an object the
// cache holds hands the store a private copy of it (so the store need not
// read etcd); an object the cache does not hold gets none.
func TestGuaranteedUpdateStartsFromTheCache(t *testing.T) {
	client := etcdtest.Start(t)
	under := &cachedArg{Interface: newEtcdStore(client)}
	c := newCacher(t, under, nil)
	created := storagetest.MustCreate(t, c, storagetest.New("ns1", "a", "red", 1))
	waitCached(t, c, storagetest.Prefix, storagetest.MustRV(t, created))
	var handed *storagetest.Widget
	err := c.GuaranteedUpdate(storagetest.Ctx(t), storagetest.Key("ns1", "a"), &storagetest.Widget{}, nil,
		func(cur runtime.Object) (runtime.Object, error) {
			w := cur.(*storagetest.Widget)
			handed = w
			w.Spec.Count = 2
			w.Labels = map[string]string{"changed": "yes"}
			return w, nil
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	under.mu.Lock()
	seen, rvs := under.seen, under.rvs
	under.mu.Unlock()
	w, ok := seen[0].(*storagetest.Widget)
	if len(seen) != 1 || !ok || rvs[0] != created.ResourceVersion {
		t.Fatalf("the store was handed %v, want the cached object at resourceVersion %s", seen, created.ResourceVersion)
	}
	if handed != w {
		t.Errorf("tryUpdate did not start from the cached copy")
	}
	// tryUpdate changed its copy; the cache's own object must not change.
	l := storagetest.MustList(t, c, storagetest.Prefix, storage.ListOptions{ResourceVersion: "0"})
	for _, item := range l.Items {
		if item.ResourceVersion == created.ResourceVersion && (item.Spec.Count != 1 || item.Labels != nil) {
			t.Errorf("the cached object was modified by an update: %+v", item)
		}
	}
	if err := c.GuaranteedUpdate(storagetest.Ctx(t), storagetest.Key("ns1", "missing"), &storagetest.Widget{}, nil,
		func(cur runtime.Object) (runtime.Object, error) { return cur, nil }, nil); !storage.IsNotFound(err) {
		t.Fatalf("update of an object nobody has: %v, want NotFound", err)
	}
	if under.seen[1] != nil {
		t.Errorf("an object not in the cache was handed down as %v", under.seen[1])
	}
}

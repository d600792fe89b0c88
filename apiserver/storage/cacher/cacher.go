package cacher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik8s/minik8s/apiserver/storage"
)

// Defaults for Config fields left zero.
const (
	DefaultEventBufferSize   = 1000
	DefaultWatcherBufferSize = 100
	DefaultBookmarkInterval  = time.Minute
	DefaultFreshnessWait     = 3 * time.Second
)

// Config describes the resource a Cacher serves and how much it keeps.
type Config struct {
	// Prefix is the resource's key prefix, e.g. "/registry/pods/".
	Prefix string
	// NewFunc makes an empty object (bookmarks carry one); NewListFunc an
	// empty list (for the initial list).
	NewFunc     func() runtime.Object
	NewListFunc func() runtime.Object
	// KeyFunc returns the etcd key of an object. Default:
	// Prefix+namespace+"/"+name, or Prefix+name for cluster-scoped
	// objects, the layout the registry uses.
	KeyFunc func(obj runtime.Object) (string, error)
	// EventBufferSize is how many recent events are kept for watches
	// that resume from a resourceVersion (DefaultEventBufferSize).
	EventBufferSize int
	// WatcherBufferSize is how many events may queue for one watcher;
	// a watcher that falls further behind is closed so it never holds
	// up the others (DefaultWatcherBufferSize).
	WatcherBufferSize int
	// BookmarkInterval is how often watchers that allow bookmarks get
	// one (DefaultBookmarkInterval).
	BookmarkInterval time.Duration
	// FreshnessWait bounds the wait for etcd to reach a requested
	// resourceVersion before ErrCodeTooLargeResourceVersion
	// (DefaultFreshnessWait).
	FreshnessWait time.Duration
}

// event is one change as the cache saw it.
type event struct {
	typ  watch.EventType // Added, Modified or Deleted
	key  string
	obj  runtime.Object // new state; for Deleted the last state, stamped with the deletion revision
	prev runtime.Object // state before the change; nil if the cache had none
	rev  int64
}

// Cacher implements storage.Interface with a watch cache in front of
// underlying. Objects in the cache are never modified after they are
// stored (a change replaces the pointer), so readers may hold them without
// the lock as long as they copy before handing them out.
type Cacher struct {
	cfg   Config
	under storage.Interface
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.RWMutex
	ready   bool
	readyCh chan struct{} // closed while ready
	objects map[string]runtime.Object
	rev     int64 // revision the cache reflects
	// The ring holds the latest events; together they cover every change
	// with a revision in (oldest, rev].
	ring     []event
	ringHead int // index of the oldest event
	ringLen  int
	oldest   int64

	watchers map[int]*cacheWatcher
	nextID   int
}

// New starts a cache for the resource cfg describes. It returns at once;
// reads wait until the initial list has been loaded. The cache runs until
// ctx ends or Stop is called.
func New(ctx context.Context, underlying storage.Interface, cfg Config) (*Cacher, error) {
	if underlying == nil || cfg.Prefix == "" || cfg.NewFunc == nil || cfg.NewListFunc == nil {
		return nil, errors.New("cacher: underlying, Prefix, NewFunc and NewListFunc are required")
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("cacher: prefix %q must end with /", cfg.Prefix)
	}
	if cfg.KeyFunc == nil {
		cfg.KeyFunc = defaultKeyFunc(cfg.Prefix)
	}
	if cfg.EventBufferSize <= 0 {
		cfg.EventBufferSize = DefaultEventBufferSize
	}
	if cfg.WatcherBufferSize <= 0 {
		cfg.WatcherBufferSize = DefaultWatcherBufferSize
	}
	if cfg.BookmarkInterval <= 0 {
		cfg.BookmarkInterval = DefaultBookmarkInterval
	}
	if cfg.FreshnessWait <= 0 {
		cfg.FreshnessWait = DefaultFreshnessWait
	}
	cctx, cancel := context.WithCancel(ctx)
	c := &Cacher{
		cfg:      cfg,
		under:    underlying,
		log:      slog.With("component", "watch-cache", "prefix", cfg.Prefix),
		ctx:      cctx,
		cancel:   cancel,
		readyCh:  make(chan struct{}),
		objects:  map[string]runtime.Object{},
		ring:     make([]event, cfg.EventBufferSize),
		watchers: map[int]*cacheWatcher{},
	}
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.run() }()
	go func() { defer c.wg.Done(); c.bookmarkLoop() }()
	return c, nil
}

// Stop ends the cache: its etcd watch, its goroutines and every watch
// served from it (their channels close). It waits for its own goroutines.
func (c *Cacher) Stop() {
	c.cancel()
	c.wg.Wait()
}

func defaultKeyFunc(prefix string) func(runtime.Object) (string, error) {
	return func(obj runtime.Object) (string, error) {
		acc, err := meta.Accessor(obj)
		if err != nil {
			return "", fmt.Errorf("cacher: object without metadata: %w", err)
		}
		if acc.GetName() == "" {
			return "", errors.New("cacher: object without a name")
		}
		if ns := acc.GetNamespace(); ns != "" {
			return prefix + ns + "/" + acc.GetName(), nil
		}
		return prefix + acc.GetName(), nil
	}
}

// WaitReady blocks until the cache holds a complete copy (the initial list
// is loaded) or ctx ends.
func (c *Cacher) WaitReady(ctx context.Context) error {
	for {
		if c.ctx.Err() != nil {
			return fmt.Errorf("watch cache of %s is stopped", c.cfg.Prefix)
		}
		c.mu.RLock()
		ready, ch := c.ready, c.readyCh
		c.mu.RUnlock()
		if ready {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for the watch cache of %s: %w", c.cfg.Prefix, ctx.Err())
		case <-c.ctx.Done():
			return fmt.Errorf("watch cache of %s is stopped", c.cfg.Prefix)
		}
	}
}

// run keeps the cache filled: list, then follow the watch; when the watch
// fails (etcd unreachable, history compacted under it) start over.
func (c *Cacher) run() {
	defer c.terminateAll()
	backoff := 100 * time.Millisecond
	for {
		started := time.Now()
		err := c.listAndWatch()
		if c.ctx.Err() != nil {
			return
		}
		c.log.Warn("watch cache lost its etcd watch; relisting", "reason", err)
		c.setUnready()
		c.terminateAll()
		if time.Since(started) > time.Minute {
			backoff = 100 * time.Millisecond // it worked for a while
		}
		t := time.NewTimer(backoff)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (c *Cacher) listAndWatch() error {
	list := c.cfg.NewListFunc()
	if err := c.under.GetList(c.ctx, c.cfg.Prefix, storage.ListOptions{}, list); err != nil {
		return fmt.Errorf("list %s: %w", c.cfg.Prefix, err)
	}
	listAcc, err := meta.ListAccessor(list)
	if err != nil {
		return fmt.Errorf("list %s: %w", c.cfg.Prefix, err)
	}
	rev, err := strconv.ParseInt(listAcc.GetResourceVersion(), 10, 64)
	if err != nil {
		return fmt.Errorf("list %s: resourceVersion %q: %w", c.cfg.Prefix, listAcc.GetResourceVersion(), err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return fmt.Errorf("list %s: %w", c.cfg.Prefix, err)
	}
	objects := make(map[string]runtime.Object, len(items))
	for _, obj := range items {
		key, err := c.cfg.KeyFunc(obj)
		if err != nil {
			return fmt.Errorf("list %s: %w", c.cfg.Prefix, err)
		}
		objects[key] = obj
	}
	w, err := c.under.Watch(c.ctx, c.cfg.Prefix, storage.WatchOptions{
		ResourceVersion: strconv.FormatInt(rev, 10),
		AllowBookmarks:  true, // progress notifications keep rev moving
	})
	if err != nil {
		return fmt.Errorf("watch %s from %d: %w", c.cfg.Prefix, rev, err)
	}
	defer w.Stop()

	c.mu.Lock()
	c.objects = objects
	c.rev = rev
	c.oldest = rev
	c.ringHead, c.ringLen = 0, 0
	clear(c.ring)
	c.ready = true
	close(c.readyCh)
	c.mu.Unlock()

	for {
		select {
		case <-c.ctx.Done():
			return c.ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return errors.New("etcd watch closed")
			}
			if err := c.apply(ev); err != nil {
				return err
			}
		}
	}
}

// apply records one event from etcd and hands it to every watcher.
func (c *Cacher) apply(ev watch.Event) error {
	if ev.Type == watch.Error {
		if st, ok := ev.Object.(*metav1.Status); ok {
			return fmt.Errorf("etcd watch error %d %s: %s", st.Code, st.Reason, st.Message)
		}
		return fmt.Errorf("etcd watch error: %v", ev.Object)
	}
	acc, err := meta.Accessor(ev.Object)
	if err != nil {
		return fmt.Errorf("event object: %w", err)
	}
	rev, err := strconv.ParseInt(acc.GetResourceVersion(), 10, 64)
	if err != nil {
		return fmt.Errorf("event resourceVersion %q: %w", acc.GetResourceVersion(), err)
	}
	if ev.Type == watch.Bookmark {
		c.mu.Lock()
		if rev > c.rev {
			c.rev = rev
		}
		c.mu.Unlock()
		return nil
	}
	key, err := c.cfg.KeyFunc(ev.Object)
	if err != nil {
		return err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	e := event{typ: ev.Type, key: key, obj: ev.Object, prev: c.objects[key], rev: rev}
	switch ev.Type {
	case watch.Added, watch.Modified:
		c.objects[key] = ev.Object
	case watch.Deleted:
		delete(c.objects, key)
	default:
		return fmt.Errorf("unexpected event type %q", ev.Type)
	}
	c.push(e)
	c.rev = rev
	for _, w := range c.watchers {
		if d, ok := w.convert(&e); ok {
			c.enqueue(w, d)
		}
	}
	return nil
}

// push appends to the ring, forgetting the oldest event when full.
func (c *Cacher) push(e event) {
	n := len(c.ring)
	if c.ringLen == n {
		c.oldest = c.ring[c.ringHead].rev
		c.ring[c.ringHead] = e
		c.ringHead = (c.ringHead + 1) % n
		return
	}
	c.ring[(c.ringHead+c.ringLen)%n] = e
	c.ringLen++
}

// eventsAfter returns buffered events with a revision above rev, oldest
// first. Callers hold c.mu and have checked rev >= c.oldest.
func (c *Cacher) eventsAfter(rev int64) []*event {
	n := len(c.ring)
	// Revisions grow along the ring; find the first one above rev.
	i := sort.Search(c.ringLen, func(i int) bool { return c.ring[(c.ringHead+i)%n].rev > rev })
	out := make([]*event, 0, c.ringLen-i)
	for ; i < c.ringLen; i++ {
		out = append(out, &c.ring[(c.ringHead+i)%n])
	}
	return out
}

func (c *Cacher) setUnready() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		c.ready = false
		c.readyCh = make(chan struct{})
	}
}

// terminateAll closes every watcher: after a relist the cache cannot tell
// them what they missed, so they resume (from their last resourceVersion)
// like any client whose watch ended.
func (c *Cacher) terminateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, w := range c.watchers {
		delete(c.watchers, id)
		w.cancel()
	}
}

func (c *Cacher) bookmarkLoop() {
	t := time.NewTicker(c.cfg.BookmarkInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		if c.ready {
			for _, w := range c.watchers {
				if !w.bookmarks {
					continue
				}
				// Going through the watcher's queue keeps the bookmark
				// behind every event it vouches for. A full queue just
				// skips this one.
				select {
				case w.input <- delivery{typ: watch.Bookmark, rev: max(c.rev, w.minRev)}:
				default:
				}
			}
		}
		c.mu.Unlock()
	}
}

// enqueue hands d to w without ever blocking; a watcher whose queue is
// full is closed. Callers hold c.mu.
func (c *Cacher) enqueue(w *cacheWatcher, d delivery) {
	select {
	case w.input <- d:
	default:
		c.log.Info("closing a watcher that fell behind", "reason", "queue full", "queue", cap(w.input))
		delete(c.watchers, w.id)
		w.cancel()
	}
}

func (c *Cacher) removeWatcher(id int) {
	c.mu.Lock()
	delete(c.watchers, id)
	c.mu.Unlock()
}

// inCache reports whether prefix is one the cache can answer for.
func (c *Cacher) inCache(prefix string) bool {
	return strings.HasPrefix(prefix, c.cfg.Prefix)
}

func keyMatcher(prefix string) func(string) bool {
	if strings.HasSuffix(prefix, "/") {
		return func(k string) bool { return strings.HasPrefix(k, prefix) }
	}
	return func(k string) bool { return k == prefix }
}

// GetList serves resourceVersion "0" (any recent state is fine) from the
// cache, sorted by key, with the cache's revision; like Kubernetes it
// ignores Limit then and returns everything. Other lists go to etcd.
func (c *Cacher) GetList(ctx context.Context, prefix string, opts storage.ListOptions, listObj runtime.Object) error {
	if opts.ResourceVersion != "0" || opts.Continue != "" || !c.inCache(prefix) {
		return c.under.GetList(ctx, prefix, opts, listObj)
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	listAcc, err := meta.ListAccessor(listObj)
	if err != nil {
		return storage.NewError(storage.ErrCodeInvalidObj, prefix, "list object: %v", err)
	}
	if err := c.WaitReady(ctx); err != nil {
		return err
	}
	match := keyMatcher(prefix)
	pred := opts.Predicate.WithDefaultAttrs()
	type kv struct {
		key string
		obj runtime.Object
	}
	var found []kv
	c.mu.RLock()
	rev := c.rev
	for k, o := range c.objects {
		if match(k) {
			found = append(found, kv{k, o})
		}
	}
	c.mu.RUnlock()
	slices.SortFunc(found, func(a, b kv) int { return strings.Compare(a.key, b.key) })
	items := make([]runtime.Object, 0, len(found))
	for _, f := range found {
		if ok, err := pred.Matches(f.obj); err != nil || !ok {
			continue
		}
		items = append(items, f.obj.DeepCopyObject())
	}
	if err := meta.SetList(listObj, items); err != nil {
		return storage.NewError(storage.ErrCodeInvalidObj, prefix, "fill list: %v", err)
	}
	listAcc.SetResourceVersion(strconv.FormatInt(rev, 10))
	listAcc.SetContinue("")
	listAcc.SetRemainingItemCount(nil)
	return nil
}

// Watch serves from the cache whenever it can:
//   - "" or "0": ADDED for every current object (that matches), then live
//     events;
//   - "N" still covered by the event buffer (or newer than the cache):
//     buffered events after N, then live events;
//   - "N" older than the buffer: a direct etcd watch, which replays etcd's
//     history exactly once or fails with 410 Expired if it is compacted.
func (c *Cacher) Watch(ctx context.Context, prefix string, opts storage.WatchOptions) (watch.Interface, error) {
	if !c.inCache(prefix) {
		return c.under.Watch(ctx, prefix, opts)
	}
	if opts.ResourceVersion == "" {
		// "" means "from the latest state", which the cache may trail by a
		// few events; etcd lists and watches consistently. Clients rarely
		// ask for this (informers watch from their list's revision and
		// "0" is served from the cache), so consistency wins over cost.
		return c.watchUnderlying(ctx, prefix, opts)
	}
	var fromRev int64 = -1 // -1: start with the current objects
	if rv := opts.ResourceVersion; rv != "" && rv != "0" {
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil || n < 0 {
			return nil, storage.NewError(storage.ErrCodeInvalidObj, prefix, "invalid resourceVersion %q: must be a non-negative integer", rv)
		}
		fromRev = n
	}
	checkedFresh := false
	for {
		if err := c.WaitReady(ctx); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if !c.ready {
			// Relisting started since WaitReady: registering now would
			// hand out state the relist is about to replace.
			c.mu.Unlock()
			continue
		}
		if fromRev >= 0 && fromRev < c.oldest {
			c.mu.Unlock()
			return c.watchUnderlying(ctx, prefix, opts)
		}
		if fromRev > c.rev && !checkedFresh {
			// Ahead of the cache. Usually the cache is just idle (the
			// revision came from a list of etcd), but a number etcd has
			// never reached would wait forever, so check etcd once.
			c.mu.Unlock()
			if err := c.waitForEtcd(ctx, prefix, fromRev); err != nil {
				return nil, err
			}
			checkedFresh = true
			continue
		}
		w := c.newWatcher(ctx, prefix, opts, fromRev)
		c.mu.Unlock()
		go w.process()
		return w, nil
	}
}

// newWatcher registers a watcher with its initial events. Callers hold c.mu.
func (c *Cacher) newWatcher(ctx context.Context, prefix string, opts storage.WatchOptions, fromRev int64) *cacheWatcher {
	wctx, cancel := context.WithCancel(ctx)
	stopWithCache := context.AfterFunc(c.ctx, cancel)
	w := &cacheWatcher{
		c:         c,
		id:        c.nextID,
		match:     keyMatcher(prefix),
		pred:      opts.Predicate.WithDefaultAttrs(),
		bookmarks: opts.AllowBookmarks,
		input:     make(chan delivery, c.cfg.WatcherBufferSize),
		result:    make(chan watch.Event),
		ctx:       wctx,
		cancel:    func() { stopWithCache(); cancel() },
		done:      make(chan struct{}),
	}
	c.nextID++
	if fromRev < 0 {
		w.minRev = c.rev
		keys := make([]string, 0, len(c.objects))
		for k := range c.objects {
			if w.match(k) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			if o := c.objects[k]; w.matches(o) {
				w.initial = append(w.initial, delivery{typ: watch.Added, obj: o})
			}
		}
	} else {
		w.minRev = fromRev
		for _, e := range c.eventsAfter(fromRev) {
			if d, ok := w.convert(e); ok {
				w.initial = append(w.initial, d)
			}
		}
	}
	c.watchers[w.id] = w
	return w
}

// waitForEtcd returns once etcd's revision is at least rev, or
// ErrCodeTooLargeResourceVersion after FreshnessWait.
func (c *Cacher) waitForEtcd(ctx context.Context, prefix string, rev int64) error {
	deadline := time.Now().Add(c.cfg.FreshnessWait)
	for {
		cur, err := c.under.Revision(ctx)
		if err != nil {
			return err
		}
		if cur >= rev {
			return nil
		}
		if time.Now().After(deadline) {
			return storage.NewError(storage.ErrCodeTooLargeResourceVersion, prefix, "%d, current: %d", rev, cur)
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for revision %d under %s: %w", rev, prefix, ctx.Err())
		case <-t.C:
		}
	}
}

// watchUnderlying opens a direct etcd watch that also ends with the cache.
func (c *Cacher) watchUnderlying(ctx context.Context, prefix string, opts storage.WatchOptions) (watch.Interface, error) {
	dctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel)
	context.AfterFunc(dctx, func() { stop() })
	w, err := c.under.Watch(dctx, prefix, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	return &underlyingWatch{Interface: w, cancel: cancel}, nil
}

type underlyingWatch struct {
	watch.Interface
	cancel context.CancelFunc
}

func (u *underlyingWatch) Stop() {
	u.Interface.Stop()
	u.cancel()
}

// Writes, Get and the revision are etcd's business.

func (c *Cacher) Create(ctx context.Context, key string, obj, out runtime.Object) error {
	return c.under.Create(ctx, key, obj, out)
}

func (c *Cacher) Get(ctx context.Context, key string, out runtime.Object) error {
	return c.under.Get(ctx, key, out)
}

// GuaranteedUpdate hands the underlying store a copy of the cached object
// to start from: when the cache is current (the usual case: a scheduler
// binding a pod it just saw created, a kubelet updating a status it just
// saw) the update needs no read from etcd. A stale copy costs one failed
// compare-and-swap, which returns the current object, so the result is the
// same as without the cache.
func (c *Cacher) GuaranteedUpdate(ctx context.Context, key string, out runtime.Object, precond *storage.Preconditions,
	tryUpdate func(current runtime.Object) (runtime.Object, error), cached runtime.Object) error {
	if cached == nil {
		c.mu.RLock()
		if obj, ok := c.objects[key]; ok && c.ready {
			cached = obj.DeepCopyObject() // the cache's objects are shared and never modified
		}
		c.mu.RUnlock()
	}
	return c.under.GuaranteedUpdate(ctx, key, out, precond, tryUpdate, cached)
}

func (c *Cacher) Delete(ctx context.Context, key string, out runtime.Object, precond *storage.Preconditions,
	validate func(current runtime.Object) error) error {
	return c.under.Delete(ctx, key, out, precond, validate)
}

func (c *Cacher) Revision(ctx context.Context) (int64, error) {
	return c.under.Revision(ctx)
}

var _ storage.Interface = (*Cacher)(nil)

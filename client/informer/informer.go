package informer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
)

// Options configure an Informer.
type Options struct {
	// Resource names what is watched, for logs and NotFound errors.
	Resource schema.GroupResource
	// ResyncPeriod, if > 0, re-delivers every cached object to handlers
	// as an Update(obj, obj) this often, so level-triggered controllers
	// periodically re-check everything even without changes.
	ResyncPeriod time.Duration
	// Indexers are extra indices besides NamespaceIndex.
	Indexers Indexers
	// PageSize is the list page size (limit); 0 means DefaultPageSize and
	// a negative value lists in one request.
	PageSize int64
	// Logger receives warnings about failed lists and watches; nil means
	// slog.Default().
	Logger *slog.Logger
}

// DefaultPageSize is how many objects one list request asks for.
const DefaultPageSize = 500

// Backoff between failed list/watch attempts: 800ms doubling to 30s, so a
// restarting API server is not hammered by every component at once.
const (
	backoffBase = 800 * time.Millisecond
	backoffMax  = 30 * time.Second
)

// minWatchTimeout is the shortest server-side watch timeout we ask for; the
// real one is randomized up to twice that so that all watches of a fleet do
// not reconnect at the same moment.
const minWatchTimeout = 5 * time.Minute

// Informer keeps an Indexer in sync with the API server and notifies
// handlers. Create it with New, add handlers, then Run it.
type Informer struct {
	lw      ListerWatcher
	opts    Options
	indexer *Indexer
	log     *slog.Logger

	// mu serializes store changes with handler fan-out and handler
	// registration, so every handler sees one consistent sequence.
	mu       sync.Mutex
	handlers []*registration
	lastRV   string
	runCtx   context.Context // set by Run
	running  bool
	stopped  bool
	wg       sync.WaitGroup // handler and resync goroutines

	synced atomic.Bool

	// sleep waits out a backoff; tests replace it to skip waiting.
	sleep func(ctx context.Context, d time.Duration)
	// shortWatch: a watch that ends without events sooner than this is
	// treated as a failure and backed off.
	shortWatch time.Duration
}

type registration struct {
	worker *handlerWorker
	resync time.Duration
}

// New returns an Informer that lists and watches through lw.
func New(lw ListerWatcher, opts Options) *Informer {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.PageSize == 0 {
		opts.PageSize = DefaultPageSize
	}
	return &Informer{
		lw:      lw,
		opts:    opts,
		indexer: NewIndexer(opts.Indexers),
		log:     log.With("component", "informer", "resource", opts.Resource.String()),
		sleep:   sleepContext,

		shortWatch: time.Second,
	}
}

// Indexer is the informer's store. Read it freely; never write to it.
func (i *Informer) Indexer() *Indexer { return i.indexer }

// Resource is what the informer watches.
func (i *Informer) Resource() schema.GroupResource { return i.opts.Resource }

// AddIndexers adds indices to the store; allowed at any time.
func (i *Informer) AddIndexers(indexers Indexers) error {
	return i.indexer.AddIndexers(indexers)
}

// HasSynced reports whether the first list has been stored (and its
// notifications queued for the handlers).
func (i *Informer) HasSynced() bool { return i.synced.Load() }

// LastSyncResourceVersion is the resourceVersion the informer has seen up
// to; a re-watch starts there.
func (i *Informer) LastSyncResourceVersion() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.lastRV
}

// AddEventHandler registers h with the informer's ResyncPeriod.
func (i *Informer) AddEventHandler(h Handler) error {
	return i.AddEventHandlerWithResync(h, i.opts.ResyncPeriod)
}

// AddEventHandlerWithResync registers h with its own resync period (0 =
// none). Added to a running informer, h first gets an Add for every object
// already cached. Fails once the informer has stopped.
func (i *Informer) AddEventHandlerWithResync(h Handler, resync time.Duration) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stopped {
		return fmt.Errorf("informer for %s has stopped; cannot add a handler", i.opts.Resource)
	}
	reg := &registration{worker: newHandlerWorker(h), resync: resync}
	i.handlers = append(i.handlers, reg)
	if i.running {
		for _, obj := range i.indexer.List() {
			reg.worker.push(notification{kind: notifyAdd, obj: obj})
		}
		i.startHandlerLocked(reg)
	}
	return nil
}

func (i *Informer) startHandlerLocked(reg *registration) {
	i.wg.Add(1)
	go func() {
		defer i.wg.Done()
		reg.worker.run(i.runCtx)
	}()
	if reg.resync > 0 {
		i.wg.Add(1)
		go func() {
			defer i.wg.Done()
			i.resyncLoop(i.runCtx, reg)
		}()
	}
}

func (i *Informer) resyncLoop(ctx context.Context, reg *registration) {
	t := time.NewTicker(reg.resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		i.mu.Lock()
		for _, obj := range i.indexer.List() {
			reg.worker.push(notification{kind: notifyUpdate, old: obj, obj: obj})
		}
		i.mu.Unlock()
	}
}

// Run lists, watches and notifies until ctx ends, then waits for its
// handler goroutines to stop. It retries failures with backoff and never
// returns early except when called twice.
func (i *Informer) Run(ctx context.Context) error {
	i.mu.Lock()
	if i.running || i.stopped {
		i.mu.Unlock()
		return fmt.Errorf("informer for %s: Run called twice", i.opts.Resource)
	}
	i.running = true
	i.runCtx = ctx
	for _, reg := range i.handlers {
		i.startHandlerLocked(reg)
	}
	i.mu.Unlock()

	i.loop(ctx)

	i.mu.Lock()
	i.stopped = true
	i.mu.Unlock()
	i.wg.Wait()
	return nil
}

// errExpired means the resourceVersion we hold is too old to watch from:
// the only way back is a fresh list.
var errExpired = errors.New("resource version expired")

// errShortWatch means a watch ended at once without events: back off before
// the next one so a misbehaving server cannot make us spin.
var errShortWatch = errors.New("watch closed immediately without events")

func isExpired(err error) bool {
	return errors.Is(err, errExpired) || apierrors.IsGone(err) || apierrors.IsResourceExpired(err)
}

func (i *Informer) loop(ctx context.Context) {
	b := &backoff{cur: backoffBase}
	for ctx.Err() == nil {
		err := i.listAndWatch(ctx, b)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			i.log.Warn("list failed; retrying", "err", err)
			i.sleep(ctx, b.next())
		}
	}
}

// listAndWatch does one list and then watches (re-watching from the last
// resourceVersion as often as needed) until the watch needs a relist. It
// returns an error only if the list failed.
func (i *Informer) listAndWatch(ctx context.Context, b *backoff) error {
	if err := i.list(ctx); err != nil {
		return err
	}
	b.reset()
	for ctx.Err() == nil {
		err := i.watch(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			b.reset()
		case isExpired(err):
			i.log.Info("watch expired; re-listing", "resourceVersion", i.LastSyncResourceVersion(), "err", err)
			return nil
		case errors.Is(err, errShortWatch):
			i.sleep(ctx, b.next())
		default:
			i.log.Warn("watch failed; re-watching", "resourceVersion", i.LastSyncResourceVersion(), "err", err)
			i.sleep(ctx, b.next())
		}
	}
	return nil
}

// list reads everything (paging through continue tokens) and reconciles
// the store with it.
func (i *Informer) list(ctx context.Context) error {
	opts := metav1.ListOptions{}
	if i.opts.PageSize > 0 {
		opts.Limit = i.opts.PageSize
	}
	var items []runtime.Object
	var rv string
	for {
		obj, err := i.lw.List(ctx, opts)
		if err != nil {
			if opts.Continue != "" && isExpired(err) {
				// The snapshot behind the continue token was compacted
				// away; start over in one unpaged request.
				opts = metav1.ListOptions{}
				items = nil
				continue
			}
			return fmt.Errorf("list %s: %w", i.opts.Resource, err)
		}
		page, err := meta.ExtractList(obj)
		if err != nil {
			return fmt.Errorf("list %s: %w", i.opts.Resource, err)
		}
		items = append(items, page...)
		la, err := meta.ListAccessor(obj)
		if err != nil {
			return fmt.Errorf("list %s: %w", i.opts.Resource, err)
		}
		rv = la.GetResourceVersion()
		if la.GetContinue() == "" {
			break
		}
		opts.Continue = la.GetContinue()
	}
	return i.replace(items, rv)
}

// replace makes the store equal to a fresh list and tells handlers what
// differs from what they were last told: adds, updates of objects whose
// resourceVersion moved, and deletes (as DeletedFinalStateUnknown, since
// the final state was never seen) of objects that are gone.
func (i *Informer) replace(items []runtime.Object, rv string) error {
	i.mu.Lock()
	defer i.mu.Unlock()

	var notes []notification
	seen := make(map[string]bool, len(items))
	for _, obj := range items {
		key, err := MetaNamespaceKeyFunc(obj)
		if err != nil {
			return fmt.Errorf("list %s: %w", i.opts.Resource, err)
		}
		seen[key] = true
		old, ok := i.indexer.Get(key)
		switch {
		case !ok:
			notes = append(notes, notification{kind: notifyAdd, obj: obj})
		case resourceVersion(old) != resourceVersion(obj):
			notes = append(notes, notification{kind: notifyUpdate, old: old, obj: obj})
		}
	}
	for _, key := range i.indexer.ListKeys() {
		if !seen[key] {
			old, _ := i.indexer.Get(key)
			notes = append(notes, notification{kind: notifyDelete, deleted: DeletedFinalStateUnknown{Key: key, Obj: old}})
		}
	}
	if err := i.indexer.Replace(items); err != nil {
		return fmt.Errorf("list %s: %w", i.opts.Resource, err)
	}
	i.lastRV = rv
	i.synced.Store(true)
	// Notify after the store changed, so a handler that reads the store
	// sees at least the state it is told about.
	for _, n := range notes {
		i.notifyLocked(n)
	}
	return nil
}

func (i *Informer) notifyLocked(n notification) {
	for _, reg := range i.handlers {
		reg.worker.push(n)
	}
}

// watch runs one watch from the last resourceVersion. It returns nil when
// the server ended the stream normally, an error wrapping errExpired when a
// relist is needed, errShortWatch, or another error.
func (i *Informer) watch(ctx context.Context) error {
	rv := i.LastSyncResourceVersion()
	timeout := int64((minWatchTimeout + rand.N(minWatchTimeout)).Seconds())
	w, err := i.lw.Watch(ctx, metav1.ListOptions{
		ResourceVersion:     rv,
		AllowWatchBookmarks: true,
		TimeoutSeconds:      &timeout,
	})
	if err != nil {
		return fmt.Errorf("watch %s from resourceVersion %q: %w", i.opts.Resource, rv, err)
	}
	defer w.Stop()

	start := time.Now()
	events := 0
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case ev, ok = <-w.ResultChan():
		}
		if !ok {
			if events == 0 && time.Since(start) < i.shortWatch {
				return errShortWatch
			}
			return nil
		}
		events++
		switch ev.Type {
		case watch.Added, watch.Modified:
			i.upsert(ev.Object)
		case watch.Deleted:
			i.remove(ev.Object)
		case watch.Bookmark:
			i.mu.Lock()
			if v := resourceVersion(ev.Object); v != "" {
				i.lastRV = v
			}
			i.mu.Unlock()
		case watch.Error:
			err := apierrors.FromObject(ev.Object)
			if isExpired(err) {
				return fmt.Errorf("watch %s from resourceVersion %q: %w: %w", i.opts.Resource, rv, errExpired, err)
			}
			return fmt.Errorf("watch %s: server error: %w", i.opts.Resource, err)
		default:
			return fmt.Errorf("watch %s: unexpected event type %q", i.opts.Resource, ev.Type)
		}
	}
}

func (i *Informer) upsert(obj runtime.Object) {
	key, err := MetaNamespaceKeyFunc(obj)
	if err != nil {
		i.log.Warn("dropping watch event", "err", err)
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	old, existed := i.indexer.Get(key)
	if err := i.indexer.Add(obj); err != nil {
		i.log.Warn("dropping watch event", "object", key, "err", err)
		return
	}
	if v := resourceVersion(obj); v != "" {
		i.lastRV = v
	}
	if existed {
		i.notifyLocked(notification{kind: notifyUpdate, old: old, obj: obj})
	} else {
		i.notifyLocked(notification{kind: notifyAdd, obj: obj})
	}
}

func (i *Informer) remove(obj runtime.Object) {
	key, err := MetaNamespaceKeyFunc(obj)
	if err != nil {
		i.log.Warn("dropping watch event", "err", err)
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if err := i.indexer.Delete(key); err != nil {
		i.log.Warn("dropping watch event", "object", key, "err", err)
		return
	}
	if v := resourceVersion(obj); v != "" {
		i.lastRV = v
	}
	i.notifyLocked(notification{kind: notifyDelete, deleted: obj})
}

func resourceVersion(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return m.GetResourceVersion()
}

// backoff doubles from backoffBase to backoffMax, with jitter so that many
// clients failing together do not retry together.
type backoff struct{ cur time.Duration }

func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(b.cur*2, backoffMax)
	return d + rand.N(d/10+1)
}

func (b *backoff) reset() { b.cur = backoffBase }

func sleepContext(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/workqueue"
)

// Result tells the worker what to do with a key after a successful
// reconcile.
type Result struct {
	// RequeueAfter, if > 0, reconciles the key again after this long even
	// if nothing changes: for decisions that depend on time passing
	// (minReadySeconds, progress deadlines, eviction deadlines).
	RequeueAfter time.Duration
}

// ReconcileFunc brings the object named by key to its desired state. It
// must read from informer caches, write through the API and be safe to run
// again at any time. An error retries the key with backoff.
type ReconcileFunc func(ctx context.Context, key string) (Result, error)

// Options configure a Controller.
type Options struct {
	// Logger; nil means slog.Default(). The controller adds component=<name>.
	Logger *slog.Logger
	// Registerer receives the workqueue metrics; nil means none.
	Registerer prometheus.Registerer
	// RateLimiter for failed keys; nil means the workqueue default.
	RateLimiter workqueue.RateLimiter
}

// Controller runs workers that take keys from a rate-limited workqueue and
// hand them to one ReconcileFunc. Two workers never hold the same key at
// once (the queue guarantees it), so reconcile needs no per-key locking.
type Controller struct {
	name      string
	queue     *workqueue.Queue
	reconcile ReconcileFunc
	log       *slog.Logger
	synced    []informer.Syncer
}

// New returns a Controller named name (used for logs and queue metrics)
// that waits for synced before starting workers.
func New(name string, reconcile ReconcileFunc, opts Options, synced ...informer.Syncer) (*Controller, error) {
	if reconcile == nil {
		return nil, fmt.Errorf("controller %s: nil reconcile func", name)
	}
	q, err := workqueue.New(workqueue.Options{Name: name, RateLimiter: opts.RateLimiter, Registerer: opts.Registerer})
	if err != nil {
		return nil, fmt.Errorf("controller %s: %w", name, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Controller{
		name:      name,
		queue:     q,
		reconcile: reconcile,
		log:       log.With("component", name),
		synced:    synced,
	}, nil
}

// Name is the controller's name.
func (c *Controller) Name() string { return c.name }

// Logger is the controller's logger (component already set).
func (c *Controller) Logger() *slog.Logger { return c.log }

// Queue is the controller's workqueue.
func (c *Controller) Queue() workqueue.Interface { return c.queue }

// Enqueue adds the key of obj (an API object, a tombstone or a key).
func (c *Controller) Enqueue(obj any) {
	key, err := informer.MetaNamespaceKeyFunc(obj)
	if err != nil {
		c.log.Warn("cannot enqueue object", "reason", "NoKey", "err", err)
		return
	}
	c.queue.Add(key)
}

// EnqueueKey adds key.
func (c *Controller) EnqueueKey(key string) { c.queue.Add(key) }

// EnqueueAfter adds key once d has passed.
func (c *Controller) EnqueueAfter(key string, d time.Duration) { c.queue.AddAfter(key, d) }

// Handler is an informer handler that enqueues the key of every object
// added, updated or deleted: the right handler for a controller's primary
// resource.
func (c *Controller) Handler() informer.Handler {
	return informer.Handler{
		AddFunc:    func(obj runtime.Object) { c.Enqueue(obj) },
		UpdateFunc: func(_, obj runtime.Object) { c.Enqueue(obj) },
		DeleteFunc: func(obj any) { c.Enqueue(obj) },
	}
}

// Run waits for the informer caches, runs workers until ctx ends, then
// shuts the queue down and waits for the workers to return. It returns an
// error only if ctx ended before the caches synced.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if workers < 1 {
		workers = 1
	}
	defer c.queue.ShutDown()
	c.log.Info("waiting for informer caches")
	if !informer.WaitForCacheSync(ctx, c.synced...) {
		return fmt.Errorf("controller %s: caches did not sync: %w", c.name, context.Cause(ctx))
	}
	c.log.Info("started", "workers", workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	c.log.Info("stopped")
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	if ctx.Err() != nil {
		return true // draining after shutdown: nothing may be written now
	}
	res, err := c.reconcile(ctx, key)
	switch {
	case err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()):
		// Stopping: the key is picked up by whoever runs next.
	case err != nil && apierrors.IsConflict(err):
		// Our cache was behind a write (often our own); the retry reads
		// the newer state.
		c.log.Debug("reconcile hit a conflict; retrying", "object", key, "reason", "Conflict", "err", err)
		c.queue.AddRateLimited(key)
	case err != nil:
		c.log.Warn("reconcile failed; retrying", "object", key, "reason", "ReconcileError",
			"retries", c.queue.NumRequeues(key), "err", err)
		c.queue.AddRateLimited(key)
	default:
		c.queue.Forget(key)
		if res.RequeueAfter > 0 {
			c.queue.AddAfter(key, res.RequeueAfter)
		}
	}
	return true
}

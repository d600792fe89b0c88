package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/leaderelection"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/client/workqueue"
	"github.com/minik8s/minik8s/scheduler/cache"
	"github.com/minik8s/minik8s/scheduler/framework"
	"github.com/minik8s/minik8s/scheduler/plugins"
	"github.com/minik8s/minik8s/scheduler/queue"
)

// Defaults of Config.
const (
	DefaultBindAddress      = "127.0.0.1:10259"
	DefaultMaxBindsInFlight = 256
	// DefaultLeaseName is the Lease (in kube-system) schedulers elect
	// their leader with.
	DefaultLeaseName = "minik8s-scheduler"
	// minFeasibleNodesToFind: below this many nodes every node is
	// checked; above, at least this many feasible nodes are looked for.
	minFeasibleNodesToFind = 100
	// minFeasibleNodesPercentageToFind bounds the adaptive percentage.
	minFeasibleNodesPercentageToFind = 5
)

// Config configures a Scheduler. Client is required; every other field
// has a default.
type Config struct {
	// Client talks to the API server.
	Client *typed.Clientset
	// WriteClient, if set, carries the bindings, status updates and
	// events, on its own connection: over HTTP/2 every request to a host
	// shares one connection, and a busy watch stream on it delays the
	// writes. Build it from the same rest.Config as Client (each
	// typed.NewForConfig gets its own transport). Nil: Client.
	WriteClient *typed.Clientset
	// Informers is a shared informer factory (all namespaces, no
	// filters). Nil: the scheduler makes and starts its own.
	Informers *informer.Factory
	// SchedulerName is the spec.schedulerName this scheduler serves
	// (default "default-scheduler"); it is also the events' source.
	SchedulerName string
	// Identity names this instance in the Lease and in events
	// (default: hostname plus a random suffix).
	Identity string
	// PercentageOfNodesToScore is the share of nodes to look for feasible
	// ones among before scoring; 0 means adaptive (50% at 100 nodes down
	// to 5% at 5625 nodes), and at least 100 nodes are always checked.
	PercentageOfNodesToScore int32
	// Parallelism bounds the goroutines filtering and scoring nodes
	// (default GOMAXPROCS).
	Parallelism int
	// Queue timing (defaults 1s, 10s and 60s).
	InitialBackoff, MaxBackoff, MaxInUnschedulable time.Duration
	// AssumedPodTTL is how long a bound pod may stay unconfirmed by the
	// informer before the cache forgets it (default 30s).
	AssumedPodTTL time.Duration
	// MaxBindsInFlight bounds concurrent binding requests (default 256).
	MaxBindsInFlight int
	// Recorder receives Scheduled and FailedScheduling events. Nil: the
	// scheduler writes core/v1 Events through Client itself.
	Recorder EventRecorder
	// LeaderElection, if set, makes Run campaign for the Lease first;
	// only the leader schedules. Nil: schedule right away.
	LeaderElection *LeaderElectionConfig
	// Framework replaces the default plugins (tests, experiments).
	Framework *framework.Framework
	// Clock drives the scheduling queue's timers (tests use a fake).
	Clock workqueue.Clock
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// LeaderElectionConfig says which Lease to hold and how.
type LeaderElectionConfig struct {
	// Namespace and Name of the Lease (defaults kube-system and
	// minik8s-scheduler).
	Namespace, Name string
	// Timing; zero means client/leaderelection's defaults (15s, 10s, 2s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Scheduler assigns pending pods to nodes. Make it with New, then Run it.
type Scheduler struct {
	cfg       Config
	name      string
	identity  string
	log       *slog.Logger
	client    *typed.Clientset // writes (status)
	fw        *framework.Framework
	cache     *cache.Cache
	queue     *queue.PriorityQueue
	snapshot  *cache.Snapshot
	recorder  EventRecorder
	apiEvents *apiEventRecorder // non-nil when we write events ourselves
	metrics   *metrics
	records   *recordStore

	factory     *informer.Factory
	ownFactory  bool
	podInformer informer.Typed[*corev1.Pod]
	nodeInf     informer.Typed[*corev1.Node]
	podLister   informer.Lister[*corev1.Pod]
	// What the handlers have delivered, until scheduling starts.
	podDeliveries, nodeDeliveries *deliveryTracker

	// nextStartNodeIndex rotates where filtering starts; loop-only.
	nextStartNodeIndex int

	bindSem      chan struct{}
	statusWrites statusWrites   // PodScheduled=False writes in progress
	async        sync.WaitGroup // bind and failure-handling goroutines

	synced  atomic.Bool
	leading atomic.Bool
	elector *leaderelection.Elector
	running atomic.Bool
}

// New builds a Scheduler and registers its informer handlers.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Client == nil {
		return nil, errors.New("scheduler: Config.Client is required")
	}
	if cfg.WriteClient == nil {
		cfg.WriteClient = cfg.Client
	}
	if cfg.SchedulerName == "" {
		cfg.SchedulerName = corev1.DefaultSchedulerName
	}
	if cfg.Identity == "" {
		cfg.Identity = defaultIdentity()
	}
	if cfg.MaxBindsInFlight <= 0 {
		cfg.MaxBindsInFlight = DefaultMaxBindsInFlight
	}
	if cfg.PercentageOfNodesToScore < 0 || cfg.PercentageOfNodesToScore > 100 {
		return nil, fmt.Errorf("scheduler: PercentageOfNodesToScore %d is not in [0, 100]", cfg.PercentageOfNodesToScore)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "scheduler", "scheduler", cfg.SchedulerName)
	fw := cfg.Framework
	if fw == nil {
		var err error
		fw, err = framework.New(plugins.DefaultConfig(cfg.WriteClient.Pods, cfg.Parallelism))
		if err != nil {
			return nil, fmt.Errorf("scheduler: %w", err)
		}
	}
	s := &Scheduler{
		cfg:      cfg,
		name:     cfg.SchedulerName,
		identity: cfg.Identity,
		log:      log,
		client:   cfg.WriteClient,
		fw:       fw,
		cache:    cache.New(cfg.AssumedPodTTL, nil, log),
		snapshot: cache.NewEmptySnapshot(),
		records:  newRecordStore(),
		bindSem:  make(chan struct{}, cfg.MaxBindsInFlight),
	}
	s.queue = queue.New(queue.Options{
		Clock:              cfg.Clock,
		InitialBackoff:     cfg.InitialBackoff,
		MaxBackoff:         cfg.MaxBackoff,
		MaxInUnschedulable: cfg.MaxInUnschedulable,
		IsInterested:       fw.IsInterested,
	})
	s.recorder = cfg.Recorder
	if s.recorder == nil {
		s.apiEvents = newAPIEventRecorder(cfg.WriteClient.Events, cfg.SchedulerName, cfg.Identity, log)
		s.recorder = s.apiEvents
	}
	s.metrics = newMetrics(s)
	if s.apiEvents != nil {
		s.apiEvents.dropped = s.metrics.eventsDropped
	}

	s.factory = cfg.Informers
	if s.factory == nil {
		s.factory = informer.NewFactory(cfg.Client.REST, informer.FactoryOptions{Logger: log})
		s.ownFactory = true
	}
	s.podInformer = s.factory.Pods()
	s.nodeInf = s.factory.Nodes()
	s.podLister = s.podInformer.Lister()
	s.podDeliveries, s.nodeDeliveries = newDeliveryTracker(), newDeliveryTracker()
	if err := s.podInformer.AddEventHandler(s.podDeliveries.wrap(s.podHandler())); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if err := s.nodeInf.AddEventHandler(s.nodeDeliveries.wrap(s.nodeHandler())); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if le := cfg.LeaderElection; le != nil {
		ns, name := le.Namespace, le.Name
		if ns == "" {
			ns = leaderelection.DefaultNamespace
		}
		if name == "" {
			name = DefaultLeaseName
		}
		el, err := leaderelection.New(leaderelection.Config{
			Client:           cfg.Client.Leases.Namespace(ns),
			Namespace:        ns,
			Name:             name,
			Identity:         cfg.Identity,
			LeaseDuration:    le.LeaseDuration,
			RenewDeadline:    le.RenewDeadline,
			RetryPeriod:      le.RetryPeriod,
			OnStartedLeading: s.scheduleLoop,
			// scheduleLoop returns only after its binds finished, so the
			// Lease can be handed over at once.
			ReleaseOnCancel: true,
			Logger:          log,
		})
		if err != nil {
			return nil, fmt.Errorf("scheduler: %w", err)
		}
		s.elector = el
	}
	return s, nil
}

func defaultIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "scheduler"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "_" + hex.EncodeToString(b[:])
}

// Name is the schedulerName served.
func (s *Scheduler) Name() string { return s.name }

// Identity is this instance's name in the Lease and events.
func (s *Scheduler) Identity() string { return s.identity }

// IsLeader reports whether this instance is scheduling now.
func (s *Scheduler) IsLeader() bool { return s.leading.Load() }

// Run keeps the cache and queue current, campaigns for leadership if
// configured, and schedules pods until ctx ends. It returns nil when ctx
// ended, or an error when leadership was lost (exit then: a new leader has
// taken over). Run may be called once.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("scheduler: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer func() {
		cancel()
		bg.Wait()
		if s.ownFactory {
			s.factory.Wait()
		}
	}()
	s.factory.Start(ctx)
	bg.Go(func() { s.queue.Run(ctx) })
	bg.Go(func() { s.cache.Run(ctx) })
	if s.apiEvents != nil {
		bg.Go(func() { s.apiEvents.Run(ctx) })
	}
	s.log.Info("waiting for the pod and node caches to sync", "identity", s.identity)
	if !informer.WaitForCacheSync(ctx, s.podInformer, s.nodeInf) {
		return nil
	}
	// Synced informers have queued their lists for the handlers; the
	// cache must hold them, and nodes no older than the pods, before the
	// first pod is scheduled (see startup.go).
	if !s.waitForHandlers(ctx) {
		return nil
	}
	s.synced.Store(true)
	st := s.cache.Stats()
	s.log.Info("caches synced", "nodes", st.Nodes, "boundPods", st.Pods, "pendingPods", s.queue.Counts().Active)
	if s.elector == nil {
		s.scheduleLoop(ctx)
		return nil
	}
	return s.elector.Run(ctx)
}

// scheduleLoop pops and schedules pods one at a time until ctx ends, then
// waits for its binding and status goroutines.
func (s *Scheduler) scheduleLoop(ctx context.Context) {
	s.leading.Store(true)
	s.metrics.leader.Set(1)
	s.log.Info("scheduling", "identity", s.identity)
	defer func() {
		s.async.Wait()
		s.leading.Store(false)
		s.metrics.leader.Set(0)
		s.log.Info("stopped scheduling", "identity", s.identity)
	}()
	for {
		qp, err := s.queue.Pop(ctx)
		if err != nil {
			return
		}
		s.scheduleOne(ctx, qp)
	}
}

// goAsync runs f in a goroutine the loop waits for before it returns.
func (s *Scheduler) goAsync(f func()) {
	s.async.Add(1)
	go func() {
		defer s.async.Done()
		f()
	}()
}

// numFeasibleNodesToFind is how many feasible nodes to look for before
// scoring: all nodes below 100; otherwise the configured or adaptive
// percentage (50% minus 1% per 125 nodes, at least 5%), at least 100.
func numFeasibleNodesToFind(percentage int32, numAll int) int {
	if numAll < minFeasibleNodesToFind || percentage >= 100 {
		return numAll
	}
	pct := int(percentage)
	if pct == 0 {
		pct = max(50-numAll/125, minFeasibleNodesPercentageToFind)
	}
	return max(numAll*pct/100, minFeasibleNodesToFind)
}

// Stats is a point-in-time view of the scheduler's cache and queue.
type Stats struct {
	Synced  bool
	Leading bool
	Cache   cache.Stats
	Queue   queue.Counts
}

// Stats reports the cache and queue sizes (for tools and tests).
func (s *Scheduler) Stats() Stats {
	return Stats{Synced: s.synced.Load(), Leading: s.leading.Load(), Cache: s.cache.Stats(), Queue: s.queue.Counts()}
}

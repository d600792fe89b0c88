package manager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/kubeconfig"
	"github.com/minik8s/minik8s/client/leaderelection"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/deployment"
	"github.com/minik8s/minik8s/controllers/endpoints"
	"github.com/minik8s/minik8s/controllers/events"
	"github.com/minik8s/minik8s/controllers/garbagecollector"
	"github.com/minik8s/minik8s/controllers/namespace"
	"github.com/minik8s/minik8s/controllers/nodeipam"
	"github.com/minik8s/minik8s/controllers/nodelifecycle"
	"github.com/minik8s/minik8s/controllers/podgc"
	"github.com/minik8s/minik8s/controllers/replicaset"
)

// podGCWorkers is how many pods pod GC handles at once.
const podGCWorkers = 5

// UserAgent is how the controller-manager identifies itself to the API
// server.
const UserAgent = "kube-controller-manager"

// Manager is one controller-manager replica.
type Manager struct {
	opts     Options
	base     *slog.Logger // handed to controllers, which add their own component
	log      *slog.Logger
	cs       *typed.Clientset
	registry *prometheus.Registry
	listener net.Listener
	identity string

	leading atomic.Bool
	started atomic.Bool // controllers of the current term are running
}

// New validates opts, connects a client (no request is made yet) and
// opens the health/metrics listener.
func New(opts Options, log *slog.Logger) (*Manager, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	cfg, err := restConfig(opts)
	if err != nil {
		return nil, err
	}
	cs, err := typed.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	m := &Manager{
		opts:     opts,
		base:     log,
		log:      log.With("component", "controller-manager"),
		cs:       cs,
		registry: prometheus.NewRegistry(),
		identity: opts.Identity + "_" + hex.EncodeToString(suffix),
	}
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opts.Address != "" {
		l, err := net.Listen("tcp", opts.Address)
		if err != nil {
			return nil, fmt.Errorf("--address %s: %w", opts.Address, err)
		}
		m.listener = l
	}
	return m, nil
}

func restConfig(opts Options) (*rest.Config, error) {
	path := opts.Kubeconfig
	if path == "" {
		if _, err := os.Stat(DefaultKubeconfig); err == nil {
			path = DefaultKubeconfig
		}
	}
	kc, err := kubeconfig.LoadDefault(path, "")
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg, err := rest.ConfigFromKubeconfig(kc)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.UserAgent = UserAgent
	cfg.QPS, cfg.Burst = opts.KubeAPIQPS, opts.KubeAPIBurst
	cfg.Timeout = 30 * time.Second
	return cfg, nil
}

// Addr is where /healthz and /metrics are served ("" if disabled).
func (m *Manager) Addr() string {
	if m.listener == nil {
		return ""
	}
	return m.listener.Addr().String()
}

// Identity is this replica's name in the leader Lease.
func (m *Manager) Identity() string { return m.identity }

// IsLeader reports whether this replica is acting now.
func (m *Manager) IsLeader() bool { return m.leading.Load() }

// Run runs until ctx ends (nil) or, with leader election, until leadership
// is lost (an error: the caller should exit, as its state belonged to the
// term that ended).
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if m.listener != nil {
		srv := &http.Server{Handler: m.handler(), ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() {
			if err := srv.Serve(m.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.log.Error("health server stopped", "err", err)
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = srv.Shutdown(sctx)
		})
	}
	if !m.opts.LeaderElect {
		m.leading.Store(true)
		defer m.leading.Store(false)
		return m.runControllers(ctx)
	}
	var termErr error
	el, err := leaderelection.New(leaderelection.Config{
		Client:          m.cs.Leases.Namespace(m.opts.LeaseNamespace),
		Namespace:       m.opts.LeaseNamespace,
		Name:            m.opts.LeaseName,
		Identity:        m.identity,
		LeaseDuration:   m.opts.LeaseDuration,
		RenewDeadline:   m.opts.RenewDeadline,
		RetryPeriod:     m.opts.RetryPeriod,
		ReleaseOnCancel: m.opts.ReleaseOnCancel,
		Logger:          m.base,
		OnStartedLeading: func(ctx context.Context) {
			m.leading.Store(true)
			defer m.leading.Store(false)
			termErr = m.runControllers(ctx)
		},
		OnNewLeader: func(id string) {
			if id != m.identity {
				m.log.Info("another replica leads; standing by", "leader", id, "reason", "LeaderElection")
			}
		},
	})
	if err != nil {
		return err
	}
	m.log.Info("campaigning for leadership", "identity", m.identity, "lease", m.opts.LeaseNamespace+"/"+m.opts.LeaseName)
	if err := el.Run(ctx); err != nil {
		return fmt.Errorf("leadership lost: %w", err)
	}
	return termErr
}

// runControllers runs one term: fresh informers, every enabled controller,
// until ctx ends.
func (m *Manager) runControllers(ctx context.Context) error {
	enabled, _ := m.opts.Enabled()
	f := informer.NewFactory(m.cs.REST, informer.FactoryOptions{ResyncPeriod: m.opts.ResyncPeriod, Logger: m.base})
	opts := func() controllers.Options {
		return controllers.Options{Logger: m.base, Registerer: m.registry}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	recorder := func(component string) events.Recorder {
		b := events.NewBroadcaster(events.Config{Sink: events.ClientSink(m.cs.Events), Component: component,
			Instance: m.identity, Logger: m.base})
		wg.Go(func() { b.Run(ctx) })
		return b.Recorder()
	}
	type runner struct {
		name    string
		workers int
		run     func(context.Context, int) error
	}
	var runs []runner
	add := func(name string, workers int, build func() (func(context.Context, int) error, error)) error {
		if !enabled[name] {
			return nil
		}
		run, err := build()
		if err != nil {
			return fmt.Errorf("starting %s controller: %w", name, err)
		}
		runs = append(runs, runner{name, workers, run})
		return nil
	}
	o := m.opts
	err := errors.Join(
		add("deployment", o.ConcurrentDeploymentSyncs, func() (func(context.Context, int) error, error) {
			c, err := deployment.New(f, m.cs, recorder(deployment.Name), opts())
			return runOf(c, err)
		}),
		add("replicaset", o.ConcurrentReplicaSetSyncs, func() (func(context.Context, int) error, error) {
			c, err := replicaset.New(f, m.cs, recorder(replicaset.Name), opts())
			return runOf(c, err)
		}),
		add("endpoints", o.ConcurrentEndpointSyncs, func() (func(context.Context, int) error, error) {
			c, err := endpoints.New(f, m.cs, recorder(endpoints.Name), opts())
			return runOf(c, err)
		}),
		add("namespace", o.ConcurrentNamespaceSyncs, func() (func(context.Context, int) error, error) {
			c, err := namespace.New(f, m.cs, opts())
			return runOf(c, err)
		}),
		add("garbagecollector", o.ConcurrentGCSyncs, func() (func(context.Context, int) error, error) {
			c, err := garbagecollector.New(f, m.cs, opts())
			return runOf(c, err)
		}),
		add("nodelifecycle", o.ConcurrentNodeSyncs, func() (func(context.Context, int) error, error) {
			notReady, unreachable := o.DefaultNotReadyTolerationSeconds, o.DefaultUnreachableTolerationSeconds
			c, err := nodelifecycle.New(f, m.cs, recorder(nodelifecycle.Name), nodelifecycle.Config{
				GracePeriod: o.NodeMonitorGracePeriod, NotReadyTolerationSeconds: &notReady,
				UnreachableTolerationSeconds: &unreachable, Options: opts()})
			return runOf(c, err)
		}),
		// Kubernetes has no concurrency flag for pod GC; a few workers let
		// the pods of a dead node go in parallel.
		add("podgc", podGCWorkers, func() (func(context.Context, int) error, error) {
			c, err := podgc.New(f, m.cs, recorder(podgc.Name), podgc.Config{
				TerminatedPodThreshold: o.TerminatedPodGCThreshold, OrphanQuarantine: o.PodGCOrphanQuarantine, Options: opts()})
			return runOf(c, err)
		}),
	)
	if err == nil && o.AllocateNodeCIDRs {
		// Off unless asked, as in Kubernetes: clusters whose network
		// plugin hands out pod ranges itself must not get a second owner.
		err = add("nodeipam", 1, func() (func(context.Context, int) error, error) {
			_, cidr, _ := net.ParseCIDR(o.ClusterCIDR) // checked by Validate
			c, err := nodeipam.New(f, m.cs, recorder(nodeipam.Name), nodeipam.Config{
				ClusterCIDR: cidr, NodeMaskSize: o.NodeCIDRMaskSize, Options: opts()})
			return runOf(c, err)
		})
	}
	if err != nil {
		return err
	}
	f.Start(ctx)
	defer f.Wait()
	for _, r := range runs {
		wg.Go(func() {
			if err := r.run(ctx, r.workers); err != nil && ctx.Err() == nil {
				m.log.Error("controller stopped", "controller", r.name, "err", err)
			}
		})
	}
	if informer.WaitForCacheSync(ctx, f) {
		m.started.Store(true)
		m.log.Info("controllers running", "count", len(runs), "identity", m.identity)
	}
	<-ctx.Done()
	m.started.Store(false)
	return nil
}

type runnable interface {
	Run(ctx context.Context, workers int) error
}

func runOf[C runnable](c C, err error) (func(context.Context, int) error, error) {
	if err != nil {
		return nil, err
	}
	return c.Run, nil
}

// handler serves /healthz (the process is alive), /readyz (a leader with
// synced caches, or a standby) and /metrics.
func (m *Manager) handler() http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/livez", ok)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if m.leading.Load() && !m.started.Load() {
			http.Error(w, "controllers starting: informer caches not synced", http.StatusServiceUnavailable)
			return
		}
		state := "standby"
		if m.leading.Load() {
			state = "leader"
		}
		fmt.Fprintf(w, "ok (%s %s)\n", state, m.identity)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	return mux
}

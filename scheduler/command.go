package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/client/kubeconfig"
	"github.com/minik8s/minik8s/client/leaderelection"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/scheduler/queue"
)

// Options are the scheduler binary's flags.
type Options struct {
	Kubeconfig               string
	BindAddress              string
	SchedulerName            string
	LeaderElect              bool
	LeaseNamespace           string
	LeaseName                string
	LeaseDuration            time.Duration
	RenewDeadline            time.Duration
	RetryPeriod              time.Duration
	PercentageOfNodesToScore int32
	Parallelism              int
	PodInitialBackoff        time.Duration
	PodMaxBackoff            time.Duration
	PodMaxInUnschedulable    time.Duration
	KubeAPIQPS               float64
	KubeAPIBurst             int
	LogLevel                 string

	// ready, if set, is called with the debug server's address once it
	// listens (tests).
	ready func(addr string)
}

// DefaultOptions are the flag defaults.
func DefaultOptions() Options {
	return Options{
		Kubeconfig:            "/var/lib/minik8s/kube-scheduler.kubeconfig",
		BindAddress:           DefaultBindAddress,
		SchedulerName:         "default-scheduler",
		LeaderElect:           true,
		LeaseNamespace:        leaderelection.DefaultNamespace,
		LeaseName:             DefaultLeaseName,
		LeaseDuration:         leaderelection.DefaultLeaseDuration,
		RenewDeadline:         leaderelection.DefaultRenewDeadline,
		RetryPeriod:           leaderelection.DefaultRetryPeriod,
		PodInitialBackoff:     queue.DefaultInitialBackoff,
		PodMaxBackoff:         queue.DefaultMaxBackoff,
		PodMaxInUnschedulable: queue.DefaultMaxInUnschedulable,
		LogLevel:              "info",
	}
}

// NewCommand returns the scheduler's cobra command, named use (the
// standalone binary and the all-in-one binary's subcommand share it).
func NewCommand(use string) *cobra.Command {
	o := DefaultOptions()
	cmd := &cobra.Command{
		Use:   use,
		Short: "Run the scheduler: bind pending pods to nodes",
		Long: `The scheduler watches pods that have no spec.nodeName and whose spec.schedulerName
is --scheduler-name, picks a node for each and binds it (POST pods/{name}/binding),
like kube-scheduler:

  filter   NodeUnschedulable, NodeName, TaintToleration (NoSchedule, NoExecute),
           NodeAffinity (nodeSelector, required node affinity), NodePorts,
           NodeResourcesFit (cpu, memory, ephemeral-storage, extended resources,
           pods against status.allocatable), InterPodAffinity (required
           anti-affinity, any topology key)
  score    least allocated (x1), balanced cpu/memory (x1), preferred node
           affinity (x2), PreferNoSchedule taints (x3), spreading pods of one
           controller over nodes and zones (x2)

On 100+ nodes it filters only until it has found enough feasible nodes
(--percentage-of-nodes-to-score; adaptive by default, at least 100 nodes),
starting where the last pod stopped. Pods that fit nowhere get the condition
PodScheduled=False (reason Unschedulable, message "0/3 nodes are available: ...")
and a FailedScheduling event, and wait until a node is added or changes or a
pod is deleted (or --pod-max-in-unschedulable-pods-duration passes); failed
attempts back off per pod from --pod-initial-backoff-duration to
--pod-max-backoff-duration.

With --leader-elect (default) several schedulers can run; the one holding the
Lease kube-system/minik8s-scheduler schedules, and a scheduler that loses the
Lease exits. --bind-address serves plain HTTP: /healthz, /readyz, /metrics, and
/debug/pods/{namespace}/{name} with the last attempt's per-node filter results
and scores of a pending pod (/debug/pods lists them).`,
		Example: `  # on the control-plane machine, with the kubeconfig "minik8s server" wrote
  scheduler --kubeconfig=/var/lib/minik8s/kube-scheduler.kubeconfig

  # why is my pod pending?
  curl -s 127.0.0.1:10259/debug/pods/default/web-1

  # a second scheduler for pods with schedulerName: batch, without election
  scheduler --scheduler-name=batch --leader-elect=false --bind-address=127.0.0.1:10260`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig file to reach the API server with")
	f.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "host:port serving /healthz, /readyz, /metrics and /debug/pods over plain HTTP (empty: do not serve)")
	f.StringVar(&o.SchedulerName, "scheduler-name", o.SchedulerName, "Schedule pods whose spec.schedulerName is this; also the events' source")
	f.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect a leader through a Lease before scheduling, so several schedulers can run")
	f.StringVar(&o.LeaseNamespace, "leader-elect-resource-namespace", o.LeaseNamespace, "Namespace of the leader election Lease")
	f.StringVar(&o.LeaseName, "leader-elect-resource-name", o.LeaseName, "Name of the leader election Lease")
	f.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", o.LeaseDuration, "How long others wait for a silent leader before taking over")
	f.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", o.RenewDeadline, "How long the leader retries renewing before it gives up (and exits)")
	f.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", o.RetryPeriod, "Wait between attempts to acquire or renew the Lease")
	f.Int32Var(&o.PercentageOfNodesToScore, "percentage-of-nodes-to-score", o.PercentageOfNodesToScore, "Share of nodes to search for feasible ones before scoring (0 = adaptive; at least 100 nodes are searched)")
	f.IntVar(&o.Parallelism, "parallelism", o.Parallelism, "Goroutines filtering and scoring nodes (0 = GOMAXPROCS)")
	f.DurationVar(&o.PodInitialBackoff, "pod-initial-backoff-duration", o.PodInitialBackoff, "Backoff after a pod's first failed attempt; doubles per attempt")
	f.DurationVar(&o.PodMaxBackoff, "pod-max-backoff-duration", o.PodMaxBackoff, "Longest backoff between a pod's attempts")
	f.DurationVar(&o.PodMaxInUnschedulable, "pod-max-in-unschedulable-pods-duration", o.PodMaxInUnschedulable, "Retry an unschedulable pod after this long even without a cluster change")
	f.Float64Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Client-side limit of API requests per second (0 = unlimited)")
	f.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Burst allowed above --kube-api-qps")
	f.StringVar(&o.LogLevel, "log-level", o.LogLevel, "debug, info, warn or error")
	return cmd
}

// Run runs the scheduler (and its HTTP endpoints) until ctx ends or
// leadership is lost.
func (o *Options) Run(ctx context.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.LogLevel)); err != nil {
		return fmt.Errorf("--log-level=%q: want debug, info, warn or error", o.LogLevel)
	}
	if o.PercentageOfNodesToScore < 0 || o.PercentageOfNodesToScore > 100 {
		return fmt.Errorf("--percentage-of-nodes-to-score=%d: want 0 to 100", o.PercentageOfNodesToScore)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	kc, err := kubeconfig.Load(o.Kubeconfig, "")
	if err != nil {
		return fmt.Errorf("--kubeconfig: %w", err)
	}
	rc, err := rest.ConfigFromKubeconfig(kc)
	if err != nil {
		return fmt.Errorf("--kubeconfig %s: %w", o.Kubeconfig, err)
	}
	rc.UserAgent = "minik8s-scheduler"
	rc.QPS, rc.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	cs, err := typed.NewForConfig(rc)
	if err != nil {
		return err
	}
	// A second transport, so bindings do not queue behind the watches.
	writes, err := typed.NewForConfig(rc)
	if err != nil {
		return err
	}
	cfg := Config{
		Client:                   cs,
		WriteClient:              writes,
		SchedulerName:            o.SchedulerName,
		PercentageOfNodesToScore: o.PercentageOfNodesToScore,
		Parallelism:              o.Parallelism,
		InitialBackoff:           o.PodInitialBackoff,
		MaxBackoff:               o.PodMaxBackoff,
		MaxInUnschedulable:       o.PodMaxInUnschedulable,
		Logger:                   log,
	}
	if o.LeaderElect {
		cfg.LeaderElection = &LeaderElectionConfig{
			Namespace: o.LeaseNamespace, Name: o.LeaseName,
			LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod,
		}
	}
	s, err := New(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	if o.BindAddress != "" {
		ln, err := net.Listen("tcp", o.BindAddress)
		if err != nil {
			return fmt.Errorf("--bind-address: %w", err)
		}
		srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("debug server stopped", "err", err)
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
			defer done()
			_ = srv.Shutdown(shutdownCtx)
		})
		log.Info("serving /healthz, /metrics and /debug/pods", "address", "http://"+ln.Addr().String())
		if o.ready != nil {
			o.ready(ln.Addr().String())
		}
	}
	err = s.Run(ctx)
	cancel()
	return err
}

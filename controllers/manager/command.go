package manager

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// NewCommand is the controller-manager command line: the
// controller-manager binary's root, and a subcommand (use) of the
// all-in-one minik8s binary.
func NewCommand(use string) *cobra.Command {
	opts := DefaultOptions()
	var logLevel string
	cmd := &cobra.Command{
		Use:   use,
		Short: "Run the minik8s controllers (Deployment, ReplicaSet, Endpoints, Namespace, garbage collector, node lifecycle, pod GC)",
		Long: `controller-manager watches the API server and keeps the cluster converging on what its
objects ask for: Deployments roll out ReplicaSets, ReplicaSets keep their pods, Services get
Endpoints, deleted Namespaces are emptied, owned objects follow their owners (garbage
collection), nodes that stop heartbeating are tainted and their pods evicted, and pods
nobody will finish off are force-deleted (pod GC: pods of deleted nodes, Terminating pods
of nodes tainted node.kubernetes.io/out-of-service, terminated pods beyond
--terminated-pod-gc-threshold).

Run one or more replicas: they elect a leader through the Lease
kube-system/kube-controller-manager and only the leader acts; a standby takes over
within --leader-elect-lease-duration (15s) of the leader stopping. On SIGTERM the
leader stops its controllers and hands the Lease over.

/healthz, /readyz and /metrics are served over plain HTTP on --address.`,
		Example: `  # on the machine running 'minik8s server' (uses /var/lib/minik8s/kube-controller-manager.kubeconfig)
  ` + use + `

  # against another cluster, without leader election, with a quick node failure detection
  ` + use + ` --kubeconfig ~/.kube/config --leader-elect=false --node-monitor-grace-period=10s

  # everything but the garbage collector
  ` + use + ` --controllers='*,-garbagecollector'`,
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			// cmd.Context() lets an all-in-one binary stop the manager with
			// the rest; a signal stops a standalone one.
			parent := cmd.Context()
			if parent == nil {
				parent = context.Background()
			}
			ctx, stop := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			m, err := New(opts, log)
			if err != nil {
				return err
			}
			if a := m.Addr(); a != "" {
				log.Info("serving health and metrics", "component", "controller-manager", "address", "http://"+a)
			}
			return m.Run(ctx)
		},
	}
	opts.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/apiserver"
	"github.com/minik8s/minik8s/controllers/manager"
	"github.com/minik8s/minik8s/scheduler"
)

func apiserverCommand() *cobra.Command {
	opts := apiserver.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Run the API server alone (embedded etcd, or --etcd-servers)",
		Example: `  # everything under /var/lib/minik8s, HTTPS on :6443, embedded etcd
  minik8s apiserver

  # an external etcd cluster
  minik8s apiserver --etcd-servers=http://10.0.0.10:2379,http://10.0.0.11:2379`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAPIServer(cmd.Context(), opts, newLogger(), nil)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

func serverCommand() *cobra.Command {
	opts := apiserver.DefaultOptions()
	var disableControllers, disableScheduler bool
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane on this machine: etcd, API server, controllers, scheduler",
		Long: `server runs the whole control plane in one process, like "k3s server":

  etcd (embedded, or --etcd-servers)  ->  API server (HTTPS, --secure-port)
  controller-manager and scheduler, each talking to the API server over HTTPS
  with its own token (kubeconfigs written to --data-dir on first start)

It writes --data-dir/admin.kubeconfig for you; point kubectl or ctl at it.
Nodes run their kubelet and proxy separately. SIGTERM stops everything cleanly.`,
		Example: `  minik8s server
  export KUBECONFIG=/var/lib/minik8s/admin.kubeconfig
  kubectl apply -f examples/deployment.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				errs []error
			)
			// A component that fails stops the whole server: a control
			// plane with a dead scheduler must not look healthy.
			start := func(name string, run func(context.Context) error) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := run(ctx); err != nil && ctx.Err() == nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("%s: %w", name, err))
						mu.Unlock()
						log.Error("component failed; stopping the server", "component", name, "err", err)
						cancel()
					}
				}()
			}
			ready := make(chan struct{})
			start("apiserver", func(ctx context.Context) error {
				return runAPIServer(ctx, opts, log, ready)
			})
			select {
			case <-ready:
			case <-ctx.Done():
				wg.Wait()
				return errors.Join(errs...)
			}
			kubeconfig := func(name string) string { return filepath.Join(opts.DataDir, name+".kubeconfig") }
			if !disableControllers {
				start("controller-manager", component(manager.NewCommand("controller-manager"),
					"--kubeconfig", kubeconfig("kube-controller-manager")))
			}
			if !disableScheduler {
				start("scheduler", component(scheduler.NewCommand("scheduler"),
					"--kubeconfig", kubeconfig("kube-scheduler")))
			}
			wg.Wait()
			return errors.Join(errs...)
		},
	}
	opts.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&disableControllers, "disable-controller-manager", false, "do not run the controllers in this process")
	cmd.Flags().BoolVar(&disableScheduler, "disable-scheduler", false, "do not run the scheduler in this process")
	return cmd
}

// component runs a component's own command in-process with args, so the
// server starts each one exactly as its standalone binary would.
func component(cmd *cobra.Command, args ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		cmd.SetArgs(args)
		cmd.SilenceUsage = true
		return cmd.ExecuteContext(ctx)
	}
}

// runAPIServer starts the API server and serves until ctx ends; ready (if
// not nil) is closed once it listens and the kubeconfigs are written.
func runAPIServer(ctx context.Context, opts apiserver.Options, log *slog.Logger, ready chan struct{}) error {
	srv, err := apiserver.New(ctx, opts, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.Serve(ctx, func(addr string) {
		fmt.Fprintf(os.Stderr, "minik8s API server is up on https://%s\n  export KUBECONFIG=%s/admin.kubeconfig\n  kubectl get namespaces\n",
			addr, opts.DataDir)
		if ready != nil {
			close(ready)
		}
	})
}

func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

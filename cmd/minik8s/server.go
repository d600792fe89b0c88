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

	"github.com/minik8s/minik8s/agent"
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
  minik8s apiserver --etcd-servers=http://10.0.0.10:2379,http://10.0.0.11:2379

  # an external etcd over TLS with client certificates
  minik8s apiserver --etcd-servers=https://10.0.0.10:2379 --etcd-cafile=/etc/etcd/pki/ca.crt \
      --etcd-certfile=/etc/etcd/pki/apiserver-etcd-client.crt --etcd-keyfile=/etc/etcd/pki/apiserver-etcd-client.key`,
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
	var disableControllers, disableScheduler, disableAgent bool
	var controllerArgs, schedulerArgs []string
	node := agent.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a cluster on this machine: etcd, API server, controllers, scheduler, and this node",
		Long: `server runs the whole control plane in one process, like "k3s server":

  etcd (embedded, or --etcd-servers)  ->  API server (HTTPS, --secure-port)
  controller-manager and scheduler, each talking to the API server over HTTPS
  with its own token (kubeconfigs written to --data-dir on first start)
  and, unless --disable-agent, this machine as a node: kubelet (with its own
  containerd under --data-dir/agent), proxy and pod routes (see "minik8s agent")

It writes --data-dir/admin.kubeconfig for you; point kubectl or ctl at it, and
--data-dir/node-token, which other machines join with:
  minik8s agent --server https://<this machine>:6443 --token <node-token>
Local OCI images in --data-dir/images (hack/images writes them) are imported
into this node's containerd. SIGTERM stops everything cleanly.`,
		Example: `  minik8s server
  export KUBECONFIG=/var/lib/minik8s/admin.kubeconfig
  kubectl apply -f examples/deployment.yaml

  # control plane only; nodes join with "minik8s agent"
  minik8s server --disable-agent`,
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
			// The API server stops last, so the others can still hand
			// back their leader Leases and the kubelet report its pods.
			apiCtx, apiCancel := context.WithCancel(context.WithoutCancel(cmd.Context()))
			defer apiCancel()
			ready, apiDone := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(apiDone)
				if err := runAPIServer(apiCtx, opts, log, ready); err != nil && apiCtx.Err() == nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("apiserver: %w", err))
					mu.Unlock()
					log.Error("component failed; stopping the server", "component", "apiserver", "err", err)
					cancel()
				}
			}()
			stopAPI := func() error {
				wg.Wait()
				apiCancel()
				<-apiDone
				return errors.Join(errs...)
			}
			select {
			case <-ready:
			case <-ctx.Done():
				return stopAPI()
			}
			kubeconfig := func(name string) string { return filepath.Join(opts.DataDir, name+".kubeconfig") }
			if !disableControllers {
				start("controller-manager", agent.Component(manager.NewCommand("controller-manager"),
					append([]string{"--kubeconfig", kubeconfig("kube-controller-manager"),
						"--allocate-node-cidrs", "--cluster-cidr", node.ClusterCIDR}, controllerArgs...)...))
			}
			if !disableScheduler {
				start("scheduler", agent.Component(scheduler.NewCommand("scheduler"),
					append([]string{"--kubeconfig", kubeconfig("kube-scheduler")}, schedulerArgs...)...))
			}
			if !disableAgent {
				node.Kubeconfig = kubeconfig("node-join")
				node.DataDir = filepath.Join(opts.DataDir, "agent")
				if st, err := os.Stat(filepath.Join(opts.DataDir, "images")); err == nil && st.IsDir() && len(node.ImportImages) == 0 {
					node.ImportImages = []string{filepath.Join(opts.DataDir, "images")}
				}
				start("agent", func(ctx context.Context) error { return agent.Run(ctx, node, log) })
			}
			<-ctx.Done()
			return stopAPI()
		},
	}
	opts.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&disableControllers, "disable-controller-manager", false, "do not run the controllers in this process")
	cmd.Flags().BoolVar(&disableScheduler, "disable-scheduler", false, "do not run the scheduler in this process")
	cmd.Flags().BoolVar(&disableAgent, "disable-agent", false, "do not run this machine as a node (no kubelet, containerd or proxy here)")
	cmd.Flags().StringArrayVar(&controllerArgs, "controller-manager-arg", nil, "extra controller-manager flag, e.g. --controller-manager-arg=--node-monitor-grace-period=20s (repeatable)")
	cmd.Flags().StringArrayVar(&schedulerArgs, "scheduler-arg", nil, "extra scheduler flag (repeatable)")
	node.AddFlags(cmd, false)
	return cmd
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

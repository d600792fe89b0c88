// Command minik8s is the all-in-one binary: `minik8s server` runs the
// control plane; each component is also a subcommand of its own.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/apiserver"
)

func main() {
	root := &cobra.Command{
		Use:   "minik8s",
		Short: "A small Kubernetes-style cluster: API server on etcd, controllers, scheduler, kubelet, proxy",
		Long: `minik8s runs a Kubernetes-compatible control plane small enough to read.

  minik8s server      run the control plane (embedded etcd + API server) on this machine
  minik8s apiserver   run only the API server (embedded or external etcd)

Stock kubectl works against it: export KUBECONFIG=/var/lib/minik8s/admin.kubeconfig`,
		SilenceUsage: true,
	}
	root.AddCommand(apiserverCommand("server", "Run the control plane on this machine (embedded etcd by default)"))
	root.AddCommand(apiserverCommand("apiserver", "Run the API server alone (embedded etcd, or --etcd-servers)"))
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}

func apiserverCommand(use, short string) *cobra.Command {
	opts := apiserver.DefaultOptions()
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Example: `  # start with everything under /var/lib/minik8s and HTTPS on :6443
  minik8s ` + use + `

  # use an external etcd cluster
  minik8s ` + use + ` --etcd-servers=http://10.0.0.10:2379,http://10.0.0.11:2379`,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			srv, err := apiserver.New(ctx, opts, log)
			if err != nil {
				return err
			}
			defer srv.Close()
			return srv.Serve(ctx, func(addr string) {
				fmt.Fprintf(os.Stderr, "minik8s API server is up on https://%s\n  export KUBECONFIG=%s/admin.kubeconfig\n  kubectl get namespaces\n",
					addr, opts.DataDir)
			})
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

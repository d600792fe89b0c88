// Command minik8s is the all-in-one binary: `minik8s server` runs the whole
// control plane in one process; each component is also a subcommand of its
// own for people who run them apart.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/agent"
	"github.com/minik8s/minik8s/controllers/manager"
	"github.com/minik8s/minik8s/kubelet"
	"github.com/minik8s/minik8s/proxy"
	"github.com/minik8s/minik8s/scheduler"
)

func main() {
	root := &cobra.Command{
		Use:   "minik8s",
		Short: "A small Kubernetes-style cluster: API server on etcd, controllers, scheduler, kubelet, proxy",
		Long: `minik8s runs a Kubernetes-compatible control plane small enough to read.

  minik8s server               a cluster on this machine: embedded etcd, API server,
                               controller-manager, scheduler and (unless --disable-agent) this node
  minik8s agent                join this machine to a server as a node (--server, --token)
  minik8s apiserver            only the API server (embedded etcd, or --etcd-servers)
  minik8s controller-manager   only the controllers
  minik8s scheduler            only the scheduler
  minik8s kubelet              the node agent alone (pods on containerd through CRI)
  minik8s proxy                the iptables service proxy of one node
  minik8s token                create, list and delete join tokens of a server

Stock kubectl and ctl work against it: export KUBECONFIG=/var/lib/minik8s/admin.kubeconfig`,
		SilenceUsage: true,
	}
	root.AddCommand(serverCommand())
	root.AddCommand(apiserverCommand())
	root.AddCommand(manager.NewCommand("controller-manager"))
	root.AddCommand(scheduler.NewCommand("scheduler"))
	root.AddCommand(proxy.NewCommand("proxy"))
	root.AddCommand(kubelet.NewCommand("kubelet"))
	root.AddCommand(agent.NewCommand("agent"))
	root.AddCommand(tokenCommand())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

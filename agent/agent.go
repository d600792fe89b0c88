package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/agent/podroutes"
	"github.com/minik8s/minik8s/client/kubeconfig"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/kubelet"
	"github.com/minik8s/minik8s/proxy"
)

// Options configure a node.
type Options struct {
	// Server and Token join a remote server (minik8s agent); Kubeconfig,
	// if set, is used instead (minik8s server's own node).
	Server, Token, Kubeconfig string
	// DataDir holds the node's kubeconfig, kubelet root and containerd.
	DataDir string
	// NodeName, NodeIP and PodCIDR go to the kubelet; empty values let it
	// pick the host name, the first global IPv4 and a CIDR from nodeipam.
	NodeName, NodeIP, PodCIDR string
	// ClusterCIDR is the pod network as a whole (for the proxy's
	// masquerade rule).
	ClusterCIDR string
	// ImportImages are OCI tarballs (or directories of them) for containerd.
	ImportImages []string
	// PodRoutes routes other nodes' pod CIDRs via their InternalIPs.
	PodRoutes bool
	// DisableProxy leaves the service proxy out.
	DisableProxy bool
	// KubeletArgs and ProxyArgs are extra flags ("--name=value") for them.
	KubeletArgs, ProxyArgs []string
	// Cleanup removes what a stopped node left behind instead of running.
	Cleanup bool
}

// DefaultOptions are what `minik8s agent` starts with.
func DefaultOptions() Options {
	host, _ := os.Hostname()
	return Options{DataDir: "/var/lib/minik8s-agent", NodeName: host, ClusterCIDR: "10.244.0.0/16", PodRoutes: true}
}

// AddFlags registers the options as flags.
func (o *Options) AddFlags(cmd *cobra.Command, joining bool) {
	f := cmd.Flags()
	if joining {
		f.StringVar(&o.Server, "server", o.Server, "the API server to join, https://HOST:6443")
		f.StringVar(&o.Token, "token", o.Token, "the join token: the content of <data-dir>/node-token on the server")
		f.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "use this kubeconfig instead of --server/--token")
		f.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory for this node's kubeconfig, kubelet state and containerd")
	}
	f.StringSliceVar(&o.ImportImages, "import-images", o.ImportImages, "OCI image tarballs (files or directories of *.tar) to import into this node's containerd")
	f.StringVar(&o.NodeName, "node-name", o.NodeName, "name of this node")
	f.StringVar(&o.NodeIP, "node-ip", o.NodeIP, "this node's InternalIP (default: the first global IPv4 address)")
	f.StringVar(&o.PodCIDR, "pod-cidr", o.PodCIDR, "this node's pod CIDR (default: assigned by the controller-manager from --cluster-cidr)")
	f.StringVar(&o.ClusterCIDR, "cluster-cidr", o.ClusterCIDR, "the pod network of the whole cluster")
	f.BoolVar(&o.PodRoutes, "pod-routes", o.PodRoutes, "route other nodes' pod CIDRs via their node IPs (nodes on one L2 network); turn off if your network routes them")
	f.BoolVar(&o.DisableProxy, "disable-proxy", o.DisableProxy, "do not run the service proxy on this node")
	f.BoolVar(&o.Cleanup, "cleanup", o.Cleanup, "remove everything a stopped node left on this machine (pods, mounts, bridge, KUBE-* rules, pod routes, cgroups), then exit")
	f.StringArrayVar(&o.KubeletArgs, "kubelet-arg", o.KubeletArgs, "extra kubelet flag, e.g. --kubelet-arg=--max-pods=50 (repeatable)")
	f.StringArrayVar(&o.ProxyArgs, "proxy-arg", o.ProxyArgs, "extra proxy flag, e.g. --proxy-arg=--nodeport-addresses=10.0.0.0/8 (repeatable)")
}

// NewCommand is `minik8s agent`.
func NewCommand(use string) *cobra.Command {
	o := DefaultOptions()
	cmd := &cobra.Command{
		Use:   use,
		Short: "Join this machine to a cluster as a node: kubelet, containerd, proxy, pod routes",
		Long: `agent makes this machine a node of the cluster at --server, like "k3s agent".

The join token (--token, from <data-dir>/node-token on the server) pins the
server's CA by hash, so nothing else has to be copied: the agent learns the CA
from the server, checks it against the token, and writes
<data-dir>/kubelet.kubeconfig. Then it runs, in this process:

  kubelet   registers the Node, supervises its own containerd under
            <data-dir>/kubelet/containerd, runs the pods bound here
  proxy     iptables rules for Services (ClusterIP, NodePort)
  routes    one route per other node: its pod CIDR via its InternalIP

Without --pod-cidr the node waits for the controller-manager to assign one
(minik8s server runs it with --allocate-node-cidrs). There is no image
registry here: give the node the local images with --import-images.`,
		Example: `  # on the server
  cat /var/lib/minik8s/node-token

  # on the new node (a lab VM), as root
  minik8s agent --server https://192.168.56.10:6443 --token K10...::... \
      --import-images /var/lib/minik8s/images`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Cleanup {
				return Cleanup(cmd.Context(), o, slog.Default())
			}
			return Run(cmd.Context(), o, slog.Default())
		},
	}
	o.AddFlags(cmd, true)
	return cmd
}

// Run runs the node until ctx ends; a part that fails stops the others.
func Run(ctx context.Context, o Options, log *slog.Logger) error {
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return err
	}
	kcPath, err := o.connect(ctx, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := func(name string, run func(context.Context) error) {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
				log.Error("node component failed; stopping the node", "component", name, "err", err)
				cancel()
			}
		})
	}
	kubeletArgs := []string{"--kubeconfig", kcPath, "--node-name", o.NodeName,
		"--root-dir", filepath.Join(o.DataDir, "kubelet")}
	if o.NodeIP != "" {
		kubeletArgs = append(kubeletArgs, "--node-ip", o.NodeIP)
	}
	if o.PodCIDR != "" {
		kubeletArgs = append(kubeletArgs, "--pod-cidr", o.PodCIDR)
	}
	for _, img := range o.ImportImages {
		kubeletArgs = append(kubeletArgs, "--import-images", img)
	}
	if o.PodRoutes {
		// Other nodes' pods are routed, so pod-to-pod traffic can keep
		// its source IP, as Kubernetes network plugins do.
		kubeletArgs = append(kubeletArgs, "--non-masquerade-cidr", o.ClusterCIDR)
	}
	start("kubelet", Component(kubelet.NewCommand("kubelet"), append(kubeletArgs, o.KubeletArgs...)...))
	if !o.DisableProxy {
		proxyArgs := []string{"--kubeconfig", kcPath, "--hostname-override", o.NodeName, "--cluster-cidr", o.ClusterCIDR}
		start("proxy", Component(proxy.NewCommand("proxy"), append(proxyArgs, o.ProxyArgs...)...))
	}
	if o.PodRoutes {
		start("pod-routes", func(ctx context.Context) error {
			cs, err := clientset(kcPath)
			if err != nil {
				return err
			}
			return podroutes.Run(ctx, cs, o.NodeName, log.With("component", "pod-routes"))
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func clientset(path string) (*typed.Clientset, error) {
	kc, err := kubeconfig.Load(path, "")
	if err != nil {
		return nil, err
	}
	cfg, err := rest.ConfigFromKubeconfig(kc)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "minik8s-pod-routes"
	return typed.NewForConfig(cfg)
}

// Component runs a component's own command in-process with args, so it
// starts exactly as its standalone binary would.
func Component(cmd *cobra.Command, args ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		cmd.SetArgs(args)
		cmd.SilenceUsage = true
		return cmd.ExecuteContext(ctx)
	}
}

package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/kubeconfig"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
)

// Options are the proxy's command-line settings.
type Options struct {
	Kubeconfig         string
	HostnameOverride   string
	ClusterCIDR        string
	NodePortAddresses  []string
	MinSyncPeriod      time.Duration
	SyncPeriod         time.Duration
	MetricsBindAddress string
	Cleanup            bool
	Netns              string
	LogLevel           string
}

// DefaultOptions are the flag defaults.
func DefaultOptions() Options {
	return Options{
		Kubeconfig:         "/var/lib/minik8s/kube-proxy.kubeconfig",
		MinSyncPeriod:      time.Second,
		SyncPeriod:         30 * time.Second,
		MetricsBindAddress: "127.0.0.1:10249",
		LogLevel:           "info",
	}
}

// NewCommand returns the `proxy` command (the cmd/proxy binary; the
// all-in-one binary can mount it as a subcommand).
func NewCommand(use string) *cobra.Command {
	o := DefaultOptions()
	cmd := &cobra.Command{
		Use:   use,
		Short: "Run the service proxy: program this node's iptables from Services and Endpoints",
		Long: `The proxy runs on every node. It watches Services and Endpoints and programs
iptables (nat and filter tables) so that each Service's cluster IP, external IPs
and node ports reach its ready endpoints, like kube-proxy in iptables mode:

  KUBE-SERVICES      (from nat PREROUTING and OUTPUT) matches cluster/external IPs
  KUBE-SVC-<hash>    one per service port; spreads new connections over
  KUBE-SEP-<hash>    one per endpoint; DNAT to podIP:port
  KUBE-NODEPORTS     node ports, tried last, for the node's own addresses
  KUBE-MARK-MASQ / KUBE-POSTROUTING   masquerade off-cluster and hairpin traffic
  filter KUBE-SERVICES / KUBE-EXTERNAL-SERVICES   REJECT services without endpoints

Every sync renders the whole state and writes the chains that differ from what
is in the kernel in one atomic "iptables-restore --noflush" (an endpoint change
rewrites one KUBE-SVC chain and its KUBE-SEP chains). Changes are coalesced (at
most one sync per --min-sync-period); a full resync at start and every
--sync-period reads the rules back with iptables-save and repairs whatever
differs, so rules removed by hand come back. A rewrite of more than 4000 rules
(the first sync of a large cluster) is split: service chains first, then one
final restore of KUBE-SERVICES/KUBE-NODEPORTS that switches traffic atomically. Type LoadBalancer is served like NodePort; its status.loadBalancer
stays empty (there is no load balancer). externalTrafficPolicy/
internalTrafficPolicy Local are not implemented (treated as Cluster).

At start the proxy sets net.ipv4.ip_forward=1 and
net.ipv4.conf.all.route_localnet=1 (node ports on 127.0.0.1) and logs what it
changed. It serves /metrics and /healthz on --metrics-bind-address; /healthz
is 200 while the last successful sync is younger than 2x --sync-period.`,
		Example: `  # on a node, with the kubeconfig "minik8s server" wrote for the proxy
  proxy --kubeconfig=/var/lib/minik8s/kube-proxy.kubeconfig --cluster-cidr=10.244.0.0/16

  # node ports only on the node's LAN address and loopback
  proxy --nodeport-addresses=192.168.1.0/24,127.0.0.0/8

  # remove every rule and chain the proxy made, then exit
  proxy --cleanup`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig file to reach the API server with")
	f.StringVar(&o.HostnameOverride, "hostname-override", o.HostnameOverride, "This node's name (default: the host name)")
	f.StringVar(&o.ClusterCIDR, "cluster-cidr", o.ClusterCIDR, "Pod network CIDR; traffic to cluster IPs from outside it is masqueraded (empty: no such rule)")
	f.StringSliceVar(&o.NodePortAddresses, "nodeport-addresses", o.NodePortAddresses, "CIDRs of local addresses node ports answer on (default: all local addresses)")
	f.DurationVar(&o.MinSyncPeriod, "min-sync-period", o.MinSyncPeriod, "Least time between two syncs; changes within it are coalesced")
	f.DurationVar(&o.SyncPeriod, "sync-period", o.SyncPeriod, "Interval of the full resync that also restores rules removed by others")
	f.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "host:port for /metrics and /healthz (empty: do not serve)")
	f.BoolVar(&o.Cleanup, "cleanup", o.Cleanup, "Remove every iptables rule and chain the proxy creates, then exit")
	f.StringVar(&o.Netns, "netns", o.Netns, "Program iptables inside this named network namespace (/run/netns/NAME) instead of the proxy's own; for several nodes on one machine")
	f.StringVar(&o.LogLevel, "log-level", o.LogLevel, "debug, info, warn or error")
	return cmd
}

// parsed is Options turned into typed values.
type parsed struct {
	clusterCIDR netip.Prefix
	nodePorts   []netip.Prefix
	level       slog.Level
}

func (o *Options) parse() (parsed, error) {
	var p parsed
	if err := p.level.UnmarshalText([]byte(o.LogLevel)); err != nil {
		return p, fmt.Errorf("--log-level=%q: want debug, info, warn or error", o.LogLevel)
	}
	if o.ClusterCIDR != "" {
		c, err := netip.ParsePrefix(o.ClusterCIDR)
		if err != nil || !c.Addr().Is4() {
			return p, fmt.Errorf("--cluster-cidr=%q: want an IPv4 CIDR such as 10.244.0.0/16", o.ClusterCIDR)
		}
		p.clusterCIDR = c.Masked()
	}
	for _, s := range o.NodePortAddresses {
		c, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil || !c.Addr().Is4() {
			return p, fmt.Errorf("--nodeport-addresses: %q is not an IPv4 CIDR", s)
		}
		p.nodePorts = append(p.nodePorts, c.Masked())
	}
	if o.MinSyncPeriod <= 0 {
		return p, fmt.Errorf("--min-sync-period=%s must be positive", o.MinSyncPeriod)
	}
	if o.SyncPeriod < o.MinSyncPeriod {
		return p, fmt.Errorf("--sync-period=%s must not be shorter than --min-sync-period=%s", o.SyncPeriod, o.MinSyncPeriod)
	}
	return p, nil
}

// Run runs the proxy (or the cleanup) until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	p, err := o.parse()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: p.level}))
	if o.Cleanup {
		return Cleanup(ctx, o.Netns, log)
	}
	node := o.HostnameOverride
	if node == "" {
		if node, err = os.Hostname(); err != nil {
			return fmt.Errorf("node name: %w (set --hostname-override)", err)
		}
	}
	node = strings.ToLower(node)
	kc, err := kubeconfig.Load(o.Kubeconfig, "")
	if err != nil {
		return fmt.Errorf("load --kubeconfig: %w", err)
	}
	cfg, err := rest.ConfigFromKubeconfig(kc)
	if err != nil {
		return err
	}
	cfg.UserAgent = "minik8s-proxy/" + node
	cfg.Timeout = 30 * time.Second
	cs, err := typed.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := informer.NewFactory(cs.REST, informer.FactoryOptions{Logger: log})
	px, err := New(Config{
		NodeName:          node,
		ClusterCIDR:       p.clusterCIDR,
		NodePortAddresses: p.nodePorts,
		MinSyncPeriod:     o.MinSyncPeriod,
		SyncPeriod:        o.SyncPeriod,
		Netns:             o.Netns,
		Logger:            log,
	}, factory)
	if err != nil {
		return err
	}
	return RunWithServer(ctx, px, factory, o.MetricsBindAddress, log)
}

// RunWithServer starts the informers, serves px's /metrics and /healthz
// on addr (unless empty) and runs px until ctx ends, then shuts all down.
func RunWithServer(ctx context.Context, px *Proxier, factory *informer.Factory, addr string, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var srv *http.Server
	srvDone := make(chan error, 1)
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("--metrics-bind-address: %w", err)
		}
		srv = &http.Server{Handler: px.Handler(), ReadHeaderTimeout: 10 * time.Second}
		log.Info("serving /metrics and /healthz", "address", ln.Addr().String())
		go func() {
			err := srv.Serve(ln)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			srvDone <- err
			cancel() // a dead health endpoint must not go unnoticed
		}()
	} else {
		srvDone <- nil
	}
	factory.Start(ctx)
	runErr := px.Run(ctx)
	cancel()
	factory.Wait()
	if srv != nil {
		shutCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = srv.Shutdown(shutCtx)
	}
	srvErr := <-srvDone
	if srvErr != nil {
		srvErr = fmt.Errorf("metrics server: %w", srvErr)
	}
	return errors.Join(runErr, srvErr)
}

package manager

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/minik8s/minik8s/client/leaderelection"
	"github.com/minik8s/minik8s/controllers/nodeipam"
	"github.com/minik8s/minik8s/controllers/nodelifecycle"
	"github.com/minik8s/minik8s/controllers/podgc"
)

// DefaultKubeconfig is the kubeconfig the API server writes for the
// controller-manager on first start.
const DefaultKubeconfig = "/var/lib/minik8s/kube-controller-manager.kubeconfig"

// AllControllers are the controllers the manager knows, all on by default.
var AllControllers = []string{"deployment", "replicaset", "endpoints", "namespace", "garbagecollector", "nodelifecycle", "nodeipam", "podgc"}

// Options are the controller-manager's settings, one flag each.
type Options struct {
	Kubeconfig   string
	KubeAPIQPS   float64
	KubeAPIBurst int

	// Controllers lists what to run: "*" for all, a name to enable one,
	// "-name" to disable one.
	Controllers []string

	LeaderElect                               bool
	LeaseName, LeaseNamespace, Identity       string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// ReleaseOnCancel hands the Lease over at once on shutdown instead of
	// letting it expire.
	ReleaseOnCancel bool

	// Address serves /healthz, /readyz and /metrics over plain HTTP; ""
	// disables it.
	Address string

	ConcurrentDeploymentSyncs, ConcurrentReplicaSetSyncs, ConcurrentEndpointSyncs int
	ConcurrentNamespaceSyncs, ConcurrentGCSyncs, ConcurrentNodeSyncs              int

	NodeMonitorGracePeriod                                                time.Duration
	DefaultNotReadyTolerationSeconds, DefaultUnreachableTolerationSeconds int64

	// AllocateNodeCIDRs turns the nodeipam controller on: Nodes without a
	// spec.podCIDR get a /NodeCIDRMaskSize range of ClusterCIDR.
	AllocateNodeCIDRs bool
	ClusterCIDR       string
	NodeCIDRMaskSize  int

	// TerminatedPodGCThreshold is how many terminated (Succeeded or
	// Failed) pods may exist before pod GC deletes the oldest; 0 disables
	// that part of it.
	TerminatedPodGCThreshold int
	// PodGCOrphanQuarantine is how long pod GC waits before deleting the
	// pods of a node that no longer exists.
	PodGCOrphanQuarantine time.Duration

	// ResyncPeriod re-delivers every cached object to the controllers this
	// often, a safety net for level-triggered reconciling (0 = never).
	ResyncPeriod time.Duration
}

// DefaultOptions are Kubernetes' defaults where it has them.
func DefaultOptions() Options {
	host, _ := os.Hostname()
	return Options{
		Kubeconfig:                          "",
		KubeAPIQPS:                          20,
		KubeAPIBurst:                        30,
		Controllers:                         []string{"*"},
		LeaderElect:                         true,
		LeaseName:                           "kube-controller-manager",
		LeaseNamespace:                      leaderelection.DefaultNamespace,
		Identity:                            host,
		LeaseDuration:                       leaderelection.DefaultLeaseDuration,
		RenewDeadline:                       leaderelection.DefaultRenewDeadline,
		RetryPeriod:                         leaderelection.DefaultRetryPeriod,
		ReleaseOnCancel:                     true,
		Address:                             "127.0.0.1:10257",
		ConcurrentDeploymentSyncs:           5,
		ConcurrentReplicaSetSyncs:           5,
		ConcurrentEndpointSyncs:             5,
		ConcurrentNamespaceSyncs:            10,
		ConcurrentGCSyncs:                   20,
		ConcurrentNodeSyncs:                 3,
		NodeMonitorGracePeriod:              nodelifecycle.DefaultGracePeriod,
		DefaultNotReadyTolerationSeconds:    nodelifecycle.DefaultTolerationSeconds,
		DefaultUnreachableTolerationSeconds: nodelifecycle.DefaultTolerationSeconds,
		ResyncPeriod:                        10 * time.Minute,
		ClusterCIDR:                         "10.244.0.0/16",
		NodeCIDRMaskSize:                    nodeipam.DefaultNodeMaskSize,
		TerminatedPodGCThreshold:            podgc.DefaultTerminatedPodThreshold,
		PodGCOrphanQuarantine:               podgc.DefaultOrphanQuarantine,
	}
}

// AddFlags registers the options as flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig to reach the API server (default: "+DefaultKubeconfig+" if it exists, else $KUBECONFIG or ~/.kube/config)")
	fs.Float64Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "requests per second to the API server (0 = unthrottled)")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "burst of requests allowed above --kube-api-qps")
	fs.StringSliceVar(&o.Controllers, "controllers", o.Controllers, "controllers to run: '*' for all, 'name' to enable, '-name' to disable; known: "+strings.Join(AllControllers, ", "))
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "run only while holding the leader Lease, so several replicas can run")
	fs.StringVar(&o.LeaseName, "leader-elect-resource-name", o.LeaseName, "name of the leader election Lease")
	fs.StringVar(&o.LeaseNamespace, "leader-elect-resource-namespace", o.LeaseNamespace, "namespace of the leader election Lease")
	fs.StringVar(&o.Identity, "leader-elect-identity", o.Identity, "this replica's identity in the Lease (a random suffix is added)")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", o.LeaseDuration, "how long standbys wait after the leader's last renewal before taking over")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", o.RenewDeadline, "how long the leader retries renewing before it stops acting (shorter than the lease duration)")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", o.RetryPeriod, "wait between attempts to acquire or renew the Lease")
	fs.BoolVar(&o.ReleaseOnCancel, "leader-elect-release-on-shutdown", o.ReleaseOnCancel, "give the Lease up on SIGTERM so a standby takes over at once")
	fs.StringVar(&o.Address, "address", o.Address, "host:port serving /healthz, /readyz and /metrics over HTTP (empty disables)")
	fs.IntVar(&o.ConcurrentDeploymentSyncs, "concurrent-deployment-syncs", o.ConcurrentDeploymentSyncs, "Deployments reconciled at once")
	fs.IntVar(&o.ConcurrentReplicaSetSyncs, "concurrent-replicaset-syncs", o.ConcurrentReplicaSetSyncs, "ReplicaSets reconciled at once")
	fs.IntVar(&o.ConcurrentEndpointSyncs, "concurrent-endpoint-syncs", o.ConcurrentEndpointSyncs, "Services whose Endpoints are reconciled at once")
	fs.IntVar(&o.ConcurrentNamespaceSyncs, "concurrent-namespace-syncs", o.ConcurrentNamespaceSyncs, "Namespaces deleted at once")
	fs.IntVar(&o.ConcurrentGCSyncs, "concurrent-gc-syncs", o.ConcurrentGCSyncs, "objects the garbage collector handles at once")
	fs.IntVar(&o.ConcurrentNodeSyncs, "concurrent-node-syncs", o.ConcurrentNodeSyncs, "Nodes checked at once")
	fs.DurationVar(&o.NodeMonitorGracePeriod, "node-monitor-grace-period", o.NodeMonitorGracePeriod, "how long a node may go without a heartbeat before it is marked unreachable (Ready=Unknown)")
	fs.Int64Var(&o.DefaultNotReadyTolerationSeconds, "default-not-ready-toleration-seconds", o.DefaultNotReadyTolerationSeconds, "how long pods without their own toleration stay on a not-ready node")
	fs.Int64Var(&o.DefaultUnreachableTolerationSeconds, "default-unreachable-toleration-seconds", o.DefaultUnreachableTolerationSeconds, "how long pods without their own toleration stay on an unreachable node")
	fs.BoolVar(&o.AllocateNodeCIDRs, "allocate-node-cidrs", o.AllocateNodeCIDRs, "give each Node without one a pod CIDR (spec.podCIDR) from --cluster-cidr")
	fs.StringVar(&o.ClusterCIDR, "cluster-cidr", o.ClusterCIDR, "the range pod CIDRs come from (with --allocate-node-cidrs)")
	fs.IntVar(&o.NodeCIDRMaskSize, "node-cidr-mask-size", o.NodeCIDRMaskSize, "prefix length of each node's pod CIDR")
	fs.IntVar(&o.TerminatedPodGCThreshold, "terminated-pod-gc-threshold", o.TerminatedPodGCThreshold, "terminated (Succeeded or Failed) pods kept before the oldest are deleted (0 = keep all)")
	fs.DurationVar(&o.PodGCOrphanQuarantine, "pod-gc-orphan-quarantine", o.PodGCOrphanQuarantine, "how long the pods of a node that no longer exists are left alone before they are force-deleted")
	fs.DurationVar(&o.ResyncPeriod, "min-resync-period", o.ResyncPeriod, "how often every cached object is reconciled again even without changes (0 = never)")
}

// Enabled resolves --controllers into the set of controllers to run.
func (o *Options) Enabled() (map[string]bool, error) {
	on := map[string]bool{}
	star := false
	for _, c := range o.Controllers {
		c = strings.TrimSpace(c)
		switch {
		case c == "*":
			star = true
		case strings.HasPrefix(c, "-") && slices.Contains(AllControllers, c[1:]):
		case slices.Contains(AllControllers, c):
			on[c] = true
		default:
			return nil, fmt.Errorf("--controllers: unknown controller %q (known: %s)", c, strings.Join(AllControllers, ", "))
		}
	}
	out := map[string]bool{}
	for _, name := range AllControllers {
		if (star || on[name]) && !slices.Contains(o.Controllers, "-"+name) {
			out[name] = true
		}
	}
	return out, nil
}

// Validate checks the options before anything starts.
func (o *Options) Validate() error {
	if _, err := o.Enabled(); err != nil {
		return err
	}
	if o.LeaderElect {
		switch {
		case o.LeaseName == "":
			return fmt.Errorf("--leader-elect-resource-name: required with --leader-elect")
		case o.LeaseDuration <= o.RenewDeadline:
			return fmt.Errorf("--leader-elect-lease-duration (%v) must be longer than --leader-elect-renew-deadline (%v)", o.LeaseDuration, o.RenewDeadline)
		}
	}
	if o.NodeMonitorGracePeriod <= 0 {
		return fmt.Errorf("--node-monitor-grace-period: must be positive")
	}
	if o.TerminatedPodGCThreshold < 0 {
		return fmt.Errorf("--terminated-pod-gc-threshold: must be 0 (disabled) or more")
	}
	if o.PodGCOrphanQuarantine <= 0 {
		return fmt.Errorf("--pod-gc-orphan-quarantine: must be positive")
	}
	if o.AllocateNodeCIDRs {
		if _, _, err := net.ParseCIDR(o.ClusterCIDR); err != nil {
			return fmt.Errorf("--cluster-cidr %q: %w", o.ClusterCIDR, err)
		}
	}
	for name, n := range map[string]int{"concurrent-deployment-syncs": o.ConcurrentDeploymentSyncs, "concurrent-replicaset-syncs": o.ConcurrentReplicaSetSyncs,
		"concurrent-endpoint-syncs": o.ConcurrentEndpointSyncs, "concurrent-namespace-syncs": o.ConcurrentNamespaceSyncs,
		"concurrent-gc-syncs": o.ConcurrentGCSyncs, "concurrent-node-syncs": o.ConcurrentNodeSyncs} {
		if n < 1 {
			return fmt.Errorf("--%s: must be at least 1", name)
		}
	}
	return nil
}

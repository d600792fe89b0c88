package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/kubeconfig"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
	krt "github.com/minik8s/minik8s/kubelet/runtime"
)

type options struct {
	kubeconfig     string
	nodeName       string
	rootDir        string
	endpoint       string
	containerd     string
	importImages   []string
	sandboxImage   string
	podCIDR        string
	masquerade     bool
	nonMasqCIDR    string
	nodeIP         string
	taints         []string
	labels         map[string]string
	maxPods        int
	clusterDNS     []string
	clusterDomain  string
	address        string
	port           int
	tlsCert        string
	tlsKey         string
	clientCA       string
	cgroupRoot     string
	syncFrequency  time.Duration
	hollow         int
	hollowPrefix   string
	hollowCPU      string
	hollowMemory   string
	logLevel       string
	shutdownTimout time.Duration

	logMaxSize       string
	logMaxFiles      int
	imageGCHigh      int
	imageGCLow       int
	imageMinGCAge    time.Duration
	maxSandboxStarts int
}

// NewCommand returns the kubelet command under the name use; the kubelet
// binary and `minik8s kubelet` / `minik8s agent` all run it, so a node
// behaves the same however it was started. It stops when the command's
// context ends.
func NewCommand(use string) *cobra.Command {
	o := &options{}
	host, _ := os.Hostname()
	cmd := &cobra.Command{
		Use:   use,
		Short: "Run the minik8s node agent (pods on containerd through CRI)",
		Long: `kubelet registers this machine as a Node (capacity, addresses, labels, taints,
pod CIDR), renews its Lease in kube-node-lease every 10s, and runs the pods the
scheduler binds to it: sandbox, init containers, containers, probes, restarts with
crash-loop backoff, volumes (emptyDir, hostPath, configMap, secret), graceful
deletion. It writes pod status through pods/{name}/status and serves container
logs, exec, attach and port-forward over HTTPS on --port.

By default it starts and supervises its own containerd under <root-dir>/containerd
(restrict_oom_score_adj = true, sandbox_image = --sandbox-image, a bridge +
host-local + portmap CNI config for --pod-cidr). With --container-runtime-endpoint
it uses an existing CRI socket instead.

With --hollow N it runs N hollow nodes named <prefix>-0..N-1 on the fake runtime
(pods are Running at once, nothing is started) to load-test the control plane.`,
		Example: `  # a real node with its own containerd and the local images imported
  go run ./hack/images --out /var/lib/minik8s/images
  kubelet --kubeconfig /var/lib/minik8s/admin.kubeconfig --node-name node-1 \
      --pod-cidr 10.244.1.0/24 --import-images /var/lib/minik8s/images

  # 50 hollow nodes
  kubelet --kubeconfig /var/lib/minik8s/admin.kubeconfig --hollow 50`,
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "/var/lib/minik8s/admin.kubeconfig", "kubeconfig to reach the API server")
	f.StringVar(&o.nodeName, "node-name", host, "name of the Node to register")
	f.StringVar(&o.rootDir, "root-dir", "/var/lib/minik8s/kubelet", "directory for pod volumes, logs and the supervised containerd")
	f.StringVar(&o.endpoint, "container-runtime-endpoint", "", "use this existing CRI socket instead of starting containerd")
	f.StringVar(&o.containerd, "containerd", "containerd", "containerd binary to supervise")
	f.StringSliceVar(&o.importImages, "import-images", nil, "OCI image tarballs (files or directories of *.tar) to import into the supervised containerd")
	f.StringVar(&o.sandboxImage, "sandbox-image", "minik8s.local/pause:3.10", "pause image for pod sandboxes")
	f.StringVar(&o.podCIDR, "pod-cidr", "", "this node's pod CIDR (spec.podCIDR and the CNI bridge range), e.g. 10.244.1.0/24; empty: wait for the controller-manager (--allocate-node-cidrs) to assign one")
	f.BoolVar(&o.masquerade, "masquerade-pod-traffic", true, "SNAT pod traffic leaving the pod CIDR (CNI bridge ipMasq); turn off when pod CIDRs are routed")
	f.StringVar(&o.nonMasqCIDR, "non-masquerade-cidr", "", "traffic to this range keeps the pod's IP (the cluster's pod network when pod CIDRs are routed between nodes); the rest leaving the pod CIDR is masqueraded")
	f.StringVar(&o.nodeIP, "node-ip", "", "InternalIP to report (default: first global IPv4 address)")
	f.StringSliceVar(&o.taints, "register-with-taints", nil, "taints to register with, key=value:Effect")
	f.StringToStringVar(&o.labels, "node-labels", nil, "extra labels to register with")
	f.IntVar(&o.maxPods, "max-pods", 110, "pods capacity")
	f.StringSliceVar(&o.clusterDNS, "cluster-dns", nil, "DNS server IPs for ClusterFirst pods")
	f.StringVar(&o.clusterDomain, "cluster-domain", "cluster.local", "cluster DNS domain")
	f.StringVar(&o.address, "address", "0.0.0.0", "address for the HTTPS server")
	f.IntVar(&o.port, "port", 10250, "HTTPS port for logs, exec, attach and port-forward (0 disables)")
	f.StringVar(&o.tlsCert, "tls-cert-file", "", "serving certificate (default: self-signed in <root-dir>/pki)")
	f.StringVar(&o.tlsKey, "tls-private-key-file", "", "serving key")
	f.StringVar(&o.clientCA, "client-ca-file", "", "CA whose client certificates may call the HTTPS server (default: the kubeconfig's cluster CA)")
	f.StringVar(&o.cgroupRoot, "cgroup-root", "/minik8s", "cgroupfs parent of pod cgroups (<root>/<node>/pod<uid>)")
	f.DurationVar(&o.syncFrequency, "sync-frequency", time.Second, "how often each pod worker re-checks its containers")
	f.IntVar(&o.hollow, "hollow", 0, "run this many hollow nodes on the fake runtime instead of a real node")
	f.StringVar(&o.hollowPrefix, "hollow-name-prefix", "hollow", "name prefix of hollow nodes")
	f.StringVar(&o.hollowCPU, "hollow-cpu", "4", "cpu capacity of each hollow node")
	f.StringVar(&o.hollowMemory, "hollow-memory", "16Gi", "memory capacity of each hollow node")
	f.StringVar(&o.logMaxSize, "container-log-max-size", "10Mi", "rotate a container's log file at this size")
	f.IntVar(&o.logMaxFiles, "container-log-max-files", 5, "log files kept per container (the current one included)")
	f.IntVar(&o.imageGCHigh, "image-gc-high-threshold", 85, "image disk usage percent that starts image garbage collection (100 disables it; images imported with --import-images are not exempt)")
	f.IntVar(&o.imageGCLow, "image-gc-low-threshold", 80, "image disk usage percent image garbage collection frees down to")
	f.DurationVar(&o.imageMinGCAge, "image-minimum-gc-age", 2*time.Minute, "an unused image younger than this is kept")
	f.IntVar(&o.maxSandboxStarts, "max-parallel-sandbox-starts", 4, "pod sandboxes started at once (negative: no limit); runc and CNI are CPU-bound, so a burst finishes sooner in small batches")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func parseTaints(specs []string) ([]corev1.Taint, error) {
	var out []corev1.Taint
	for _, s := range specs {
		kv, effect, ok := strings.Cut(s, ":")
		if !ok {
			return nil, fmt.Errorf("taint %q: want key=value:Effect", s)
		}
		k, v, _ := strings.Cut(kv, "=")
		switch corev1.TaintEffect(effect) {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			return nil, fmt.Errorf("taint %q: effect must be NoSchedule, PreferNoSchedule or NoExecute", s)
		}
		out = append(out, corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(effect)})
	}
	return out, nil
}

func tarballs(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("--import-images: %w", err)
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		m, _ := filepath.Glob(filepath.Join(p, "*.tar"))
		out = append(out, m...)
	}
	return out, nil
}

func run(ctx context.Context, o *options) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()

	kc, err := kubeconfig.Load(o.kubeconfig, "")
	if err != nil {
		return fmt.Errorf("--kubeconfig: %w", err)
	}
	restCfg, err := rest.ConfigFromKubeconfig(kc)
	if err != nil {
		return err
	}
	restCfg.UserAgent = "minik8s-kubelet"
	restCfg.Timeout = 30 * time.Second
	restCfg.QPS, restCfg.Burst = 50, 100
	if o.hollow > 0 {
		// One client serves every hollow node: give it their combined share.
		restCfg.QPS = max(50, 5*float64(o.hollow))
		restCfg.Burst = int(2 * restCfg.QPS)
	}
	cs, err := typed.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	taints, err := parseTaints(o.taints)
	if err != nil {
		return err
	}
	if o.hollow > 0 {
		return runHollow(ctx, o, cs, taints, log)
	}

	var rt krt.Runtime
	if o.endpoint != "" {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		cri, err := krt.DialCRI(dctx, o.endpoint)
		cancel()
		if err != nil {
			return err
		}
		defer cri.Close()
		rt = cri
	} else {
		imgs, err := tarballs(o.importImages)
		if err != nil {
			return err
		}
		if o.podCIDR == "" {
			// The supervised containerd's CNI bridge needs the node's range.
			if o.podCIDR, err = AwaitPodCIDR(ctx, cs, o.nodeName, taints, log); err != nil {
				return err
			}
		}
		ctd, err := krt.StartContainerd(ctx, krt.ContainerdOptions{
			Dir:               filepath.Join(o.rootDir, "containerd"),
			Binary:            o.containerd,
			SandboxImage:      o.sandboxImage,
			PodCIDR:           o.podCIDR,
			NoMasquerade:      !o.masquerade,
			NonMasqueradeCIDR: o.nonMasqCIDR,
			ImportImages:      imgs,
			Log:               log,
		})
		if err != nil {
			return err
		}
		defer ctd.Stop()
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		cri, err := krt.DialCRI(dctx, ctd.Socket())
		cancel()
		if err != nil {
			return err
		}
		defer cri.Close()
		rt = cri
	}
	logMax, err := resource.ParseQuantity(o.logMaxSize)
	if err != nil {
		return fmt.Errorf("--container-log-max-size %q: %w", o.logMaxSize, err)
	}
	cgroupRoot := ""
	if o.cgroupRoot != "" {
		cgroupRoot = filepath.Join(o.cgroupRoot, o.nodeName)
	}
	k, err := New(Config{
		NodeName:      o.nodeName,
		RootDir:       o.rootDir,
		NodeIP:        o.nodeIP,
		PodCIDR:       o.podCIDR,
		Labels:        o.labels,
		Taints:        taints,
		MaxPods:       o.maxPods,
		ClusterDNS:    o.clusterDNS,
		ClusterDomain: o.clusterDomain,
		Port:          o.port,
		CgroupRoot:    cgroupRoot,
		SyncInterval:  o.syncFrequency,

		ContainerLogMaxSize:         logMax.Value(),
		ContainerLogMaxFiles:        o.logMaxFiles,
		ImageGCHighThresholdPercent: o.imageGCHigh,
		ImageGCLowThresholdPercent:  o.imageGCLow,
		ImageMinimumGCAge:           o.imageMinGCAge,
		MaxParallelSandboxStarts:    o.maxSandboxStarts,
	}, Deps{Client: cs, Runtime: rt, Log: log})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if o.port > 0 {
		if o.clientCA == "" && len(kc.CAData) > 0 {
			// The cluster CA signs the client certificate the API server
			// presents when it proxies logs/exec/port-forward here; trust it
			// by default, as a kubelet bootstrapped from this kubeconfig would.
			o.clientCA = filepath.Join(o.rootDir, "pki", "client-ca.crt")
			if err := os.MkdirAll(filepath.Dir(o.clientCA), 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(o.clientCA, kc.CAData, 0o644); err != nil {
				return fmt.Errorf("client CA: %w", err)
			}
		}
		srv := NewServer(k, ServerOptions{
			Address:      fmt.Sprintf("%s:%d", o.address, o.port),
			CertFile:     o.tlsCert,
			KeyFile:      o.tlsKey,
			ClientCAFile: o.clientCA,
			APIServer:    restCfg,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx, func(addr string) {
				log.Info("kubelet serving logs, exec, attach and port-forward", "address", "https://"+addr)
			}); err != nil {
				errc <- err
				stop()
			}
		}()
	}
	err = k.Run(ctx)
	stop()
	wg.Wait()
	close(errc)
	return errors.Join(err, <-errc)
}

// runHollow runs o.hollow fake-runtime kubelets sharing one client and one
// ConfigMap/Secret cache.
func runHollow(ctx context.Context, o *options, cs *typed.Clientset, taints []corev1.Taint, log *slog.Logger) error {
	shared := informer.NewFactory(cs.REST, informer.FactoryOptions{Logger: log})
	configs := NewSharedConfigSource(shared)
	shared.Start(ctx)
	var wg sync.WaitGroup
	errs := make([]error, o.hollow)
	for i := range o.hollow {
		name := fmt.Sprintf("%s-%d", o.hollowPrefix, i)
		k, err := New(Config{
			NodeName:       name,
			NodeIP:         fmt.Sprintf("10.255.%d.%d", i/250, i%250+1),
			Labels:         o.labels,
			Taints:         taints,
			MaxPods:        o.maxPods,
			CPUCapacity:    o.hollowCPU,
			MemoryCapacity: o.hollowMemory,
			SyncInterval:   10 * time.Second,
			Hollow:         true,
		}, Deps{Client: cs, Runtime: krt.NewFake(), Configs: configs, Log: log})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = k.Run(ctx)
		}()
	}
	log.Info("hollow nodes running", "count", o.hollow, "prefix", o.hollowPrefix)
	wg.Wait()
	shared.Wait()
	return errors.Join(errs...)
}

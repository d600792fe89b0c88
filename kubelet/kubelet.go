package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/typed"
	krt "github.com/minik8s/minik8s/kubelet/runtime"
)

// Version is what the kubelet reports as nodeInfo.kubeletVersion.
const Version = "v1.32.0-minik8s"

// Config is one kubelet's settings.
type Config struct {
	NodeName string
	// RootDir holds pod volumes and container logs.
	RootDir string
	// NodeIP is the InternalIP; "" picks the first global IPv4 address.
	NodeIP string
	// Hostname is reported as the Hostname address; "" = NodeName.
	Hostname string
	// PodCIDR is written to spec.podCIDR (and used by the CNI config).
	PodCIDR string
	// Labels are added to the well-known node labels at registration.
	Labels map[string]string
	// Taints are set at registration (--register-with-taints).
	Taints []corev1.Taint
	// MaxPods is the pods capacity (110 by default).
	MaxPods int
	// CPUCapacity and MemoryCapacity override what is read from the host
	// (hollow nodes advertise what they are told).
	CPUCapacity    string
	MemoryCapacity string
	// ClusterDNS and ClusterDomain configure ClusterFirst pods' resolv.conf.
	ClusterDNS    []string
	ClusterDomain string
	// ResolvConf is the node's resolver config for dnsPolicy Default.
	ResolvConf string
	// Port is the HTTPS port for logs and exec (10250); 0 = no server.
	Port int
	// CgroupRoot is the cgroupfs parent of pod cgroups, e.g. /minik8s/node-1;
	// "" lets the runtime choose.
	CgroupRoot string
	// SyncInterval is how often the runtime is relisted (one list of the
	// node's sandboxes and containers); a pod whose containers changed is
	// synced at once.
	SyncInterval time.Duration
	// ResyncInterval is how often each pod is synced even without changes
	// (for probes' verdicts, projected ConfigMaps and Secrets).
	ResyncInterval time.Duration
	// NodeStatusUpdateFrequency is how often node status is computed; it is
	// written when it changed, or every NodeStatusReportFrequency anyway.
	NodeStatusUpdateFrequency time.Duration
	NodeStatusReportFrequency time.Duration
	// LeaseDuration and LeaseRenewInterval: the node Lease.
	LeaseDuration      time.Duration
	LeaseRenewInterval time.Duration
	// Hollow marks a hollow node: fake runtime, no files, probes pass.
	Hollow bool
	// MaxParallelSandboxStarts bounds how many RunPodSandbox calls are in
	// flight (0 = 4; negative = no bound). Starting a sandbox is CPU work
	// in containerd, runc and the CNI plugins (about 0.4 s of CPU on a
	// 2-core VM), so starting 30 at once finishes all of them late; a few
	// at a time finishes the first pods early and the last ones no later.
	MaxParallelSandboxStarts int
	// ContainerLogMaxSize is the size at which a container's log file is
	// rotated (0 = 10Mi; negative = never), ContainerLogMaxFiles how many
	// files a container keeps, the current one included (0 = 5; at least
	// 2), as Kubernetes' containerLogMaxSize and containerLogMaxFiles.
	ContainerLogMaxSize  int64
	ContainerLogMaxFiles int
	// ContainerLogMonitorInterval is how often log sizes are checked
	// (0 = 10s).
	ContainerLogMonitorInterval time.Duration
	// Image garbage collection (see imagegc.go), with Kubernetes'
	// defaults: when the image filesystem is ImageGCHighThresholdPercent
	// (0 = 85; 100 or more = never) full, unused images are removed until
	// it is ImageGCLowThresholdPercent (0 = 80) full; images seen less
	// than ImageMinimumGCAge (0 = 2m) ago are kept. Checked every
	// ImageGCInterval (0 = 5m).
	ImageGCHighThresholdPercent int
	ImageGCLowThresholdPercent  int
	ImageMinimumGCAge           time.Duration
	ImageGCInterval             time.Duration
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.MaxPods == 0 {
		c.MaxPods = 110
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = time.Second
	}
	if c.ResyncInterval == 0 {
		c.ResyncInterval = 10 * time.Second
	}
	if c.ResyncInterval < c.SyncInterval {
		c.ResyncInterval = c.SyncInterval
	}
	if c.NodeStatusUpdateFrequency == 0 {
		c.NodeStatusUpdateFrequency = 10 * time.Second
	}
	if c.NodeStatusReportFrequency == 0 {
		c.NodeStatusReportFrequency = 5 * time.Minute
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = 40 * time.Second
	}
	if c.LeaseRenewInterval == 0 {
		c.LeaseRenewInterval = 10 * time.Second
	}
	if c.Hostname == "" {
		c.Hostname = c.NodeName
	}
	if c.MaxParallelSandboxStarts == 0 {
		c.MaxParallelSandboxStarts = 4
	}
	if c.ContainerLogMaxSize == 0 {
		c.ContainerLogMaxSize = 10 << 20
	}
	if c.ContainerLogMaxFiles == 0 {
		c.ContainerLogMaxFiles = 5
	}
	c.ContainerLogMaxFiles = max(c.ContainerLogMaxFiles, 2)
	if c.ContainerLogMonitorInterval == 0 {
		c.ContainerLogMonitorInterval = 10 * time.Second
	}
	if c.ImageGCHighThresholdPercent == 0 {
		c.ImageGCHighThresholdPercent = 85
	}
	if c.ImageGCLowThresholdPercent == 0 {
		c.ImageGCLowThresholdPercent = 80
	}
	c.ImageGCLowThresholdPercent = min(c.ImageGCLowThresholdPercent, c.ImageGCHighThresholdPercent)
	if c.ImageMinimumGCAge == 0 {
		c.ImageMinimumGCAge = 2 * time.Minute
	}
	if c.ImageGCInterval == 0 {
		c.ImageGCInterval = 5 * time.Minute
	}
}

// Deps are what a kubelet runs on.
type Deps struct {
	Client  *typed.Clientset
	Runtime krt.Runtime
	// Configs reads ConfigMaps and Secrets; nil = informers of this kubelet.
	Configs ConfigSource
	// (A shared Configs does not wake this kubelet's pods on changes; they
	// catch up at their periodic resync.)
	Clock  Clock
	Prober ProbeRunner
	Log    *slog.Logger
}

// Kubelet is one node agent.
type Kubelet struct {
	cfg     Config
	client  *typed.Clientset
	rt      krt.Runtime
	configs ConfigSource
	clock   Clock
	log     *slog.Logger
	probes  *ProbeManager
	backoff *Backoff
	metrics *metrics

	hostname       string
	nodeIP         string
	memoryCapacity int64

	podInformer *informer.Informer
	pods        informer.Lister[*corev1.Pod]
	factories   []*informer.Factory

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	wg      sync.WaitGroup
	runCtx  context.Context

	nodeMu       sync.Mutex
	lastNode     *corev1.Node
	lastReported time.Time

	events chan *corev1.Event
	// sandboxSlots holds a token per RunPodSandbox in flight (nil = no
	// bound); see Config.MaxParallelSandboxStarts.
	sandboxSlots chan struct{}

	// firstSeen records when each pod was first seen bound here (its
	// status startTime).
	firstSeen sync.Map // types.UID -> time.Time
}

// New builds a kubelet. Call Run to start it.
func New(cfg Config, deps Deps) (*Kubelet, error) {
	cfg.Defaults()
	if cfg.NodeName == "" {
		return nil, errors.New("kubelet: node name is required")
	}
	if deps.Client == nil || deps.Runtime == nil {
		return nil, errors.New("kubelet: client and runtime are required")
	}
	if cfg.RootDir == "" && !cfg.Hollow {
		return nil, errors.New("kubelet: root dir is required")
	}
	k := &Kubelet{
		cfg:     cfg,
		client:  deps.Client,
		rt:      deps.Runtime,
		configs: deps.Configs,
		clock:   deps.Clock,
		log:     deps.Log,
		workers: map[types.UID]*podWorker{},
		events:  make(chan *corev1.Event, 256),
		metrics: getMetrics(),
	}
	if k.clock == nil {
		k.clock = realClock{}
	}
	if cfg.MaxParallelSandboxStarts > 0 {
		k.sandboxSlots = make(chan struct{}, cfg.MaxParallelSandboxStarts)
	}
	if k.log == nil {
		k.log = slog.Default()
	}
	k.log = k.log.With("component", "kubelet", "node", cfg.NodeName)
	k.backoff = NewBackoff(k.clock, backoffInitial, backoffMax, backoffReset)
	runner := deps.Prober
	if runner == nil {
		if cfg.Hollow {
			runner = alwaysProber{}
		} else {
			runner = runtimeProber{rt: deps.Runtime}
		}
	}
	k.probes = NewProbeManager(runner, k.clock, k.log, k.wake)
	k.hostname = cfg.Hostname
	k.nodeIP = cfg.NodeIP
	if k.nodeIP == "" {
		k.nodeIP = detectNodeIP()
	}
	k.memoryCapacity = hostMemory()

	// Pods bound to this node only.
	pf := informer.NewFactory(k.client.REST, informer.FactoryOptions{
		TweakListOptions: func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
		},
		Logger: k.log,
	})
	pi := pf.Pods()
	k.podInformer, k.pods = pi.Informer, pi.Lister()
	k.factories = append(k.factories, pf)
	if k.configs == nil {
		cf := informer.NewFactory(k.client.REST, informer.FactoryOptions{Logger: k.log})
		src := &informerConfigs{cms: cf.ConfigMaps(), secrets: cf.Secrets()}
		k.configs = src
		k.factories = append(k.factories, cf)
		h := informer.Handler{
			AddFunc:    func(o runtime.Object) { k.configChanged(o) },
			UpdateFunc: func(_, o runtime.Object) { k.configChanged(o) },
		}
		if err := src.cms.AddEventHandler(h); err != nil {
			return nil, err
		}
		if err := src.secrets.AddEventHandler(h); err != nil {
			return nil, err
		}
	}
	err := k.podInformer.AddEventHandler(informer.Handler{
		AddFunc:    func(o runtime.Object) { k.podChanged(o) },
		UpdateFunc: func(_, o runtime.Object) { k.podChanged(o) },
		DeleteFunc: func(o any) {
			if d, ok := o.(informer.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				k.wake(p.UID)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// informerConfigs reads ConfigMaps and Secrets from informer caches.
type informerConfigs struct {
	cms     informer.Typed[*corev1.ConfigMap]
	secrets informer.Typed[*corev1.Secret]
}

func (s *informerConfigs) ConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	return s.cms.Lister().Get(ns, name)
}

func (s *informerConfigs) Secret(ns, name string) (*corev1.Secret, error) {
	return s.secrets.Lister().Get(ns, name)
}

// NewSharedConfigSource returns a ConfigSource over shared informers, for
// many hollow kubelets in one process.
func NewSharedConfigSource(f *informer.Factory) ConfigSource {
	return &informerConfigs{cms: f.ConfigMaps(), secrets: f.Secrets()}
}

// NodeName is the node this kubelet runs.
func (k *Kubelet) NodeName() string { return k.cfg.NodeName }

// Run registers the node and runs pods until ctx ends. Containers keep
// running when it returns (a restarted kubelet adopts them).
func (k *Kubelet) Run(ctx context.Context) error {
	k.mu.Lock()
	k.runCtx = ctx
	k.mu.Unlock()
	if err := k.registerNode(ctx); err != nil {
		return err
	}
	for _, f := range k.factories {
		f.Start(ctx)
	}
	syncCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	for _, f := range k.factories {
		if !f.WaitForCacheSync(syncCtx) {
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("kubelet %s: informers did not sync within 2m", k.cfg.NodeName)
		}
	}
	cancel()
	k.log.Info("kubelet running", "nodeIP", k.nodeIP, "podCIDR", k.cfg.PodCIDR)

	var loops sync.WaitGroup
	for _, loop := range []func(context.Context){k.leaseLoop, k.nodeStatusLoop, k.housekeepingLoop, k.eventLoop, k.relistLoop, k.logRotationLoop, k.imageGCLoop} {
		loops.Add(1)
		go func() {
			defer loops.Done()
			loop(ctx)
		}()
	}
	<-ctx.Done()
	loops.Wait()
	for _, f := range k.factories {
		f.Wait()
	}
	k.wg.Wait()
	k.log.Info("kubelet stopped")
	return nil
}

// podChanged starts or wakes the worker of a pod bound here.
func (k *Kubelet) podChanged(o runtime.Object) {
	pod, ok := o.(*corev1.Pod)
	if !ok || pod.Spec.NodeName != k.cfg.NodeName {
		return
	}
	if _, loaded := k.firstSeen.LoadOrStore(pod.UID, k.clock.Now()); !loaded {
		k.log.Debug("pod bound here", "pod", pod.Namespace+"/"+pod.Name)
	}
	k.ensureWorker(pod.UID, pod.Namespace, pod.Name)
}

// configChanged wakes the pods that use a ConfigMap or Secret, so env
// resolution and projected files catch up.
func (k *Kubelet) configChanged(o runtime.Object) {
	var ns, name string
	isSecret := false
	switch v := o.(type) {
	case *corev1.ConfigMap:
		ns, name = v.Namespace, v.Name
	case *corev1.Secret:
		ns, name, isSecret = v.Namespace, v.Name, true
	default:
		return
	}
	pods, err := k.pods.ListNamespace(ns, nil)
	if err != nil {
		return
	}
	for _, p := range pods {
		if podUses(p, name, isSecret) {
			k.wake(p.UID)
		}
	}
}

func podUses(p *corev1.Pod, name string, secret bool) bool {
	for _, v := range p.Spec.Volumes {
		if (!secret && v.ConfigMap != nil && v.ConfigMap.Name == name) || (secret && v.Secret != nil && v.Secret.SecretName == name) {
			return true
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if (!secret && src.ConfigMap != nil && src.ConfigMap.Name == name) || (secret && src.Secret != nil && src.Secret.Name == name) {
					return true
				}
			}
		}
	}
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		for _, ef := range c.EnvFrom {
			if (!secret && ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == name) || (secret && ef.SecretRef != nil && ef.SecretRef.Name == name) {
				return true
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if (!secret && e.ValueFrom.ConfigMapKeyRef != nil && e.ValueFrom.ConfigMapKeyRef.Name == name) ||
				(secret && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name) {
				return true
			}
		}
	}
	return false
}

// ensureWorker starts the worker of a pod if it has none.
func (k *Kubelet) ensureWorker(uid types.UID, ns, name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if w, ok := k.workers[uid]; ok {
		w.poke()
		return
	}
	if k.runCtx == nil || k.runCtx.Err() != nil {
		return
	}
	w := newPodWorker(k, uid, ns, name)
	k.workers[uid] = w
	k.metrics.workers.WithLabelValues(k.cfg.NodeName).Set(float64(len(k.workers)))
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		w.run(k.runCtx)
	}()
}

// wake asks a pod's worker to sync now.
func (k *Kubelet) wake(uid types.UID) {
	k.mu.Lock()
	w := k.workers[uid]
	k.mu.Unlock()
	if w != nil {
		w.poke()
	}
}

func (k *Kubelet) workerDone(uid types.UID) {
	k.mu.Lock()
	delete(k.workers, uid)
	k.metrics.workers.WithLabelValues(k.cfg.NodeName).Set(float64(len(k.workers)))
	k.mu.Unlock()
	k.firstSeen.Delete(uid)
	k.backoff.ForgetPrefix(string(uid) + "/")
}

// getPod returns the pod ns/name with uid from the cache, or nil when it
// is gone (deleted, or replaced by a pod of the same name).
func (k *Kubelet) getPod(ns, name string, uid types.UID) *corev1.Pod {
	p, err := k.pods.Get(ns, name)
	if err != nil || p.UID != uid || p.Spec.NodeName != k.cfg.NodeName {
		return nil
	}
	return p
}

// housekeepingLoop finds sandboxes of pods this kubelet no longer has
// (deleted while it was down) and tears them down.
func (k *Kubelet) housekeepingLoop(ctx context.Context) {
	// cleanupOrphans bounds its own calls.
	every(ctx, 30*time.Second, time.Hour, true, k.cleanupOrphans)
}

func (k *Kubelet) cleanupOrphans(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sbs, err := k.rt.ListPodSandbox(lctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{krt.LabelNode: k.cfg.NodeName}})
	if err != nil {
		k.log.Warn("housekeeping: listing sandboxes failed", "err", err)
		return
	}
	for _, sb := range sbs {
		uid := types.UID(sb.Labels[krt.LabelPodUID])
		ns, name := sb.Labels[krt.LabelPodNamespace], sb.Labels[krt.LabelPodName]
		if uid == "" || k.getPod(ns, name, uid) != nil {
			continue
		}
		k.mu.Lock()
		_, has := k.workers[uid]
		k.mu.Unlock()
		if !has {
			k.log.Info("cleaning up pod that is gone from the API", "pod", ns+"/"+name, "uid", uid)
			k.ensureWorker(uid, ns, name)
		}
	}
}

// relistLoop lists the node's sandboxes and containers every SyncInterval
// and wakes the workers of pods whose runtime state changed (a container
// exited, say): one list per node instead of one per pod.
func (k *Kubelet) relistLoop(ctx context.Context) {
	last := map[string]string{}
	every(ctx, k.cfg.SyncInterval, 30*time.Second, false, func(lctx context.Context) {
		sel := map[string]string{krt.LabelNode: k.cfg.NodeName}
		sbs, err := k.rt.ListPodSandbox(lctx, &runtimeapi.PodSandboxFilter{LabelSelector: sel})
		var cs []*runtimeapi.Container
		if err == nil {
			cs, err = k.rt.ListContainers(lctx, &runtimeapi.ContainerFilter{LabelSelector: sel})
		}
		if err != nil {
			if ctx.Err() == nil {
				k.log.Warn("relisting the runtime failed", "err", err)
			}
			return
		}
		now := map[string]string{}
		for _, sb := range sbs {
			uid := sb.Labels[krt.LabelPodUID]
			now[uid] += "s" + sb.Id + sb.State.String()
		}
		for _, c := range cs {
			uid := c.Labels[krt.LabelPodUID]
			now[uid] += "c" + c.Id + c.State.String()
		}
		for uid, fp := range now {
			if last[uid] != fp {
				k.wake(types.UID(uid))
			}
		}
		for uid := range last {
			if _, ok := now[uid]; !ok {
				k.wake(types.UID(uid))
			}
		}
		last = now
	})
}

// deletePod removes the pod object once its containers are gone.
func (k *Kubelet) deletePod(ctx context.Context, pod *corev1.Pod) error {
	zero := int64(0)
	uid := pod.UID
	err := k.client.Pods.Namespace(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

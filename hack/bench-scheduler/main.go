// Command bench-scheduler measures the scheduler end to end, in one
// process: it starts a real API server on a real embedded etcd in a
// temporary directory and the scheduler against it (over HTTPS, with the
// scheduler's own token, leader election off), creates -nodes nodes
// (status.allocatable set as a kubelet would) and then -pods pods through
// the API from -c concurrent clients, and watches the pods until every one
// is bound. It prints
//
//   - pods scheduled per second, from the first pod create to the last
//     binding seen on the watch;
//   - per-pod scheduling latency (create request sent → bound on the
//     watch): p50, p90, p99, max;
//   - how fast the pods could be created, the scheduler's attempt counts,
//     process CPU time, the machine's load average, and whether any node
//     ended up over-committed.
//
// The API server, etcd, the scheduler and this client share the process
// and the machine, so the numbers are for the whole control plane.
// -cpuprofile writes a CPU profile in which the scheduler's goroutines
// carry the label component=scheduler:
//
//	go tool pprof -tagfocus=component=scheduler -top FILE
//
// It prints numbers; it asserts nothing.
//
//	go run ./hack/bench-scheduler -nodes 1000 -pods 10000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	_ "net/http/pprof"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/hack/benchstat"
	"github.com/minik8s/minik8s/scheduler"
	"github.com/minik8s/minik8s/scheduler/framework"
)

const namespace = "bench"

type config struct {
	nodes, pods, c   int
	fsync            bool
	percentage       int
	parallelism      int
	replicaSets      int
	cpuProfile       string
	timeout          time.Duration
	verbose          bool
	events           bool
	backlog          bool
	conns            int
	pprofAddr        string
	podCPU, podMem   string
	nodeCPU, nodeMem string
}

func main() {
	var cfg config
	flag.IntVar(&cfg.nodes, "nodes", 1000, "nodes to create")
	flag.IntVar(&cfg.pods, "pods", 10000, "pods to create and schedule")
	flag.IntVar(&cfg.c, "c", 32, "concurrent clients creating nodes and pods")
	flag.IntVar(&cfg.conns, "conns", 4, "HTTP/2 connections the creating clients spread over")
	flag.BoolVar(&cfg.fsync, "fsync", false, "run the embedded etcd with fsync (default off, as in the integration tests: this measures the scheduler, not the disk)")
	flag.IntVar(&cfg.percentage, "percentage-of-nodes-to-score", 0, "the scheduler's --percentage-of-nodes-to-score (0 = adaptive)")
	flag.IntVar(&cfg.parallelism, "parallelism", 0, "the scheduler's --parallelism (0 = GOMAXPROCS)")
	flag.IntVar(&cfg.replicaSets, "replicasets", 10, "pods are owned by this many (fictitious) ReplicaSets, so spreading is scored; 0 = no owners")
	flag.StringVar(&cfg.podCPU, "pod-cpu", "100m", "cpu request of each pod")
	flag.StringVar(&cfg.podMem, "pod-memory", "128Mi", "memory request of each pod")
	flag.StringVar(&cfg.nodeCPU, "node-cpu", "32", "allocatable cpu of each node")
	flag.StringVar(&cfg.nodeMem, "node-memory", "128Gi", "allocatable memory of each node")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the pod phase to this file; scheduler goroutines are labelled component=scheduler")
	flag.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "give up after this long")
	flag.BoolVar(&cfg.verbose, "v", false, "log the API server and scheduler at info level")
	flag.StringVar(&cfg.pprofAddr, "pprof-addr", "", "serve net/http/pprof on this address during the run (e.g. 127.0.0.1:6060), to look at goroutines and blocking")
	flag.BoolVar(&cfg.backlog, "backlog", false, "create all pods first, then start the scheduler: measures draining a queue without pod creates competing (default: pods arrive while it runs)")
	flag.BoolVar(&cfg.events, "events", true, "let the scheduler write its Scheduled events (false: drop them, to see what they cost)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: go run ./hack/bench-scheduler [flags]\n\n"+
			"Starts an API server (embedded etcd, temp dir) and the scheduler in this process, creates\n"+
			"nodes and pods through the API and prints pods scheduled per second and create→bound\n"+
			"latency percentiles. Prints numbers only.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if cfg.nodes <= 0 || cfg.pods <= 0 || cfg.c <= 0 || cfg.conns <= 0 {
		fmt.Fprintln(os.Stderr, "bench-scheduler: -nodes, -pods, -c and -conns must be positive")
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scheduler:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	dir, err := os.MkdirTemp("", "bench-scheduler-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	level := slog.LevelWarn
	if cfg.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	if cfg.pprofAddr != "" {
		runtime.SetBlockProfileRate(int(time.Millisecond))
		runtime.SetMutexProfileFraction(100)
		ps := &http.Server{Addr: cfg.pprofAddr, ReadHeaderTimeout: 10 * time.Second} // DefaultServeMux has /debug/pprof
		go func() { _ = ps.ListenAndServe() }()
		defer ps.Close()
	}
	srv, addr, stopServer, err := startServer(ctx, dir, cfg, log)
	if err != nil {
		return err
	}
	defer stopServer()
	admin, err := clientset(srv, addr, "admin")
	if err != nil {
		return err
	}
	fmt.Printf("bench-scheduler: %d nodes, %d pods, %d clients, fsync=%v, events=%v, GOMAXPROCS=%d, %d CPUs, %s\n",
		cfg.nodes, cfg.pods, cfg.c, cfg.fsync, cfg.events, runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version())
	fmt.Printf("%-36s %s\n", "load average at start (1/5/15 min)", benchstat.LoadAvg())

	if _, err := admin.Namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	t0 := time.Now()
	// The creating clients spread over a few connections (each clientset
	// has its own), as several users or controllers would.
	creators := make([]*typed.Clientset, cfg.conns)
	for i := range creators {
		if creators[i], err = clientset(srv, addr, "admin"); err != nil {
			return err
		}
	}
	if err := createNodes(ctx, creators, cfg); err != nil {
		return err
	}
	fmt.Printf("%-36s %d in %v\n", "nodes created", cfg.nodes, time.Since(t0).Round(time.Millisecond))

	// The scheduler, with its own identity and token, as a separate
	// component would run.
	schedClient, err := clientset(srv, addr, "system:kube-scheduler")
	if err != nil {
		return err
	}
	schedWrites, err := clientset(srv, addr, "system:kube-scheduler")
	if err != nil {
		return err
	}
	scfg := scheduler.Config{
		Client:                   schedClient,
		WriteClient:              schedWrites,
		PercentageOfNodesToScore: int32(cfg.percentage),
		Parallelism:              cfg.parallelism,
		Logger:                   log,
	}
	if !cfg.events {
		scfg.Recorder = dropEvents{}
	}
	sched, err := scheduler.New(scfg)
	if err != nil {
		return err
	}
	schedCtx, stopSched := context.WithCancel(ctx)
	schedDone := make(chan error, 1)
	var schedStart time.Time
	startScheduler := func() error {
		schedStart = time.Now()
		go pprof.Do(schedCtx, pprof.Labels("component", "scheduler"), func(ctx context.Context) {
			schedDone <- sched.Run(ctx)
		})
		for st := sched.Stats(); !st.Synced || st.Cache.Nodes < cfg.nodes; st = sched.Stats() {
			select {
			case <-ctx.Done():
				return fmt.Errorf("scheduler never saw all nodes: %+v", st)
			case err := <-schedDone:
				return fmt.Errorf("scheduler stopped: %v", err)
			case <-time.After(5 * time.Millisecond):
			}
		}
		return nil
	}
	defer func() {
		stopSched()
		if !schedStart.IsZero() {
			<-schedDone
		}
	}()

	w, err := startWatch(ctx, admin, cfg.pods)
	if err != nil {
		return err
	}
	defer w.close()

	var cr createResult
	if cfg.backlog {
		// All pods wait before the scheduler starts: this measures how
		// fast it drains a queue, without pod creates competing.
		cr = createPods(ctx, creators, cfg)
		fmt.Printf("%-36s %d in %v, before the scheduler starts\n", "pods created", cr.ok, cr.elapsed.Round(time.Millisecond))
	} else if err := startScheduler(); err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := benchstat.ProcessCPU()
	var synced time.Time
	if cfg.backlog {
		if err := startScheduler(); err != nil {
			return err
		}
		synced = time.Now()
	} else {
		cr = createPods(ctx, creators, cfg)
	}
	if cr.failed > 0 {
		fmt.Printf("%-36s %d failed; first: %s\n", "pod creates", cr.failed, cr.firstErr)
	}
	bound, werr := w.wait(ctx, cfg.pods)
	cpu := benchstat.ProcessCPU() - cpu0
	if cfg.cpuProfile != "" {
		pprof.StopCPUProfile()
	}

	// Latency per pod: create sent (or, for a backlog, scheduler start)
	// → bound seen.
	var lat []time.Duration
	var last time.Time
	for name, at := range bound {
		from, ok := cr.sent[name]
		if !ok {
			continue
		}
		if cfg.backlog {
			from = schedStart
		}
		lat = append(lat, at.Sub(from))
		if at.After(last) {
			last = at
		}
	}
	fmt.Println()
	fmt.Printf("%-36s %d of %d\n", "pods bound", len(bound), cfg.pods)
	if werr != nil {
		fmt.Printf("%-36s %v\n", "waiting for bindings", werr)
	}
	if len(lat) > 0 && cfg.backlog {
		span := last.Sub(schedStart)
		fmt.Printf("%-36s %.0f pods/s (%d pods, scheduler start → last bound %v; caches synced after %v)\n", "scheduling throughput",
			float64(len(lat))/span.Seconds(), len(lat), span.Round(time.Millisecond), synced.Sub(schedStart).Round(time.Millisecond))
		fmt.Printf("%-36s %.0f pods/s (caches synced → last bound %v)\n", "  without the initial list",
			float64(len(lat))/last.Sub(synced).Seconds(), last.Sub(synced).Round(time.Millisecond))
		fmt.Printf("%-36s %s\n", "latency scheduler start → bound", benchstat.Percentiles(lat))
	} else if len(lat) > 0 {
		span := last.Sub(cr.start)
		fmt.Printf("%-36s %.0f pods/s (%d pods, first create → last bound %v)\n", "scheduling throughput",
			float64(len(lat))/span.Seconds(), len(lat), span.Round(time.Millisecond))
		fmt.Printf("%-36s %.0f pods/s (%d in %v)\n", "pod creates alone", float64(cr.ok)/cr.elapsed.Seconds(), cr.ok, cr.elapsed.Round(time.Millisecond))
		fmt.Printf("%-36s %s\n", "latency create → bound", benchstat.Percentiles(lat))
	}
	if len(lat) > 0 {
		fmt.Printf("%-36s %v for %d pods = %v per pod (API server, etcd, scheduler and this client together)\n",
			"process CPU (user+sys)", cpu.Round(time.Millisecond), len(lat), (cpu / time.Duration(len(lat))).Round(time.Microsecond))
	}
	for _, m := range []struct{ label, metric string }{
		{"scheduler: attempt (filter+score)", "scheduler_scheduling_attempt_duration_seconds"},
		{"scheduler: binding request", "scheduler_binding_duration_seconds"},
		{"scheduler: queued → bound", "scheduler_pod_scheduling_duration_seconds"},
	} {
		fmt.Printf("%-36s %s\n", m.label, histogramMean(sched, m.metric))
	}
	st := sched.Stats()
	fmt.Printf("%-36s nodes %d, pods %d (assumed %d); queue %+v\n", "scheduler cache", st.Cache.Nodes, st.Cache.Pods, st.Cache.AssumedPods, st.Queue)
	over, err := overCommitted(ctx, admin)
	if err != nil {
		fmt.Printf("%-36s %v\n", "over-commit check", err)
	} else {
		fmt.Printf("%-36s %d\n", "over-committed nodes", over)
	}
	fmt.Printf("%-36s %s\n", "load average at end (1/5/15 min)", benchstat.LoadAvg())
	if cfg.cpuProfile != "" {
		fmt.Printf("%-36s go tool pprof -tagfocus=component=scheduler -top %s\n", "scheduler CPU profile", cfg.cpuProfile)
	}
	return nil
}

// startServer runs apiserver.New + Serve as `minik8s apiserver` would, on
// random ports in dir.
func startServer(ctx context.Context, dir string, cfg config, log *slog.Logger) (*apiserver.Server, string, func(), error) {
	o := apiserver.DefaultOptions()
	o.DataDir = dir
	o.BindAddress = "127.0.0.1"
	o.SecurePort = 0
	o.AdvertiseAddress = "127.0.0.1"
	o.EtcdClientURL = "http://127.0.0.1:0"
	o.UnsafeNoFsync = !cfg.fsync
	o.CompactionInterval = 0
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	srv, err := apiserver.New(startCtx, o, log)
	if err != nil {
		return nil, "", nil, fmt.Errorf("starting apiserver: %w", err)
	}
	runCtx, stopServe := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(runCtx, func(addr string) { addrc <- addr }) }()
	select {
	case addr := <-addrc:
		return srv, addr, func() { stopServe(); <-done; srv.Close() }, nil
	case err := <-done:
		stopServe()
		srv.Close()
		return nil, "", nil, fmt.Errorf("serving: %w", err)
	}
}

func clientset(srv *apiserver.Server, addr, user string) (*typed.Clientset, error) {
	token := srv.Token(user)
	if token == "" {
		return nil, fmt.Errorf("no token for %s", user)
	}
	return typed.NewForConfig(&rest.Config{Host: "https://" + addr, CAData: srv.CA(), BearerToken: token, UserAgent: "bench-scheduler/" + user})
}

// parallel runs f(i) for i in [0, n) on c goroutines.
func parallel(n, c int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(c, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

func createNodes(ctx context.Context, clients []*typed.Clientset, cfg config) error {
	alloc := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cfg.nodeCPU),
		corev1.ResourceMemory: resource.MustParse(cfg.nodeMem),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	var mu sync.Mutex
	var firstErr error
	parallel(cfg.nodes, cfg.c, func(i int) {
		cs := clients[i%len(clients)]
		name := fmt.Sprintf("node-%05d", i)
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname":      name,
			"topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", i%3),
		}}}
		created, err := cs.Nodes.Create(ctx, n, metav1.CreateOptions{})
		if err == nil {
			created.Status = corev1.NodeStatus{
				Capacity: alloc, Allocatable: alloc, Phase: corev1.NodeRunning,
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}},
			}
			_, err = cs.Nodes.UpdateStatus(ctx, created, metav1.UpdateOptions{})
		}
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("node %s: %w", name, err)
			}
			mu.Unlock()
		}
	})
	return firstErr
}

type createResult struct {
	start    time.Time
	elapsed  time.Duration
	ok       int
	failed   int
	firstErr string
	sent     map[string]time.Time
}

func createPods(ctx context.Context, clients []*typed.Clientset, cfg config) createResult {
	res := createResult{sent: make(map[string]time.Time, cfg.pods)}
	sent := make([]time.Time, cfg.pods)
	errs := make([]error, cfg.pods)
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cfg.podCPU), corev1.ResourceMemory: resource.MustParse(cfg.podMem)}
	yes := true
	res.start = time.Now()
	parallel(cfg.pods, cfg.c, func(i int) {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: podName(i), Namespace: namespace, Labels: map[string]string{"app": "bench"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "main", Image: "minik8s.local/busybox:1.35", Resources: corev1.ResourceRequirements{Requests: req},
			}}},
		}
		if cfg.replicaSets > 0 {
			rs := i % cfg.replicaSets
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: fmt.Sprintf("bench-%d", rs),
				UID: types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", rs)), Controller: &yes}}
		}
		sent[i] = time.Now()
		_, errs[i] = clients[i%len(clients)].Pods.Namespace(namespace).Create(ctx, p, metav1.CreateOptions{})
	})
	res.elapsed = time.Since(res.start)
	for i, err := range errs {
		if err != nil {
			res.failed++
			if res.firstErr == "" {
				res.firstErr = fmt.Sprintf("%s: %v", podName(i), err)
			}
			continue
		}
		res.ok++
		res.sent[podName(i)] = sent[i]
	}
	return res
}

// histogramMean reads a histogram's sum and count from the scheduler's
// /metrics and returns "mean X over N".
func histogramMean(s *scheduler.Scheduler, name string) string {
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var sum, count float64
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(f[1], &v); err != nil {
			continue
		}
		// Sum over label sets (attempts are split by result).
		switch {
		case strings.HasPrefix(f[0], name+"_sum"):
			sum += v
		case strings.HasPrefix(f[0], name+"_count"):
			count += v
		}
	}
	if count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("mean %v over %.0f", time.Duration(sum/count*float64(time.Second)).Round(10*time.Microsecond), count)
}

type dropEvents struct{}

func (dropEvents) Event(kruntime.Object, string, string, string) {}

func podName(i int) string { return fmt.Sprintf("pod-%06d", i) }

// watcher records when each pod is first seen bound, through a shared
// informer (which re-watches if the server drops a slow watch).
type watcher struct {
	mu    sync.Mutex
	bound map[string]time.Time
	stop  context.CancelFunc
	f     *informer.Factory
}

func startWatch(ctx context.Context, cs *typed.Clientset, want int) (*watcher, error) {
	ctx, stop := context.WithCancel(ctx)
	w := &watcher{bound: make(map[string]time.Time, want), stop: stop}
	// Only bound pods: the server filters, so this observer decodes one
	// event per pod instead of every change.
	w.f = informer.NewFactory(cs.REST, informer.FactoryOptions{
		Namespace: namespace, Logger: slog.New(slog.DiscardHandler),
		TweakListOptions: func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName!=" },
	})
	record := func(obj kruntime.Object) {
		now := time.Now()
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" {
			return
		}
		w.mu.Lock()
		if _, seen := w.bound[p.Name]; !seen {
			w.bound[p.Name] = now
		}
		w.mu.Unlock()
	}
	if err := w.f.Pods().AddEventHandler(informer.Handler{
		AddFunc:    record,
		UpdateFunc: func(_, obj kruntime.Object) { record(obj) },
	}); err != nil {
		stop()
		return nil, err
	}
	w.f.Start(ctx)
	if !w.f.WaitForCacheSync(ctx) {
		stop()
		return nil, errors.New("pod watch did not sync")
	}
	return w, nil
}

func (w *watcher) close() {
	w.stop()
	w.f.Wait()
}

func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.bound)
}

// wait returns when every pod is bound, or nothing has been bound for a
// minute; it prints progress every 5s.
func (w *watcher) wait(ctx context.Context, want int) (map[string]time.Time, error) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	lastN, lastChange := 0, time.Now()
	for {
		select {
		case <-ctx.Done():
			return w.snapshot(), ctx.Err()
		case <-poll.C:
			if w.count() >= want {
				return w.snapshot(), nil
			}
		case <-tick.C:
			n := w.count()
			fmt.Printf("  ... %d/%d bound, load %s\n", n, want, benchstat.LoadAvg())
			if n != lastN {
				lastN, lastChange = n, time.Now()
			} else if time.Since(lastChange) > time.Minute {
				return w.snapshot(), fmt.Errorf("no pod bound for a minute; %d of %d bound", n, want)
			}
		}
	}
}

func (w *watcher) snapshot() map[string]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps(w.bound)
}

func maps(m map[string]time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// overCommitted counts nodes whose pods request more than allocatable.
func overCommitted(ctx context.Context, cs *typed.Clientset) (int, error) {
	nodes, err := cs.Nodes.List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	pods, err := cs.Pods.Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	used := map[string]*framework.Resource{}
	count := map[string]int64{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName == "" {
			continue
		}
		if used[p.Spec.NodeName] == nil {
			used[p.Spec.NodeName] = &framework.Resource{}
		}
		pi := framework.NewPodInfo(p)
		used[p.Spec.NodeName].Add(&pi.Requests)
		count[p.Spec.NodeName]++
	}
	over := 0
	for i := range nodes.Items {
		n := &nodes.Items[i]
		alloc := framework.NewResource(n.Status.Allocatable)
		u := used[n.Name]
		if u == nil {
			continue
		}
		if u.MilliCPU > alloc.MilliCPU || u.Memory > alloc.Memory || count[n.Name] > alloc.AllowedPodNumber {
			over++
		}
	}
	return over, nil
}

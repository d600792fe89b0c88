package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/workqueue"
)

// Config configures a Proxier.
type Config struct {
	// NodeName is this node's name (for logs).
	NodeName string
	// ClusterCIDR is the pod network; see RenderOptions.ClusterCIDR.
	ClusterCIDR netip.Prefix
	// NodePortAddresses limits node ports to local addresses in these
	// prefixes; empty means all local addresses.
	NodePortAddresses []netip.Prefix
	// MinSyncPeriod is the least time between the starts of two syncs
	// (default 1s): bursts of changes are coalesced into one sync.
	MinSyncPeriod time.Duration
	// SyncPeriod is how often a full resync runs even without changes
	// (default 30s); it restores rules someone else removed.
	SyncPeriod time.Duration
	// Netns, if set, is a named network namespace (/run/netns/NAME) that
	// all iptables, conntrack and sysctl work happens in. Empty means the
	// proxy's own namespace, as in production.
	Netns string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registry receives the metrics; nil means a new registry that also
	// has the Go and process collectors.
	Registry *prometheus.Registry
	// Clock drives rate limiting and resyncs; nil means the wall clock.
	Clock workqueue.Clock
}

// DefaultBatchLines is the size (in rules) above which a rewrite is split
// into several commits (see Plan), all fed to one iptables-restore.
// iptables-nft (Debian 12's iptables 1.8.9) keeps the chains a commit
// names in a sorted linked list, so one commit costs (rules × chains): the
// first sync of 1,000 services × 10 endpoints (32,500 rules, 11,000
// chains) took 6–12 s as one commit, about 1 s as ~30 commits of 1,000
// rules in one process, and 2–3 s as 9 processes of 4,000 rules (each
// process pays its start-up and cache fetch). See hack/bench-proxy.
// Legacy iptables replaces a whole table per commit, so there batching
// only costs: the proxy does not batch on that backend.
const DefaultBatchLines = 1000

// Proxier keeps this node's iptables in line with the cluster's Services
// and Endpoints.
type Proxier struct {
	cfg       Config
	log       *slog.Logger
	clock     workqueue.Clock
	services  informer.Typed[*corev1.Service]
	endpoints informer.Typed[*corev1.Endpoints]
	runner    *syncRunner
	metrics   *metrics
	registry  *prometheus.Registry
	started   time.Time

	// Owned by the sync goroutine.
	ipt     *Iptables
	opts    RenderOptions
	applied map[string]uint64 // chain hashes of the last applied Rules; nil = unknown
	// batchLines is the largest rewrite done in one commit
	// (see Plan); 0 means always one.
	batchLines int
	udp        map[string]*ServicePort
	problems   map[string]bool

	mu          sync.Mutex
	lastSuccess time.Time
	syncs       int
}

// New returns a Proxier reading Services and Endpoints from f's shared
// informers. The caller starts f; Run waits for its caches.
func New(cfg Config, f *informer.Factory) (*Proxier, error) {
	if cfg.MinSyncPeriod < 0 || cfg.SyncPeriod < 0 {
		return nil, errors.New("proxy: sync periods must not be negative")
	}
	if cfg.MinSyncPeriod == 0 {
		cfg.MinSyncPeriod = time.Second
	}
	if cfg.SyncPeriod == 0 {
		cfg.SyncPeriod = 30 * time.Second
	}
	if cfg.SyncPeriod < cfg.MinSyncPeriod {
		return nil, fmt.Errorf("proxy: sync period %s is shorter than min sync period %s", cfg.SyncPeriod, cfg.MinSyncPeriod)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "proxy", "node", cfg.NodeName)
	clock := cfg.Clock
	if clock == nil {
		clock = workqueue.RealClock{}
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("proxy: register metrics: %w", err)
	}
	p := &Proxier{
		cfg:       cfg,
		log:       log,
		clock:     clock,
		services:  f.Services(),
		endpoints: f.Endpoints(),
		metrics:   m,
		registry:  reg,
		opts:      RenderOptions{ClusterCIDR: cfg.ClusterCIDR, NodePortAddresses: cfg.NodePortAddresses},
		problems:  map[string]bool{},

		batchLines: DefaultBatchLines,
	}
	p.runner = newSyncRunner(cfg.MinSyncPeriod, cfg.SyncPeriod, clock, log, p.syncRules)
	if err := p.services.AddEventHandlerWithResync(p.handler(m.serviceChanges), 0); err != nil {
		return nil, fmt.Errorf("proxy: watch services: %w", err)
	}
	if err := p.endpoints.AddEventHandlerWithResync(p.handler(m.endpointChanges), 0); err != nil {
		return nil, fmt.Errorf("proxy: watch endpoints: %w", err)
	}
	return p, nil
}

// handler triggers a sync on every real change (not on informer resyncs).
func (p *Proxier) handler(changes prometheus.Counter) informer.Handler {
	changed := func() {
		changes.Inc()
		p.runner.Trigger()
	}
	return informer.Handler{
		AddFunc: func(runtime.Object) { changed() },
		UpdateFunc: func(oldObj, newObj runtime.Object) {
			o, err1 := meta.Accessor(oldObj)
			n, err2 := meta.Accessor(newObj)
			if err1 == nil && err2 == nil && o.GetResourceVersion() == n.GetResourceVersion() {
				return
			}
			changed()
		},
		DeleteFunc: func(any) { changed() },
	}
}

// Run programs the rules until ctx ends. All kernel work happens on one
// goroutine (in Config.Netns if set): it probes iptables, sets the sysctls
// the proxy needs, waits for the informer caches, then syncs. It returns
// an error only if it could not start.
func (p *Proxier) Run(ctx context.Context) error {
	p.mu.Lock()
	p.started = p.clock.Now()
	p.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- p.run(ctx) }()
	return <-errc
}

func (p *Proxier) run(ctx context.Context) error {
	if err := enterNetns(p.cfg.Netns); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	ipt, err := NewIptables(p.log)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	p.ipt = ipt
	if ipt.Legacy() {
		p.batchLines = 0
	}
	p.opts.RandomFully = ipt.HasRandomFully()
	if err := ensureSysctls(p.log); err != nil {
		p.log.Error("could not set the sysctls the proxy needs; services may not work", "err", err)
	}
	if !p.opts.ClusterCIDR.IsValid() {
		p.log.Warn("no --cluster-cidr: traffic to cluster IPs from outside the pod network is not masqueraded")
	}
	p.log.Info("waiting for services and endpoints caches")
	if !informer.WaitForCacheSync(ctx, p.services, p.endpoints) {
		return nil
	}
	p.log.Info("proxy started", "minSyncPeriod", p.cfg.MinSyncPeriod, "syncPeriod", p.cfg.SyncPeriod,
		"clusterCIDR", p.cfg.ClusterCIDR, "nodePortAddresses", p.cfg.NodePortAddresses, "netns", p.cfg.Netns)
	p.runner.Run(ctx)
	return nil
}

// syncRules renders everything and writes the chains that differ from the
// current state in one iptables-restore (see Plan). A full sync (and any
// sync after a failure) reads the current state back from the kernel and
// re-checks the jump rules from the built-in chains; other syncs compare
// with what the last sync applied.
func (p *Proxier) syncRules(ctx context.Context, full bool) (err error) {
	start := p.clock.Now()
	defer func() {
		p.metrics.syncDuration.Observe(p.clock.Now().Sub(start).Seconds())
		if err != nil {
			p.metrics.syncFailures.Inc()
		}
	}()
	svcs, err := p.services.Lister().List(nil)
	if err != nil {
		return fmt.Errorf("list cached services: %w", err)
	}
	eps, err := p.endpoints.Lister().List(nil)
	if err != nil {
		return fmt.Errorf("list cached endpoints: %w", err)
	}
	ports, problems := BuildServicePorts(svcs, eps)
	p.reportProblems(problems)

	// What is in the kernel now: read back on a full sync (so changes
	// made by others are found and undone), else what we last applied.
	var current map[string]uint64
	var saved map[string]map[string][]string
	if full || p.applied == nil {
		text, err := p.ipt.Save(ctx)
		if err != nil {
			return err
		}
		saved = ParseSave(text)
		current = ChainHashes(saved)
		if p.applied != nil {
			var repaired []string
			for k, h := range p.applied {
				if kh, ok := current[k]; !ok || kh != h {
					repaired = append(repaired, k)
				}
			}
			if len(repaired) > 0 {
				slices.Sort(repaired)
				p.log.Warn("chains changed outside the proxy; rewriting them", "chains", len(repaired), "first", repaired[0])
			}
		}
	} else {
		current = p.applied
	}
	rules := Render(ports, p.opts)
	plan := rules.Plan(current, p.batchLines)
	// Everything goes to one iptables-restore: the plan's commits, then
	// (on a full sync) the jump rules the kernel lacks.
	input := plan.Input()
	var jumps int
	if saved != nil {
		var text []byte
		text, jumps = JumpsInput(saved)
		input = append(input, text...)
	}
	if len(input) > 0 {
		if err := p.ipt.Restore(ctx, input); err != nil {
			p.applied = nil
			p.metrics.restoreFailures.Inc()
			return fmt.Errorf("apply rules for %d service ports (%d commits, %d jump rules): %w", len(ports), len(plan.Commits), jumps, err)
		}
	}
	p.applied = rules.Hashes()
	p.metrics.chainsWritten.Add(float64(plan.Written))
	if jumps > 0 {
		p.log.Info("added jump rules to built-in chains", "rules", jumps)
	}
	p.flushStaleUDP(ctx, ports)

	withEps, nEps := 0, 0
	for _, sp := range ports {
		if len(sp.Endpoints) > 0 {
			withEps++
		}
		nEps += len(sp.Endpoints)
	}
	now := p.clock.Now()
	p.metrics.rules.WithLabelValues("nat").Set(float64(rules.NATRules))
	p.metrics.rules.WithLabelValues("filter").Set(float64(rules.FilterRules))
	p.metrics.servicePorts.WithLabelValues("yes").Set(float64(withEps))
	p.metrics.servicePorts.WithLabelValues("no").Set(float64(len(ports) - withEps))
	p.metrics.endpoints.Set(float64(nEps))
	p.metrics.lastSync.Set(float64(now.UnixNano()) / 1e9)
	p.mu.Lock()
	p.lastSuccess = now
	p.syncs++
	p.mu.Unlock()
	p.log.Debug("synced proxy rules", "full", full, "servicePorts", len(ports), "endpoints", nEps,
		"natRules", rules.NATRules, "filterRules", rules.FilterRules, "chainsWritten", plan.Written, "chainsCreated", plan.Created,
		"staleChains", len(plan.Stale), "rulesWritten", plan.Lines, "commits", len(plan.Commits), "took", now.Sub(start))
	return nil
}

// reportProblems logs each problem once, when it first appears.
func (p *Proxier) reportProblems(problems []error) {
	now := make(map[string]bool, len(problems))
	for _, e := range problems {
		s := e.Error()
		now[s] = true
		if !p.problems[s] {
			p.log.Warn("service not fully programmed", "reason", s)
		}
	}
	p.problems = now
}

// flushStaleUDP deletes UDP conntrack entries that would keep sending
// datagrams to endpoints that are gone (UDP has no connection end to clear
// them), or that were created while a service had no endpoints. TCP needs
// nothing: a dead endpoint resets or times out its connections.
func (p *Proxier) flushStaleUDP(ctx context.Context, ports []*ServicePort) {
	current := map[string]*ServicePort{}
	for _, sp := range ports {
		if sp.Protocol == corev1.ProtocolUDP {
			current[sp.String()] = sp
		}
	}
	first := p.udp == nil
	old := p.udp
	p.udp = current
	if first {
		return
	}
	flush := func(sp *ServicePort, what string, filter ...string) {
		if err := p.ipt.DeleteUDPConntrack(ctx, filter...); err != nil {
			p.log.Warn("flushing stale UDP conntrack entries failed", "service", sp.String(), "what", what, "err", fmt.Errorf("service %s: %w", sp, err))
		}
	}
	// Every address a service port answers on, as conntrack filters.
	dests := func(sp *ServicePort) [][]string {
		d := [][]string{{"--orig-dst", sp.ClusterIP.String()}}
		for _, ip := range sp.ExternalIPs {
			d = append(d, []string{"--orig-dst", ip.String()})
		}
		if sp.NodePort != 0 {
			d = append(d, []string{"--orig-port-dst", portString(sp.NodePort)})
		}
		return d
	}
	for name, prev := range old {
		cur, ok := current[name]
		if !ok {
			for _, d := range dests(prev) {
				flush(prev, "service port removed", d...)
			}
			continue
		}
		if len(prev.Endpoints) == 0 && len(cur.Endpoints) > 0 {
			for _, d := range dests(cur) {
				flush(cur, "service got endpoints", d...)
			}
			continue
		}
		for _, ep := range prev.Endpoints {
			if slices.ContainsFunc(cur.Endpoints, func(e Endpoint) bool { return e.IP == ep.IP }) {
				continue
			}
			for _, d := range dests(prev) {
				flush(prev, "endpoint removed", append(d, "--dst-nat", ep.IP.String())...)
			}
		}
	}
	for name, cur := range current {
		if _, ok := old[name]; !ok && len(cur.Endpoints) > 0 {
			for _, d := range dests(cur) {
				flush(cur, "new service port", d...)
			}
		}
	}
}

// Trigger asks for a sync soon (rate-limited like any change).
func (p *Proxier) Trigger() { p.runner.Trigger() }

// Status is what /healthz reports.
type Status struct {
	LastUpdated time.Time `json:"lastUpdated"`
	CurrentTime time.Time `json:"currentTime"`
	Syncs       int       `json:"syncs"`
	Healthy     bool      `json:"healthy"`
}

// Status says whether the rules are fresh: the last successful sync (or
// the start, before the first one) is less than 2×SyncPeriod ago.
func (p *Proxier) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	ref := p.lastSuccess
	if ref.IsZero() {
		ref = p.started
	}
	return Status{
		LastUpdated: p.lastSuccess,
		CurrentTime: now,
		Syncs:       p.syncs,
		Healthy:     !ref.IsZero() && now.Sub(ref) < 2*p.cfg.SyncPeriod,
	}
}

// Handler serves /metrics (Prometheus) and /healthz (200 when Status is
// healthy, else 503; the body is the Status as JSON).
func (p *Proxier) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		st := p.Status()
		w.Header().Set("Content-Type", "application/json")
		if !st.Healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	return mux
}

// Cleanup removes every rule and chain the proxy creates, inside netns
// ("" = the current namespace), and reports what it removed.
func Cleanup(ctx context.Context, netns string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	return InNetns(netns, func() error {
		x, err := NewIptables(log)
		if err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		jumps, chains, err := x.Cleanup(ctx)
		log.Info("removed proxy rules", "jumpRules", jumps, "chains", chains, "netns", netns)
		if err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		return nil
	})
}

package kubelet

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

// ProbeType is liveness, readiness or startup.
type ProbeType string

// Probe types.
const (
	Liveness  ProbeType = "Liveness"
	Readiness ProbeType = "Readiness"
	Startup   ProbeType = "Startup"
)

// ProbeResult is a probe's current verdict.
type ProbeResult int

// Probe results. Unknown means "not decided yet".
const (
	ProbeUnknown ProbeResult = iota
	ProbeSuccess
	ProbeFailure
)

func (r ProbeResult) String() string {
	switch r {
	case ProbeSuccess:
		return "success"
	case ProbeFailure:
		return "failure"
	}
	return "unknown"
}

// probeDefaults fills the Kubernetes defaults of a probe's timing.
func probeDefaults(p corev1.Probe) corev1.Probe {
	if p.PeriodSeconds <= 0 {
		p.PeriodSeconds = 10
	}
	if p.TimeoutSeconds <= 0 {
		p.TimeoutSeconds = 1
	}
	if p.SuccessThreshold <= 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold <= 0 {
		p.FailureThreshold = 3
	}
	return p
}

// probeState is the threshold state machine of one probe of one container
// instance: when it is due, and what its verdict is after each outcome.
// It is pure (no I/O, time passed in) so tests can drive it.
type probeState struct {
	typ     ProbeType
	spec    corev1.Probe
	started time.Time // when the container started
	lastRun time.Time
	result  ProbeResult
	streak  int  // consecutive outcomes equal to last
	last    bool // the last outcome
	ran     bool
}

func newProbeState(typ ProbeType, spec corev1.Probe, started time.Time) *probeState {
	s := &probeState{typ: typ, spec: probeDefaults(spec), started: started}
	switch typ {
	case Liveness:
		s.result = ProbeSuccess // alive until proven dead
	case Readiness:
		s.result = ProbeFailure // not ready until proven ready
	default:
		s.result = ProbeUnknown // not started until proven started
	}
	return s
}

// nextRun is when the probe should run next.
func (s *probeState) nextRun() time.Time {
	first := s.started.Add(time.Duration(s.spec.InitialDelaySeconds) * time.Second)
	if !s.ran {
		return first
	}
	next := s.lastRun.Add(time.Duration(s.spec.PeriodSeconds) * time.Second)
	if next.Before(first) {
		return first
	}
	return next
}

// observe records one outcome at now and reports whether the verdict
// changed.
func (s *probeState) observe(now time.Time, ok bool) bool {
	if s.ran && ok == s.last {
		s.streak++
	} else {
		s.streak = 1
	}
	s.ran, s.last, s.lastRun = true, ok, now
	before := s.result
	switch {
	case ok && s.streak >= int(s.spec.SuccessThreshold):
		s.result = ProbeSuccess
	case !ok && s.streak >= int(s.spec.FailureThreshold):
		s.result = ProbeFailure
	}
	return before != s.result
}

// ProbeRunner performs one probe against a container.
type ProbeRunner interface {
	// Run returns nil if the probe passed, or why it failed.
	Run(ctx context.Context, p *corev1.Probe, target ProbeTarget) error
}

// ProbeTarget is what a probe is aimed at.
type ProbeTarget struct {
	ContainerID string
	PodIP       string
	Ports       []corev1.ContainerPort
}

// runtimeProber runs exec probes through the runtime and HTTP/TCP probes
// from the node against the pod IP, as the kubelet does.
type runtimeProber struct {
	rt runtime.Runtime
}

func (p runtimeProber) Run(ctx context.Context, pr *corev1.Probe, t ProbeTarget) error {
	timeout := time.Duration(probeDefaults(*pr).TimeoutSeconds) * time.Second
	switch {
	case pr.Exec != nil:
		res, err := p.rt.ExecSync(ctx, t.ContainerID, pr.Exec.Command, timeout)
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("command %q exited with %d: %s", pr.Exec.Command, res.ExitCode, strings.TrimSpace(string(res.Stdout)+string(res.Stderr)))
		}
		return nil
	case pr.HTTPGet != nil:
		g := pr.HTTPGet
		port, err := resolvePort(g.Port, t.Ports)
		if err != nil {
			return err
		}
		host := g.Host
		if host == "" {
			host = t.PodIP
		}
		scheme := "http"
		if g.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, strconv.Itoa(port))+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "minik8s-kubelet-probe")
		for _, h := range g.HTTPHeaders {
			req.Header.Set(h.Name, h.Value)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true} //nolint:gosec // probes do not verify, as in Kubernetes
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	case pr.TCPSocket != nil:
		port, err := resolvePort(pr.TCPSocket.Port, t.Ports)
		if err != nil {
			return err
		}
		host := pr.TCPSocket.Host
		if host == "" {
			host = t.PodIP
		}
		c, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return c.Close()
	}
	return fmt.Errorf("probe has no handler")
}

func resolvePort(p intstr.IntOrString, ports []corev1.ContainerPort) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("port %q is not a named port of the container", p.StrVal)
}

// alwaysProber passes every probe (hollow nodes).
type alwaysProber struct{}

func (alwaysProber) Run(context.Context, *corev1.Probe, ProbeTarget) error { return nil }

// probeKey names one probe of one container instance.
type probeKey struct {
	podUID      types.UID
	container   string
	typ         ProbeType
	containerID string
}

// probeWorker runs one probe of one container instance.
type probeWorker struct {
	key    probeKey
	probe  *corev1.Probe
	target ProbeTarget
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	state *probeState
	msg   string // why the last probe failed
}

// ProbeManager runs probe workers and keeps their verdicts. When a verdict
// changes it calls onChange with the pod's uid so the pod worker re-syncs.
type ProbeManager struct {
	runner   ProbeRunner
	clock    Clock
	onChange func(types.UID)
	log      *slog.Logger

	mu      sync.Mutex
	workers map[probeKey]*probeWorker
}

// NewProbeManager returns a manager running probes with runner.
func NewProbeManager(runner ProbeRunner, clock Clock, log *slog.Logger, onChange func(types.UID)) *ProbeManager {
	return &ProbeManager{runner: runner, clock: clock, onChange: onChange, log: log, workers: map[probeKey]*probeWorker{}}
}

// Ensure starts a worker for the probe unless one runs for this container
// instance already. started is when the container started.
func (m *ProbeManager) Ensure(ctx context.Context, key probeKey, probe *corev1.Probe, target ProbeTarget, started time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.workers[key]; ok {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &probeWorker{key: key, probe: probe, target: target, cancel: cancel, done: make(chan struct{}),
		state: newProbeState(key.typ, *probe, started)}
	m.workers[key] = w
	go m.run(wctx, w)
}

// Result is the verdict of a probe of a container instance, and whether a
// worker exists for it.
func (m *ProbeManager) Result(key probeKey) (ProbeResult, string, bool) {
	m.mu.Lock()
	w, ok := m.workers[key]
	m.mu.Unlock()
	if !ok {
		return ProbeUnknown, "", false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state.result, w.msg, true
}

// StopPod stops the probes of a pod's containers whose ids are not in
// keep (nil keep stops them all) and waits for them.
func (m *ProbeManager) StopPod(uid types.UID, keep map[string]bool) {
	m.mu.Lock()
	var stopped []*probeWorker
	for k, w := range m.workers {
		if k.podUID == uid && !keep[k.containerID] {
			w.cancel()
			delete(m.workers, k)
			stopped = append(stopped, w)
		}
	}
	m.mu.Unlock()
	for _, w := range stopped {
		<-w.done
	}
}

// step runs the probe if it is due at now and returns when it is next due.
func (m *ProbeManager) step(ctx context.Context, w *probeWorker, now time.Time) time.Time {
	w.mu.Lock()
	due := w.state.nextRun()
	w.mu.Unlock()
	if now.Before(due) {
		return due
	}
	err := m.runner.Run(ctx, w.probe, w.target)
	if ctx.Err() != nil {
		return now
	}
	w.mu.Lock()
	changed := w.state.observe(now, err == nil)
	result := w.state.result
	if err != nil {
		w.msg = err.Error()
	} else {
		w.msg = ""
	}
	next := w.state.nextRun()
	w.mu.Unlock()
	if err != nil {
		m.log.Debug("probe failed", "pod", w.key.podUID, "container", w.key.container, "probe", w.key.typ, "err", err)
	}
	if changed {
		m.log.Info("probe verdict changed", "podUID", w.key.podUID, "container", w.key.container, "probe", w.key.typ, "result", result.String(), "reason", w.msg)
		m.onChange(w.key.podUID)
	}
	return next
}

func (m *ProbeManager) run(ctx context.Context, w *probeWorker) {
	defer close(w.done)
	for {
		next := m.step(ctx, w, m.clock.Now())
		// A startup probe that succeeded is done; liveness and readiness
		// probes wait for it before running at all (handled by the pod
		// worker, which starts them only once the container has started).
		if w.key.typ == Startup {
			if r, _, _ := m.Result(w.key); r == ProbeSuccess {
				<-ctx.Done()
				return
			}
		}
		d := max(next.Sub(m.clock.Now()), 10*time.Millisecond)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

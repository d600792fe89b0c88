package kubelet

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

func TestProbeStateThresholdsAndTiming(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	spec := corev1.Probe{InitialDelaySeconds: 5, PeriodSeconds: 2, FailureThreshold: 3, SuccessThreshold: 2}
	s := newProbeState(Liveness, spec, start)
	if s.result != ProbeSuccess {
		t.Fatalf("liveness starts %v, want success", s.result)
	}
	if got := s.nextRun(); !got.Equal(start.Add(5 * time.Second)) {
		t.Fatalf("first run at %v, want after the initial delay", got)
	}
	now := start.Add(5 * time.Second)
	for i, want := range []ProbeResult{ProbeSuccess, ProbeSuccess, ProbeFailure} {
		changed := s.observe(now, false)
		if s.result != want || changed != (i == 2) {
			t.Fatalf("failure %d: result %v changed %v", i+1, s.result, changed)
		}
		if next := s.nextRun(); !next.Equal(now.Add(2 * time.Second)) {
			t.Fatalf("next run %v, want one period later", next)
		}
		now = now.Add(2 * time.Second)
	}
	// successThreshold 2: one success is not enough to recover.
	if s.observe(now, true); s.result != ProbeFailure {
		t.Fatal("recovered after one success with successThreshold 2")
	}
	if changed := s.observe(now, true); !changed || s.result != ProbeSuccess {
		t.Fatal("did not recover after two successes")
	}
	// A failure streak is broken by a success.
	s.observe(now, false)
	s.observe(now, false)
	s.observe(now, true)
	s.observe(now, false)
	if s.result != ProbeSuccess {
		t.Fatal("non-consecutive failures counted as a streak")
	}

	if r := newProbeState(Readiness, spec, start).result; r != ProbeFailure {
		t.Fatalf("readiness starts %v, want failure", r)
	}
	if r := newProbeState(Startup, spec, start).result; r != ProbeUnknown {
		t.Fatalf("startup starts %v, want unknown", r)
	}
	d := probeDefaults(corev1.Probe{})
	if d.PeriodSeconds != 10 || d.TimeoutSeconds != 1 || d.FailureThreshold != 3 || d.SuccessThreshold != 1 {
		t.Fatalf("defaults %+v", d)
	}
}

// scriptedProber returns queued outcomes.
type scriptedProber struct {
	mu       sync.Mutex
	outcomes []error
	calls    int
}

func (p *scriptedProber) Run(context.Context, *corev1.Probe, ProbeTarget) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if len(p.outcomes) == 0 {
		return nil
	}
	o := p.outcomes[0]
	p.outcomes = p.outcomes[1:]
	return o
}

func TestProbeManagerStepWithFakeClock(t *testing.T) {
	clock := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	boom := errors.New("connection refused")
	runner := &scriptedProber{outcomes: []error{boom, boom}}
	var woke []types.UID
	m := NewProbeManager(runner, clock, slog.Default(), func(uid types.UID) { woke = append(woke, uid) })
	key := probeKey{podUID: "u1", container: "app", typ: Liveness, containerID: "c1"}
	probe := &corev1.Probe{PeriodSeconds: 3, FailureThreshold: 2, InitialDelaySeconds: 1}
	w := &probeWorker{key: key, probe: probe, state: newProbeState(Liveness, *probe, clock.Now()), done: make(chan struct{})}
	m.workers[key] = w
	ctx := context.Background()

	next := m.step(ctx, w, clock.Now())
	if runner.calls != 0 || !next.Equal(clock.Now().Add(time.Second)) {
		t.Fatalf("probe ran before its initial delay (calls %d, next %v)", runner.calls, next)
	}
	clock.Step(time.Second)
	m.step(ctx, w, clock.Now())
	if r, msg, _ := m.Result(key); r != ProbeSuccess || msg != "connection refused" || len(woke) != 0 {
		t.Fatalf("after one failure: %v %q woke %v", r, msg, woke)
	}
	clock.Step(time.Second)
	m.step(ctx, w, clock.Now()) // not due: period is 3s
	if runner.calls != 1 {
		t.Fatalf("probe ran before its period (calls %d)", runner.calls)
	}
	clock.Step(2 * time.Second)
	m.step(ctx, w, clock.Now())
	if r, _, _ := m.Result(key); r != ProbeFailure || len(woke) != 1 || woke[0] != "u1" {
		t.Fatalf("after two failures: %v, woke %v", r, woke)
	}
	clock.Step(3 * time.Second)
	m.step(ctx, w, clock.Now())
	if r, msg, _ := m.Result(key); r != ProbeSuccess || msg != "" || len(woke) != 2 {
		t.Fatalf("after recovery: %v %q woke %v", r, msg, woke)
	}
}

func TestRuntimeProberHandlers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && r.Header.Get("X-Probe") == "yes" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	host, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	fake := runtime.NewFake()
	fake.ExecHook = func(_ string, cmd []string) (*runtime.ExecResult, error) {
		if cmd[0] == "true" {
			return &runtime.ExecResult{}, nil
		}
		return &runtime.ExecResult{ExitCode: 1, Stdout: []byte("nope")}, nil
	}
	ctx := context.Background()
	sb, _ := fake.RunPodSandbox(ctx, nil2cfg())
	cid, _ := fake.CreateContainer(ctx, sb, ctrCfg("app"), nil)
	_ = fake.StartContainer(ctx, cid)
	p := runtimeProber{rt: fake}
	target := ProbeTarget{ContainerID: cid, PodIP: host, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	cases := []struct {
		name  string
		probe corev1.ProbeHandler
		ok    bool
	}{
		{"http named port", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http"), HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}}}}, true},
		{"http 503", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(int32(port))}}, false},
		{"http unknown port name", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("nope")}}, false},
		{"tcp open", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}}, true},
		{"tcp closed", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(1)}}, false},
		{"exec ok", corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, true},
		{"exec fails", corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"false"}}}, false},
	}
	for _, c := range cases {
		err := p.Run(ctx, &corev1.Probe{ProbeHandler: c.probe, TimeoutSeconds: 2}, target)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

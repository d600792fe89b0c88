package kubelet

import (
	"context"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/apiserver/registry"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func ctr(id, name string, attempt uint32, state runtimeapi.ContainerState, exit int32, reason string) *runtimeapi.ContainerStatus {
	return &runtimeapi.ContainerStatus{
		Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name, Attempt: attempt}, State: state,
		StartedAt: t0.UnixNano(), FinishedAt: t0.Add(time.Minute).UnixNano(), ExitCode: exit, Reason: reason,
		Labels: map[string]string{labelSandbox: "sb1"},
	}
}

func TestComputePodStatus(t *testing.T) {
	running, exited := runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_EXITED
	sb := []*runtimeapi.PodSandbox{{Id: "sb1", State: runtimeapi.PodSandboxState_SANDBOX_READY}}
	pod := func(policy corev1.RestartPolicy, readiness bool, inits ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u1"}, Spec: corev1.PodSpec{RestartPolicy: policy,
			Containers: []corev1.Container{{Name: "app", Image: "img"}}}}
		if readiness {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{}
		}
		for _, n := range inits {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n, Image: "img"})
		}
		return p
	}
	cases := []struct {
		name       string
		pod        *corev1.Pod
		containers []*runtimeapi.ContainerStatus
		waiting    map[string]*corev1.ContainerStateWaiting
		readyProbe ProbeResult
		phase      corev1.PodPhase
		ready      bool
		check      func(t *testing.T, st corev1.PodStatus)
	}{
		{name: "nothing yet", pod: pod(corev1.RestartPolicyAlways, false), phase: corev1.PodPending,
			check: func(t *testing.T, st corev1.PodStatus) {
				if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ContainerCreating" {
					t.Errorf("waiting %+v", w)
				}
			}},
		{name: "running", pod: pod(corev1.RestartPolicyAlways, false), containers: []*runtimeapi.ContainerStatus{ctr("c1", "app", 0, running, 0, "")},
			phase: corev1.PodRunning, ready: true},
		{name: "running, readiness not passed", pod: pod(corev1.RestartPolicyAlways, true), containers: []*runtimeapi.ContainerStatus{ctr("c1", "app", 0, running, 0, "")},
			readyProbe: ProbeFailure, phase: corev1.PodRunning, ready: false},
		{name: "running, readiness passed", pod: pod(corev1.RestartPolicyAlways, true), containers: []*runtimeapi.ContainerStatus{ctr("c1", "app", 0, running, 0, "")},
			readyProbe: ProbeSuccess, phase: corev1.PodRunning, ready: true},
		{name: "crash loop", pod: pod(corev1.RestartPolicyAlways, false),
			containers: []*runtimeapi.ContainerStatus{ctr("c2", "app", 2, exited, 1, ""), ctr("c1", "app", 1, exited, 1, "")},
			waiting:    map[string]*corev1.ContainerStateWaiting{"app": {Reason: "CrashLoopBackOff"}},
			phase:      corev1.PodRunning,
			check: func(t *testing.T, st corev1.PodStatus) {
				cs := st.ContainerStatuses[0]
				if cs.RestartCount != 2 || cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" ||
					cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 || cs.LastTerminationState.Terminated.Reason != "Error" {
					t.Errorf("container status %+v", cs)
				}
			}},
		{name: "restarted after OOM", pod: pod(corev1.RestartPolicyAlways, false),
			containers: []*runtimeapi.ContainerStatus{ctr("c2", "app", 1, running, 0, ""), ctr("c1", "app", 0, exited, 137, "OOMKilled")},
			phase:      corev1.PodRunning, ready: true,
			check: func(t *testing.T, st corev1.PodStatus) {
				cs := st.ContainerStatuses[0]
				if cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.Reason != "OOMKilled" {
					t.Errorf("container status %+v", cs)
				}
			}},
		{name: "never + failure", pod: pod(corev1.RestartPolicyNever, false), containers: []*runtimeapi.ContainerStatus{ctr("c1", "app", 0, exited, 3, "")},
			phase: corev1.PodFailed,
			check: func(t *testing.T, st corev1.PodStatus) {
				if tm := st.ContainerStatuses[0].State.Terminated; tm == nil || tm.ExitCode != 3 || tm.Reason != "Error" {
					t.Errorf("terminated %+v", tm)
				}
			}},
		{name: "onfailure + success", pod: pod(corev1.RestartPolicyOnFailure, false), containers: []*runtimeapi.ContainerStatus{ctr("c1", "app", 0, exited, 0, "")},
			phase: corev1.PodSucceeded,
			check: func(t *testing.T, st corev1.PodStatus) {
				if tm := st.ContainerStatuses[0].State.Terminated; tm == nil || tm.Reason != "Completed" {
					t.Errorf("terminated %+v", tm)
				}
				for _, c := range st.Conditions {
					if c.Type == corev1.PodReady && c.Reason != "PodCompleted" {
						t.Errorf("ready condition %+v", c)
					}
				}
			}},
		{name: "init running", pod: pod(corev1.RestartPolicyAlways, false, "init"), containers: []*runtimeapi.ContainerStatus{ctr("i1", "init", 0, running, 0, "")},
			phase: corev1.PodPending,
			check: func(t *testing.T, st corev1.PodStatus) {
				if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
					t.Errorf("app waiting %+v", w)
				}
				if c := cond(st, corev1.PodInitialized); c.Status != corev1.ConditionFalse {
					t.Errorf("Initialized %+v", c)
				}
			}},
		{name: "init failed, never", pod: pod(corev1.RestartPolicyNever, false, "init"), containers: []*runtimeapi.ContainerStatus{ctr("i1", "init", 0, exited, 1, "")},
			phase: corev1.PodFailed},
		{name: "init done, app running", pod: pod(corev1.RestartPolicyAlways, false, "init"),
			containers: []*runtimeapi.ContainerStatus{ctr("c1", "app", 0, running, 0, ""), ctr("i1", "init", 0, exited, 0, "")},
			phase:      corev1.PodRunning, ready: true,
			check: func(t *testing.T, st corev1.PodStatus) {
				if c := cond(st, corev1.PodInitialized); c.Status != corev1.ConditionTrue {
					t.Errorf("Initialized %+v", c)
				}
				if !st.InitContainerStatuses[0].Ready {
					t.Errorf("completed init container not ready")
				}
			}},
		{name: "init done, app not started yet", pod: pod(corev1.RestartPolicyAlways, false, "init"),
			containers: []*runtimeapi.ContainerStatus{ctr("i1", "init", 0, exited, 0, "")},
			phase:      corev1.PodPending,
			check: func(t *testing.T, st corev1.PodStatus) {
				// Kubernetes: PodInitializing until the app runs, which
				// kubectl shows as the pod's STATUS.
				if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
					t.Errorf("app waiting %+v, want PodInitializing", w)
				}
				if c := cond(st, corev1.PodInitialized); c.Status != corev1.ConditionTrue {
					t.Errorf("Initialized %+v", c)
				}
			}},
		{name: "config error", pod: pod(corev1.RestartPolicyAlways, false),
			waiting: map[string]*corev1.ContainerStateWaiting{"app": {Reason: "CreateContainerConfigError", Message: `configmap "x" not found`}},
			phase:   corev1.PodPending,
			check: func(t *testing.T, st corev1.PodStatus) {
				if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "CreateContainerConfigError" {
					t.Errorf("waiting %+v", w)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := statusInput{
				pod: c.pod, state: &podState{sandboxes: sb, containers: c.containers, sandboxIP: "10.0.0.5"},
				waiting: c.waiting, nodeIP: "192.168.1.2", now: t0,
				probe: func(string, ProbeType, string) (ProbeResult, bool) { return c.readyProbe, true },
			}
			if in.waiting == nil {
				in.waiting = map[string]*corev1.ContainerStateWaiting{}
			}
			st := computePodStatus(in)
			if st.Phase != c.phase {
				t.Errorf("phase %s, want %s", st.Phase, c.phase)
			}
			if got := cond(st, corev1.PodReady).Status == corev1.ConditionTrue; got != c.ready {
				t.Errorf("ready %v, want %v", got, c.ready)
			}
			if st.PodIP != "10.0.0.5" || st.HostIP != "192.168.1.2" || st.StartTime == nil {
				t.Errorf("ips %q %q start %v", st.PodIP, st.HostIP, st.StartTime)
			}
			if cond(st, corev1.PodScheduled).Status != corev1.ConditionTrue {
				t.Errorf("PodScheduled missing")
			}
			if c.check != nil {
				c.check(t, st)
			}
		})
	}

	// Terminal phases stick, and transition times are kept while a
	// condition holds.
	p := pod(corev1.RestartPolicyAlways, false)
	p.Status.Phase = corev1.PodSucceeded
	in := statusInput{pod: p, state: &podState{}, waiting: map[string]*corev1.ContainerStateWaiting{}, now: t0,
		probe: func(string, ProbeType, string) (ProbeResult, bool) { return ProbeUnknown, false }}
	if st := computePodStatus(in); st.Phase != corev1.PodSucceeded {
		t.Errorf("terminal phase changed to %s", st.Phase)
	}
	p = pod(corev1.RestartPolicyAlways, false)
	in.pod = p
	in.state = &podState{sandboxes: sb, containers: []*runtimeapi.ContainerStatus{ctr("c1", "app", 0, running, 0, "")}}
	first := computePodStatus(in)
	p.Status = first
	in.now = t0.Add(time.Hour)
	second := computePodStatus(in)
	if a, b := cond(second, corev1.PodReady).LastTransitionTime, cond(first, corev1.PodReady).LastTransitionTime; !a.Equal(&b) {
		t.Errorf("Ready transition time moved without a transition")
	}
}

func cond(st corev1.PodStatus, typ corev1.PodConditionType) corev1.PodCondition {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return corev1.PodCondition{}
}

// slowPulls is the fake runtime with pulls of some images that wait until
// their gate is released.
type slowPulls struct {
	*runtime.Fake
	gates map[string]*pullGate // fixed before the kubelet starts
}

type pullGate struct {
	pulling chan struct{} // closed when a pull starts
	release chan struct{}
	once    sync.Once
	done    sync.Once
}

func newPullGate() *pullGate {
	return &pullGate{pulling: make(chan struct{}), release: make(chan struct{})}
}

func (g *pullGate) open() { g.done.Do(func() { close(g.release) }) }

func (g *pullGate) waitPulling(t *testing.T) {
	t.Helper()
	select {
	case <-g.pulling:
	case <-time.After(time.Minute):
		t.Fatal("the image pull did not start")
	}
}

func (s *slowPulls) PullImage(ctx context.Context, image string) (string, error) {
	if g := s.gates[image]; g != nil {
		g.once.Do(func() { close(g.pulling) })
		select {
		case <-g.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return s.Fake.PullImage(ctx, image)
}

// TestStatusWhileContainersAreCreated: while the sandbox starts and images
// are pulled the pod is reported, as the Kubernetes kubelet does, with its
// containers waiting in ContainerCreating (PodInitializing once its init
// containers are done), which is the STATUS kubectl and ctl show; the
// kubelet used to write nothing before the containers ran, so the pod
// showed Pending all along.
func TestStatusWhileContainersAreCreated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := testClientset(t, s)
	slow, slowApp := newPullGate(), newPullGate()
	rt := &slowPulls{Fake: runtime.NewFake(), gates: map[string]*pullGate{"registry.example/slow": slow, "registry.example/slow-app": slowApp}}
	k, err := New(Config{NodeName: "node-s", RootDir: t.TempDir(), NodeIP: "10.1.2.3", SyncInterval: 100 * time.Millisecond, LeaseRenewInterval: time.Second},
		Deps{Client: cs, Runtime: rt, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	defer func() {
		slow.open()
		slowApp.open()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kubelet Run: %v", err)
		}
	}()
	pods := cs.Pods.Namespace("default")
	waitStatus := func(name, want string, cond func(*corev1.Pod) bool) *corev1.Pod {
		t.Helper()
		var p *corev1.Pod
		waitFor(t, name+" "+want, func() (bool, error) {
			var err error
			if p, err = pods.Get(ctx, name, metav1.GetOptions{}); err != nil {
				return false, err
			}
			return registry.PodStatusReason(p) == want && cond(p), nil
		})
		return p
	}
	waiting := func(cs []corev1.ContainerStatus, i int) string {
		if i >= len(cs) || cs[i].State.Waiting == nil {
			return ""
		}
		return cs[i].State.Waiting.Reason
	}

	// Its image is being pulled: ContainerCreating.
	if _, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "creating", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: "node-s", Containers: []corev1.Container{{Name: "app", Image: "registry.example/slow"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slow.waitPulling(t)
	p := waitStatus("creating", "ContainerCreating", func(p *corev1.Pod) bool {
		return waiting(p.Status.ContainerStatuses, 0) == "ContainerCreating"
	})
	if p.Status.Phase != corev1.PodPending || p.Status.HostIP != "10.1.2.3" || p.Status.StartTime == nil {
		t.Errorf("while pulling: phase %s hostIP %q startTime %v", p.Status.Phase, p.Status.HostIP, p.Status.StartTime)
	}
	slow.open()
	waitStatus("creating", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	// Init containers: Init:0/1 while the init container runs, then
	// PodInitializing while the app's image is pulled.
	p, err = pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "init", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: "node-s",
			InitContainers: []corev1.Container{{Name: "setup", Image: "img:1"}},
			Containers:     []corev1.Container{{Name: "app", Image: "registry.example/slow-app"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus("init", "Init:0/1", func(p *corev1.Pod) bool {
		return len(p.Status.InitContainerStatuses) == 1 && p.Status.InitContainerStatuses[0].State.Running != nil
	})
	ids := rt.ContainerIDs(string(p.UID), "setup")
	if len(ids) != 1 {
		t.Fatalf("init container ids %v", ids)
	}
	if err := rt.SetExited(ids[0], 0, ""); err != nil {
		t.Fatal(err)
	}
	k.wake(p.UID)
	slowApp.waitPulling(t)
	waitStatus("init", "PodInitializing", func(p *corev1.Pod) bool {
		return waiting(p.Status.ContainerStatuses, 0) == "PodInitializing"
	})
	slowApp.open()
	waitStatus("init", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
}

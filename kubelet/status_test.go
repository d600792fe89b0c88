package kubelet

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
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

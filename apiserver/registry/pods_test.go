package registry

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// TestPodStatusReason: the STATUS column of the pods Table (what ctl and a
// stock kubectl print) is kubectl's: the waiting or terminated reason of
// the containers, Init:... while init containers have not all succeeded,
// else the phase.
func TestPodStatusReason(t *testing.T) {
	waiting := func(reason string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "c", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
	}
	running := func(ready bool) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "c", Ready: ready, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	}
	terminated := func(code int32, reason string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "c", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}}}
	}
	pod := func(phase corev1.PodPhase, inits int, initStatuses []corev1.ContainerStatus, statuses ...corev1.ContainerStatus) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}},
			Status: corev1.PodStatus{Phase: phase, InitContainerStatuses: initStatuses, ContainerStatuses: statuses}}
		for range inits {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "i"})
		}
		return p
	}
	cases := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"not yet on a node", pod(corev1.PodPending, 0, nil), "Pending"},
		{"sandbox starting, image pulling", pod(corev1.PodPending, 0, nil, waiting("ContainerCreating")), "ContainerCreating"},
		{"pull failing", pod(corev1.PodPending, 0, nil, waiting("ImagePullBackOff")), "ImagePullBackOff"},
		{"running", pod(corev1.PodRunning, 0, nil, running(true)), "Running"},
		{"crash loop", pod(corev1.PodRunning, 0, nil, waiting("CrashLoopBackOff")), "CrashLoopBackOff"},
		{"completed", pod(corev1.PodSucceeded, 0, nil, terminated(0, "Completed")), "Completed"},
		{"failed", pod(corev1.PodFailed, 0, nil, terminated(2, "Error")), "Error"},
		{"init containers not started", pod(corev1.PodPending, 2, []corev1.ContainerStatus{waiting("PodInitializing"), waiting("PodInitializing")},
			waiting("PodInitializing")), "Init:0/2"},
		{"second init container running", pod(corev1.PodPending, 2, []corev1.ContainerStatus{terminated(0, "Completed"), running(false)},
			waiting("PodInitializing")), "Init:1/2"},
		{"init container failing", pod(corev1.PodPending, 1, []corev1.ContainerStatus{waiting("CrashLoopBackOff")},
			waiting("PodInitializing")), "Init:CrashLoopBackOff"},
		{"init container failed", pod(corev1.PodFailed, 1, []corev1.ContainerStatus{terminated(1, "Error")},
			waiting("PodInitializing")), "Init:Error"},
		{"init done, containers being created", pod(corev1.PodPending, 1, []corev1.ContainerStatus{terminated(0, "Completed")},
			waiting("PodInitializing")), "PodInitializing"},
	}
	for _, c := range cases {
		if got := PodStatusReason(c.pod); got != c.want {
			t.Errorf("%s: STATUS %q, want %q", c.name, got, c.want)
		}
	}
	withReady := func(p *corev1.Pod, ready corev1.ConditionStatus) *corev1.Pod {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
		return p
	}
	twoContainers := func(p *corev1.Pod) *corev1.Pod {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "d"})
		return p
	}
	// A sidecar that finished next to one that runs: kubectl says Running
	// when the pod is Ready, NotReady when not.
	cases = []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"one done, one running, ready", withReady(twoContainers(pod(corev1.PodRunning, 0, nil, terminated(0, "Completed"), running(true))), corev1.ConditionTrue), "Running"},
		{"one done, one running, not ready", withReady(twoContainers(pod(corev1.PodRunning, 0, nil, terminated(0, "Completed"), running(true))), corev1.ConditionFalse), "NotReady"},
	}
	for _, c := range cases {
		if got := PodStatusReason(c.pod); got != c.want {
			t.Errorf("%s: STATUS %q, want %q", c.name, got, c.want)
		}
	}
	// Being deleted: Terminating while it runs; a finished pod keeps its
	// reason; a pod of a lost node is Unknown.
	now := metav1.Now()
	for _, c := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"starting", pod(corev1.PodPending, 0, nil, waiting("ContainerCreating")), "Terminating"},
		{"running", pod(corev1.PodRunning, 0, nil, running(true)), "Terminating"},
		{"completed", pod(corev1.PodSucceeded, 0, nil, terminated(0, "Completed")), "Completed"},
		{"failed", pod(corev1.PodFailed, 0, nil, terminated(2, "Error")), "Error"},
		{"node lost", func() *corev1.Pod {
			p := pod(corev1.PodRunning, 0, nil, running(true))
			p.Status.Reason = "NodeLost"
			return p
		}(), "Unknown"},
	} {
		c.pod.DeletionTimestamp = &now
		if got := PodStatusReason(c.pod); got != c.want {
			t.Errorf("deleted pod, %s: STATUS %q, want %q", c.name, got, c.want)
		}
	}
	// The Table row carries it.
	row := Pods().Row(pod(corev1.PodPending, 0, nil, waiting("ContainerCreating")))
	if row[2] != "ContainerCreating" || row[1] != "0/1" {
		t.Errorf("row %v", row)
	}
}

package kubelet

import (
	"context"
	"fmt"
	"math"
	"time"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// minGraceAfterPreStop is the least time a container gets to handle
// SIGTERM after its preStop hook used up the grace period (Kubernetes
// gives 2 s too).
const minGraceAfterPreStop = 2 * time.Second

// postStartTimeout bounds a postStart hook; Kubernetes has no limit, but
// a hook that never ends would wedge the pod worker.
const postStartTimeout = 2 * time.Minute

// runHook runs one lifecycle hook against a container within timeout:
// exec and the network actions through the same runner as probes, sleep by
// waiting.
func (k *Kubelet) runHook(ctx context.Context, h *corev1.LifecycleHandler, t ProbeTarget, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if h.Sleep != nil {
		select {
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
			return nil
		case <-ctx.Done():
			return fmt.Errorf("sleep %ds cut short: %w", h.Sleep.Seconds, ctx.Err())
		}
	}
	p := &corev1.Probe{
		ProbeHandler:   corev1.ProbeHandler{Exec: h.Exec, HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket},
		TimeoutSeconds: int32(min(math.Ceil(timeout.Seconds()), math.MaxInt32)),
	}
	return k.probes.runner.Run(ctx, p, t)
}

// preStop runs container c's preStop hook, if it has one, before the
// container is stopped, and returns the grace period left for SIGTERM.
// A failing hook is reported as an event and does not stop the kill.
func (w *podWorker) preStop(ctx context.Context, pod *corev1.Pod, name, containerID, podIP string, grace time.Duration) time.Duration {
	if pod == nil || grace <= 0 {
		return grace
	}
	c := containerSpec(pod, name)
	if c == nil || c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		return grace
	}
	start := w.k.clock.Now()
	t := ProbeTarget{ContainerID: containerID, PodIP: podIP, Ports: c.Ports}
	if err := w.k.runHook(ctx, c.Lifecycle.PreStop, t, grace); err != nil {
		w.log.Warn("preStop hook failed", "container", name, "err", err)
		w.k.event(pod, corev1.EventTypeWarning, "FailedPreStopHook", fmt.Sprintf("PreStop hook for container %s failed: %v", name, err))
	}
	return max(grace-w.k.clock.Now().Sub(start), minGraceAfterPreStop)
}

// postStart runs container c's postStart hook right after it started; an
// error means the container must be killed (and restarted as the restart
// policy says), as Kubernetes does.
func (w *podWorker) postStart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, containerID, podIP string) error {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return nil
	}
	t := ProbeTarget{ContainerID: containerID, PodIP: podIP, Ports: c.Ports}
	if err := w.k.runHook(ctx, c.Lifecycle.PostStart, t, postStartTimeout); err != nil {
		w.k.event(pod, corev1.EventTypeWarning, "FailedPostStartHook", fmt.Sprintf("PostStart hook for container %s failed: %v", c.Name, err))
		return err
	}
	return nil
}

func containerSpec(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

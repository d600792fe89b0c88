package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	krt "github.com/minik8s/minik8s/kubelet/runtime"
)

// podWorker owns one pod: a goroutine that syncs the pod's containers with
// its spec whenever poked and every SyncInterval while it is active.
type podWorker struct {
	k         *Kubelet
	uid       types.UID
	namespace string
	name      string
	log       *slog.Logger
	wakeCh    chan struct{}

	// Only the worker goroutine touches the fields below.
	lastPod *corev1.Pod
	// waiting holds why containers are not running, by container name,
	// until they run (ErrImagePull, CreateContainerConfigError, ...).
	waiting map[string]*corev1.ContainerStateWaiting
	// sandboxErr is why the sandbox could not be created.
	sandboxErr string
}

func newPodWorker(k *Kubelet, uid types.UID, ns, name string) *podWorker {
	return &podWorker{
		k: k, uid: uid, namespace: ns, name: name,
		log:     k.log.With("pod", ns+"/"+name),
		wakeCh:  make(chan struct{}, 1),
		waiting: map[string]*corev1.ContainerStateWaiting{},
	}
}

func (w *podWorker) poke() {
	select {
	case w.wakeCh <- struct{}{}:
	default:
	}
}

func (w *podWorker) run(ctx context.Context) {
	defer w.k.workerDone(w.uid)
	for ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		start := time.Now()
		next, done, err := w.sync(sctx)
		cancel()
		w.k.metrics.syncDuration.WithLabelValues(w.k.cfg.NodeName).Observe(time.Since(start).Seconds())
		if err != nil && ctx.Err() == nil {
			w.k.metrics.syncErrors.WithLabelValues(w.k.cfg.NodeName).Inc()
			w.log.Warn("pod sync failed", "err", err)
			next = min(next, 2*time.Second)
			if next <= 0 {
				next = 2 * time.Second
			}
		}
		if done {
			// Stop probes of a finished or removed pod.
			w.k.probes.StopPod(w.uid, nil)
			return
		}
		if next <= 0 {
			next = time.Minute
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			w.k.probes.StopPod(w.uid, nil)
			return
		case <-w.wakeCh:
		case <-t.C:
		}
		t.Stop()
	}
}

// podState is what the runtime has for a pod.
type podState struct {
	sandboxes  []*runtimeapi.PodSandbox      // newest first
	containers []*runtimeapi.ContainerStatus // newest first
	sandboxIP  string
}

func (s *podState) current() *runtimeapi.PodSandbox {
	if len(s.sandboxes) == 0 {
		return nil
	}
	return s.sandboxes[0]
}

// latest returns the newest container named name, in sandbox sb ("" = any).
func (s *podState) latest(name, sb string) *runtimeapi.ContainerStatus {
	for _, c := range s.containers {
		if c.GetMetadata().GetName() == name && (sb == "" || c.Labels[labelSandbox] == sb) {
			return c
		}
	}
	return nil
}

// previous returns the newest container named name older than cur.
func (s *podState) previous(cur *runtimeapi.ContainerStatus) *runtimeapi.ContainerStatus {
	if cur == nil {
		return nil
	}
	seen := false
	for _, c := range s.containers {
		if c.Id == cur.Id {
			seen = true
			continue
		}
		if seen && c.GetMetadata().GetName() == cur.GetMetadata().GetName() {
			return c
		}
	}
	return nil
}

// labelSandbox is set in memory (not in the runtime) on each container
// status: the sandbox it belongs to.
const labelSandbox = "io.minik8s.internal.sandbox"

func (k *Kubelet) podRuntimeState(ctx context.Context, uid types.UID) (*podState, error) {
	sel := map[string]string{krt.LabelPodUID: string(uid)}
	sbs, err := k.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	sort.Slice(sbs, func(i, j int) bool { return sbs[i].CreatedAt > sbs[j].CreatedAt })
	cs, err := k.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	st := &podState{sandboxes: sbs}
	for _, c := range cs {
		s, err := k.rt.ContainerStatus(ctx, c.Id)
		if errors.Is(err, krt.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[labelSandbox] = c.PodSandboxId
		st.containers = append(st.containers, s)
	}
	sort.SliceStable(st.containers, func(i, j int) bool {
		a, b := st.containers[i], st.containers[j]
		if a.GetMetadata().GetAttempt() != b.GetMetadata().GetAttempt() {
			return a.GetMetadata().GetAttempt() > b.GetMetadata().GetAttempt()
		}
		return a.CreatedAt > b.CreatedAt
	})
	if cur := st.current(); cur != nil && cur.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		sst, err := k.rt.PodSandboxStatus(ctx, cur.Id)
		if err != nil && !errors.Is(err, krt.ErrNotFound) {
			return nil, err
		}
		if sst != nil {
			st.sandboxIP = sst.GetNetwork().GetIp()
			if sst.State != runtimeapi.PodSandboxState_SANDBOX_READY {
				cur.State = sst.State
			}
		}
	}
	return st, nil
}

// sync brings the pod's containers to its spec once. It returns when to
// sync again, and done when the pod is gone and everything is cleaned up.
func (w *podWorker) sync(ctx context.Context) (time.Duration, bool, error) {
	k := w.k
	pod := k.getPod(w.namespace, w.name, w.uid)
	state, err := k.podRuntimeState(ctx, w.uid)
	if err != nil {
		return 0, false, fmt.Errorf("pod %s/%s: reading runtime state: %w", w.namespace, w.name, err)
	}
	if pod == nil {
		// Deleted from the API (or no longer bound here): stop and remove
		// everything.
		if err := w.teardown(ctx, state, w.grace(nil)); err != nil {
			return 0, false, err
		}
		return 0, true, nil
	}
	w.lastPod = pod
	if pod.DeletionTimestamp != nil {
		return w.terminate(ctx, pod, state)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// Terminal: nothing restarts; make sure nothing runs.
		if err := w.killAll(ctx, state, w.grace(pod), true); err != nil {
			return 0, false, err
		}
		return 0, false, nil
	}

	if creates(pod, state) {
		// As the Kubernetes kubelet does, report the pod before creating
		// what it lacks: a sandbox start or an image pull can take a while,
		// and meanwhile the pod should show ContainerCreating (or
		// PodInitializing), not a bare Pending.
		if p, err := k.writeStatus(ctx, pod, w.status(pod, state)); err != nil {
			w.log.Debug("status before creating containers not written", "err", err) // the write after converge reports it
		} else if p != nil {
			pod = p
		}
	}
	acted, next, err := w.converge(ctx, pod, state)
	if err != nil {
		return 0, false, err
	}
	if acted {
		if state, err = k.podRuntimeState(ctx, w.uid); err != nil {
			return 0, false, fmt.Errorf("pod %s/%s: reading runtime state: %w", w.namespace, w.name, err)
		}
	}
	w.ensureProbes(pod, state)
	status := w.status(pod, state)
	if _, err := k.writeStatus(ctx, pod, status); err != nil {
		return 0, false, err
	}
	if status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed {
		w.log.Info("pod finished", "phase", status.Phase)
		if err := w.killAll(ctx, state, w.grace(pod), true); err != nil {
			return 0, false, err
		}
		w.k.probes.StopPod(w.uid, nil)
		return 0, false, nil
	}
	w.gc(ctx, state)
	if pending(status) {
		// Something is on its way (a container being created, a sandbox
		// getting its IP): look again soon.
		next = min(positive(next, k.cfg.SyncInterval), k.cfg.SyncInterval)
	}
	if next <= 0 || next > k.cfg.ResyncInterval {
		next = k.cfg.ResyncInterval
	}
	return next, false, nil
}

// creates reports whether converge is about to create something: the
// pod's sandbox, or a container with no instance in the current sandbox.
func creates(pod *corev1.Pod, state *podState) bool {
	sb := state.current()
	if sb == nil || sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return true
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if state.latest(cs[i].Name, sb.Id) == nil {
				return true
			}
		}
	}
	return false
}

func (w *podWorker) grace(pod *corev1.Pod) time.Duration {
	if pod == nil {
		pod = w.lastPod
	}
	if pod == nil {
		return time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
	}
	return time.Duration(gracePeriod(pod)) * time.Second
}

// converge creates the sandbox and starts or restarts containers as the
// spec says. acted reports whether it changed anything; next is the
// soonest it wants to look again (a backoff expiring).
func (w *podWorker) converge(ctx context.Context, pod *corev1.Pod, state *podState) (acted bool, next time.Duration, err error) {
	k := w.k
	if err := k.setupVolumes(pod); err != nil {
		var ce *ConfigError
		msg := err.Error()
		for _, c := range pod.Spec.Containers {
			if errors.As(err, &ce) {
				w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}
			} else {
				w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ContainerCreating", Message: msg}
			}
		}
		w.log.Warn("volumes not ready", "err", err)
		return false, 2 * time.Second, nil
	}

	sb := state.current()
	if sb == nil || sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		var attempt uint32
		if sb != nil {
			attempt = sb.GetMetadata().GetAttempt() + 1
			// A dead sandbox takes its containers with it.
			if err := w.killAll(ctx, state, w.grace(pod), true); err != nil {
				return false, 0, err
			}
		}
		cfg, err := k.sandboxConfig(pod, attempt)
		if err != nil {
			return false, 0, err
		}
		key := string(w.uid) + "/sandbox"
		if d := k.backoff.Wait(key); d > 0 {
			return false, d, nil
		}
		id, err := k.runPodSandbox(ctx, cfg)
		if err != nil {
			k.backoff.Next(key)
			w.sandboxErr = err.Error()
			return false, 0, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		w.sandboxErr = ""
		w.log.Info("started pod sandbox", "sandbox", shortID(id), "attempt", attempt)
		// Go straight on to the containers with the new sandbox in the
		// state. Returning here instead left the pod waiting for the next
		// sync (up to a SyncInterval) between its sandbox and containers.
		st, err := k.podRuntimeState(ctx, w.uid)
		if err != nil {
			return true, 0, fmt.Errorf("pod %s/%s: reading runtime state: %w", pod.Namespace, pod.Name, err)
		}
		*state = *st
		if sb = state.current(); sb == nil || sb.Id != id || sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			return true, 0, nil // it died at once; the next sync sees why
		}
		acted = true
	}
	sbCfg, err := k.sandboxConfig(pod, sb.GetMetadata().GetAttempt())
	if err != nil {
		return acted, 0, err
	}
	podIP := state.sandboxIP
	if pod.Spec.HostNetwork {
		podIP = k.nodeIP
	}

	// Init containers, one at a time, in order.
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cur := state.latest(c.Name, sb.Id)
		switch {
		case cur == nil:
			attempt := uint32(0)
			if any := state.latest(c.Name, ""); any != nil {
				attempt = any.GetMetadata().GetAttempt() + 1
			}
			return w.startContainer(ctx, pod, c, true, attempt, sb.Id, sbCfg, podIP)
		case cur.State == runtimeapi.ContainerState_CONTAINER_CREATED:
			return w.startCreated(ctx, c, cur)
		case cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING, cur.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN:
			return false, 0, nil
		case cur.ExitCode == 0:
			continue
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			return false, 0, nil // the pod has failed; status says so
		default:
			return w.restart(ctx, pod, c, true, cur, sb.Id, sbCfg, podIP)
		}
	}

	next = 0
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cur := state.latest(c.Name, sb.Id)
		any := state.latest(c.Name, "")
		var a bool
		var n time.Duration
		var err error
		switch {
		case cur == nil && any == nil:
			a, n, err = w.startContainer(ctx, pod, c, false, 0, sb.Id, sbCfg, podIP)
		case cur == nil:
			// Its last instance died with an old sandbox.
			a, n, err = w.restart(ctx, pod, c, false, any, sb.Id, sbCfg, podIP)
		case cur.State == runtimeapi.ContainerState_CONTAINER_CREATED:
			a, n, err = w.startCreated(ctx, c, cur)
		case cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
			a, err = w.checkRunning(ctx, pod, c, cur, podIP)
		case cur.State == runtimeapi.ContainerState_CONTAINER_EXITED:
			a, n, err = w.restart(ctx, pod, c, false, cur, sb.Id, sbCfg, podIP)
		}
		if err != nil {
			return acted, 0, err
		}
		acted = acted || a
		if n > 0 && (next == 0 || n < next) {
			next = n
		}
	}
	return acted, next, nil
}

// runPodSandbox starts a sandbox once a slot is free
// (Config.MaxParallelSandboxStarts); waiting pods take turns in arrival
// order.
func (k *Kubelet) runPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig) (string, error) {
	if k.sandboxSlots != nil {
		select {
		case k.sandboxSlots <- struct{}{}:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		defer func() { <-k.sandboxSlots }()
	}
	return k.rt.RunPodSandbox(ctx, cfg)
}

func shouldRestart(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

// restart starts a new instance of an exited container when the restart
// policy and the crash-loop backoff allow it.
func (w *podWorker) restart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, init bool, last *runtimeapi.ContainerStatus,
	sbID string, sbCfg *runtimeapi.PodSandboxConfig, podIP string) (bool, time.Duration, error) {
	if !init && !shouldRestart(pod.Spec.RestartPolicy, last.ExitCode) {
		return false, 0, nil
	}
	key := string(w.uid) + "/" + c.Name
	if last.StartedAt > 0 && last.FinishedAt > 0 && time.Duration(last.FinishedAt-last.StartedAt) >= backoffReset {
		w.k.backoff.Reset(key)
	}
	if d := w.k.backoff.Wait(key); d > 0 {
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", w.k.backoff.Delay(key), c.Name, pod.Name, pod.Namespace, pod.UID),
		}
		return false, d, nil
	}
	w.k.backoff.Next(key)
	w.k.metrics.restarts.WithLabelValues(w.k.cfg.NodeName).Inc()
	w.log.Info("restarting container", "container", c.Name, "exitCode", last.ExitCode, "reason", last.Reason, "restartCount", last.GetMetadata().GetAttempt()+1)
	return w.startContainer(ctx, pod, c, init, last.GetMetadata().GetAttempt()+1, sbID, sbCfg, podIP)
}

// startCreated starts a container that was created but never started
// (the kubelet stopped in between).
func (w *podWorker) startCreated(ctx context.Context, c *corev1.Container, cur *runtimeapi.ContainerStatus) (bool, time.Duration, error) {
	if err := w.k.rt.StartContainer(ctx, cur.Id); err != nil {
		_ = w.k.rt.RemoveContainer(ctx, cur.Id)
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "RunContainerError", Message: err.Error()}
		return true, 0, nil
	}
	delete(w.waiting, c.Name)
	return true, 0, nil
}

// checkRunning restarts a running container whose spec changed or whose
// liveness or startup probe failed.
func (w *podWorker) checkRunning(ctx context.Context, pod *corev1.Pod, c *corev1.Container, cur *runtimeapi.ContainerStatus, podIP string) (bool, error) {
	delete(w.waiting, c.Name)
	reason := ""
	if h := cur.Annotations[annotationHash]; h != "" && h != containerHash(c) {
		reason = "its spec changed"
	}
	if c.StartupProbe != nil {
		if r, msg, ok := w.k.probes.Result(probeKey{w.uid, c.Name, Startup, cur.Id}); ok && r == ProbeFailure {
			reason = "it failed its startup probe: " + msg
		}
	}
	if c.LivenessProbe != nil {
		if r, msg, ok := w.k.probes.Result(probeKey{w.uid, c.Name, Liveness, cur.Id}); ok && r == ProbeFailure {
			reason = "it failed its liveness probe: " + msg
		}
	}
	if reason == "" {
		return false, nil
	}
	w.log.Info("killing container; it will be restarted", "container", c.Name, "why", reason)
	w.k.event(pod, corev1.EventTypeNormal, "Killing", fmt.Sprintf("Container %s %s, will be restarted", c.Name, reason))
	grace := w.grace(pod)
	if p := c.LivenessProbe; p != nil && p.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
	}
	grace = w.preStop(ctx, pod, c.Name, cur.Id, podIP, grace)
	if err := w.k.rt.StopContainer(ctx, cur.Id, grace); err != nil {
		return false, fmt.Errorf("pod %s/%s container %q: %w", pod.Namespace, pod.Name, c.Name, err)
	}
	return true, nil
}

// startContainer pulls the image as the pull policy says, then creates
// and starts one container instance. Failures become the container's
// waiting reason.
func (w *podWorker) startContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, init bool, attempt uint32,
	sbID string, sbCfg *runtimeapi.PodSandboxConfig, podIP string) (bool, time.Duration, error) {
	k := w.k
	if d, err := w.ensureImage(ctx, pod, c); err != nil || d > 0 {
		return false, d, err
	}
	cfg, err := k.containerConfig(pod, c, init, attempt, podIP)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: ce.Msg}
			k.event(pod, corev1.EventTypeWarning, "Failed", "Error: "+ce.Msg)
			return false, 2 * time.Second, nil
		}
		return false, 0, err
	}
	id, err := k.rt.CreateContainer(ctx, sbID, cfg, sbCfg)
	if err != nil {
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: err.Error()}
		k.event(pod, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return false, 2 * time.Second, nil
	}
	if err := k.rt.StartContainer(ctx, id); err != nil {
		_ = k.rt.RemoveContainer(ctx, id)
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "RunContainerError", Message: err.Error()}
		k.event(pod, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		k.backoff.Next(string(w.uid) + "/" + c.Name)
		return false, 2 * time.Second, nil
	}
	delete(w.waiting, c.Name)
	w.log.Info("started container", "container", c.Name, "id", shortID(id), "attempt", attempt)
	k.event(pod, corev1.EventTypeNormal, "Started", "Started container "+c.Name)
	if err := w.postStart(ctx, pod, c, id, podIP); err != nil {
		// As in Kubernetes: a failed postStart kills the container, and
		// the restart policy decides what happens next.
		w.log.Warn("postStart hook failed; killing the container", "container", c.Name, "err", err)
		if err := k.rt.StopContainer(ctx, id, w.grace(pod)); err != nil {
			return true, 0, fmt.Errorf("pod %s/%s container %q: %w", pod.Namespace, pod.Name, c.Name, err)
		}
	}
	return true, 0, nil
}

// ensureImage makes the image present per imagePullPolicy. It returns a
// wait while a failed pull backs off.
func (w *podWorker) ensureImage(ctx context.Context, pod *corev1.Pod, c *corev1.Container) (time.Duration, error) {
	k := w.k
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = corev1.PullIfNotPresent
		if !strings.Contains(c.Image[strings.LastIndex(c.Image, "/")+1:], ":") || strings.HasSuffix(c.Image, ":latest") {
			policy = corev1.PullAlways
		}
	}
	if policy != corev1.PullAlways {
		img, err := k.rt.ImageStatus(ctx, c.Image)
		if err != nil {
			return 0, fmt.Errorf("pod %s/%s container %q: %w", pod.Namespace, pod.Name, c.Name, err)
		}
		if img != nil {
			return 0, nil
		}
		if policy == corev1.PullNever {
			w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull",
				Message: fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)}
			return 5 * time.Second, nil
		}
	}
	key := string(w.uid) + "/pull/" + c.Image
	if d := k.backoff.Wait(key); d > 0 {
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: fmt.Sprintf("Back-off pulling image %q", c.Image)}
		return d, nil
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if _, err := k.rt.PullImage(pctx, c.Image); err != nil {
		k.backoff.Next(key)
		w.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: err.Error()}
		k.event(pod, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.Image, err))
		return k.backoff.Wait(key), nil
	}
	k.backoff.Reset(key)
	k.event(pod, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Successfully pulled image %q", c.Image))
	return 0, nil
}

// ensureProbes runs the probes of running containers and stops those of
// containers that are gone. Liveness and readiness wait for startup.
func (w *podWorker) ensureProbes(pod *corev1.Pod, state *podState) {
	sb := state.current()
	if sb == nil {
		w.k.probes.StopPod(w.uid, nil)
		return
	}
	podIP := state.sandboxIP
	if pod.Spec.HostNetwork {
		podIP = w.k.nodeIP
	}
	keep := map[string]bool{}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cur := state.latest(c.Name, sb.Id)
		if cur == nil || cur.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		keep[cur.Id] = true
		target := ProbeTarget{ContainerID: cur.Id, PodIP: podIP, Ports: c.Ports}
		started := time.Unix(0, cur.StartedAt)
		if c.StartupProbe != nil {
			key := probeKey{w.uid, c.Name, Startup, cur.Id}
			w.k.probes.Ensure(w.k.runCtx, key, c.StartupProbe, target, started)
			if r, _, _ := w.k.probes.Result(key); r != ProbeSuccess {
				continue
			}
			started = w.k.clock.Now()
		}
		if c.LivenessProbe != nil {
			w.k.probes.Ensure(w.k.runCtx, probeKey{w.uid, c.Name, Liveness, cur.Id}, c.LivenessProbe, target, started)
		}
		if c.ReadinessProbe != nil {
			w.k.probes.Ensure(w.k.runCtx, probeKey{w.uid, c.Name, Readiness, cur.Id}, c.ReadinessProbe, target, started)
		}
	}
	w.k.probes.StopPod(w.uid, keep)
}

// killAll stops every running container of the pod (in parallel, each
// with grace), and its sandboxes when stopSandbox.
func (w *podWorker) killAll(ctx context.Context, state *podState, grace time.Duration, stopSandbox bool) error {
	w.k.probes.StopPod(w.uid, nil)
	var wg sync.WaitGroup
	errs := make([]error, len(state.containers))
	for i, c := range state.containers {
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING && c.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			grace := grace
			if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
				grace = w.preStop(ctx, w.lastPod, c.GetMetadata().GetName(), c.Id, state.sandboxIP, grace)
			}
			w.log.Info("stopping container", "container", c.GetMetadata().GetName(), "grace", grace)
			if err := w.k.rt.StopContainer(ctx, c.Id, grace); err != nil {
				errs[i] = fmt.Errorf("pod %s/%s container %q: %w", w.namespace, w.name, c.GetMetadata().GetName(), err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if stopSandbox {
		for _, sb := range state.sandboxes {
			if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				if err := w.k.rt.StopPodSandbox(ctx, sb.Id); err != nil {
					return fmt.Errorf("pod %s/%s: %w", w.namespace, w.name, err)
				}
			}
		}
	}
	return nil
}

// terminate handles a pod being deleted gracefully: stop its containers
// within the grace period, report their final state, delete the pod
// object, then remove its sandboxes and files.
func (w *podWorker) terminate(ctx context.Context, pod *corev1.Pod, state *podState) (time.Duration, bool, error) {
	grace := w.grace(pod)
	if pod.DeletionTimestamp != nil && pod.DeletionGracePeriodSeconds != nil {
		// The grace period runs from when deletion was asked for.
		deadline := pod.DeletionTimestamp.Time
		if left := deadline.Sub(w.k.clock.Now()); left < grace {
			grace = max(left, 0)
		}
	}
	w.log.Info("pod is being deleted; stopping its containers", "grace", grace)
	if err := w.killAll(ctx, state, grace, false); err != nil {
		return 0, false, err
	}
	if st, err := w.k.podRuntimeState(ctx, w.uid); err == nil {
		status := w.status(pod, st)
		if _, err := w.k.writeStatus(ctx, pod, status); err != nil {
			w.log.Debug("final status not written", "err", err)
		}
		state = st
	}
	if err := w.k.deletePod(ctx, pod); err != nil {
		return 0, false, err
	}
	if err := w.teardown(ctx, state, 0); err != nil {
		return 0, false, err
	}
	return 0, true, nil
}

// teardown stops and removes everything the pod has on this node.
func (w *podWorker) teardown(ctx context.Context, state *podState, grace time.Duration) error {
	if err := w.killAll(ctx, state, grace, true); err != nil {
		return err
	}
	logDir := ""
	for _, sb := range state.sandboxes {
		if err := w.k.rt.RemovePodSandbox(ctx, sb.Id); err != nil {
			return fmt.Errorf("pod %s/%s: %w", w.namespace, w.name, err)
		}
	}
	if !w.k.cfg.Hollow {
		logDir = w.k.podLogDirFor(w.namespace, w.name, string(w.uid))
	}
	if err := w.k.cleanupPodDirs(string(w.uid), logDir); err != nil {
		w.log.Warn("removing pod directories failed", "err", err)
	}
	w.k.removePodCgroup(string(w.uid))
	if len(state.sandboxes) > 0 {
		w.log.Info("pod removed from node")
	}
	return nil
}

// gc removes exited containers beyond the newest two of each name (the
// current one and the previous one, whose logs `--previous` reads) and
// sandboxes older than the current one.
func (w *podWorker) gc(ctx context.Context, state *podState) {
	count := map[string]int{}
	for _, c := range state.containers {
		name := c.GetMetadata().GetName()
		count[name]++
		if count[name] > 2 && c.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			if err := w.k.rt.RemoveContainer(ctx, c.Id); err != nil {
				w.log.Warn("removing old container failed", "container", name, "err", err)
			} else if err := removeContainerLogs(c.LogPath); err != nil {
				// As in Kubernetes, a removed container's logs go with it.
				w.log.Warn("removing old container's logs failed", "container", name, "err", err)
			}
		}
	}
	for i, sb := range state.sandboxes {
		if i == 0 {
			continue
		}
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			// Keep old sandboxes whose containers are still the latest of
			// their name (for previous logs); remove the rest.
			inUse := false
			for _, c := range state.containers {
				if c.Labels[labelSandbox] == sb.Id && state.latest(c.GetMetadata().GetName(), "") == c {
					inUse = true
				}
			}
			if !inUse {
				_ = w.k.rt.RemovePodSandbox(ctx, sb.Id)
			}
		}
	}
}

// pending reports whether a pod is still coming up: not every container
// is running or settled in a waiting reason that has its own timer.
func pending(st corev1.PodStatus) bool {
	if st.Phase == corev1.PodPending && len(st.InitContainerStatuses) > 0 {
		return true
	}
	for _, c := range st.ContainerStatuses {
		if c.State.Running != nil || c.State.Terminated != nil {
			continue
		}
		if c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff" {
			continue
		}
		return true
	}
	return false
}

func positive(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func attemptOf(c *runtimeapi.ContainerStatus) int32 {
	if c == nil {
		return 0
	}
	return int32(c.GetMetadata().GetAttempt())
}

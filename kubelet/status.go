package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// status computes the pod's status from what the runtime reports, the
// worker's waiting reasons and the probes' verdicts.
func (w *podWorker) status(pod *corev1.Pod, state *podState) corev1.PodStatus {
	in := statusInput{
		pod:     pod,
		state:   state,
		waiting: w.waiting,
		nodeIP:  w.k.nodeIP,
		now:     w.k.clock.Now(),
		probe: func(name string, typ ProbeType, id string) (ProbeResult, bool) {
			r, _, ok := w.k.probes.Result(probeKey{w.uid, name, typ, id})
			return r, ok
		},
		sandboxErr: w.sandboxErr,
	}
	if t, ok := w.k.firstSeen.Load(pod.UID); ok {
		in.firstSeen = t.(time.Time)
	}
	return computePodStatus(in)
}

// statusInput is everything computePodStatus looks at; it does no I/O.
type statusInput struct {
	pod        *corev1.Pod
	state      *podState
	waiting    map[string]*corev1.ContainerStateWaiting
	nodeIP     string
	now        time.Time
	firstSeen  time.Time
	probe      func(container string, typ ProbeType, containerID string) (ProbeResult, bool)
	sandboxErr string
}

func criTime(ns int64) metav1.Time {
	if ns == 0 {
		return metav1.Time{}
	}
	return metav1.NewTime(time.Unix(0, ns).Truncate(time.Second))
}

// terminatedState describes an exited container. Reasons follow
// Kubernetes: OOMKilled when the runtime says so, Completed for exit 0,
// Error otherwise.
func terminatedState(c *runtimeapi.ContainerStatus) *corev1.ContainerStateTerminated {
	reason := c.Reason
	switch {
	case reason == "OOMKilled":
	case c.ExitCode == 0:
		reason = "Completed"
	default:
		reason = "Error"
	}
	msg := c.Message
	if p := c.Annotations[annotationTermMsgPath]; p != "" {
		if data, err := os.ReadFile(p); err == nil && len(data) > 0 {
			if len(data) > 4096 {
				data = data[:4096]
			}
			msg = string(data)
		}
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:    c.ExitCode,
		Reason:      reason,
		Message:     msg,
		StartedAt:   criTime(c.StartedAt),
		FinishedAt:  criTime(c.FinishedAt),
		ContainerID: "containerd://" + c.Id,
	}
}

func containerIDString(c *runtimeapi.ContainerStatus) string {
	if c == nil {
		return ""
	}
	return "containerd://" + c.Id
}

// containerStatus builds one container's status. initContainer changes
// what "waiting with nothing to show" means.
func containerStatus(in statusInput, spec *corev1.Container, sbID string, defaultWaiting string) corev1.ContainerStatus {
	st := in.state
	cur := st.latest(spec.Name, sbID)
	if cur == nil {
		cur = st.latest(spec.Name, "")
	}
	cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image}
	if cur == nil {
		w := &corev1.ContainerStateWaiting{Reason: defaultWaiting}
		if wr := in.waiting[spec.Name]; wr != nil {
			w = wr.DeepCopy()
		}
		cs.State.Waiting = w
		f := false
		cs.Started = &f
		return cs
	}
	cs.RestartCount = attemptOf(cur)
	cs.ImageID = cur.ImageRef
	cs.ContainerID = containerIDString(cur)
	if prev := st.previous(cur); prev != nil && prev.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		cs.LastTerminationState.Terminated = terminatedState(prev)
	}
	started := false
	switch cur.State {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: criTime(cur.StartedAt)}
		started = true
		if spec.StartupProbe != nil {
			r, _ := in.probe(spec.Name, Startup, cur.Id)
			started = r == ProbeSuccess
		}
		cs.Ready = started
		if started && spec.ReadinessProbe != nil {
			r, _ := in.probe(spec.Name, Readiness, cur.Id)
			cs.Ready = r == ProbeSuccess
		}
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		term := terminatedState(cur)
		if wr := in.waiting[spec.Name]; wr != nil && (wr.Reason == "CrashLoopBackOff" || wr.Reason == "CreateContainerConfigError" ||
			wr.Reason == "ErrImagePull" || wr.Reason == "ImagePullBackOff" || wr.Reason == "RunContainerError" || wr.Reason == "CreateContainerError") {
			// It will be restarted: waiting now, the exit is the last state.
			cs.State.Waiting = wr.DeepCopy()
			cs.LastTerminationState = corev1.ContainerState{Terminated: term}
		} else {
			cs.State.Terminated = term
		}
	default:
		w := &corev1.ContainerStateWaiting{Reason: defaultWaiting}
		if wr := in.waiting[spec.Name]; wr != nil {
			w = wr.DeepCopy()
		}
		cs.State.Waiting = w
	}
	cs.Started = &started
	return cs
}

// computePodStatus derives a pod's status (phase, conditions, IPs,
// container statuses) in the way Kubernetes does.
func computePodStatus(in statusInput) corev1.PodStatus {
	pod, st := in.pod, in.state
	old := pod.Status
	out := corev1.PodStatus{
		HostIP:   in.nodeIP,
		QOSClass: qosClass(pod),
		// Keep what others (the scheduler) said.
		NominatedNodeName: old.NominatedNodeName,
	}
	if in.nodeIP != "" {
		out.HostIPs = []corev1.HostIP{{IP: in.nodeIP}}
	}
	out.StartTime = old.StartTime
	if out.StartTime == nil {
		t := in.firstSeen
		if t.IsZero() {
			t = in.now
		}
		mt := metav1.NewTime(t.Truncate(time.Second))
		out.StartTime = &mt
	}
	sbID := ""
	if sb := st.current(); sb != nil {
		sbID = sb.Id
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			ip := st.sandboxIP
			if pod.Spec.HostNetwork {
				ip = in.nodeIP
			}
			if ip != "" {
				out.PodIP = ip
				out.PodIPs = []corev1.PodIP{{IP: ip}}
			}
		}
	}

	// Init containers.
	initDone, initFailed := true, false
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := containerStatus(in, c, sbID, "PodInitializing")
		out.InitContainerStatuses = append(out.InitContainerStatuses, cs)
		switch {
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			cs.Ready = true
			out.InitContainerStatuses[i].Ready = true
		case cs.State.Terminated != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			initDone, initFailed = false, true
		default:
			initDone = false
		}
	}

	// As in Kubernetes, containers not yet created wait in
	// ContainerCreating, or PodInitializing in a pod with init containers
	// (also once those are done, until the containers start): kubectl
	// shows that reason as the pod's STATUS.
	waitingDefault := "ContainerCreating"
	if len(pod.Spec.InitContainers) > 0 {
		waitingDefault = "PodInitializing"
	}
	var running, waiting, succeeded, failed, stopped int
	allReady := len(pod.Spec.Containers) > 0
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := containerStatus(in, c, sbID, waitingDefault)
		out.ContainerStatuses = append(out.ContainerStatuses, cs)
		if !cs.Ready {
			allReady = false
		}
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			// Restarting (crash loop): it has run before.
			stopped++
			if cs.LastTerminationState.Terminated.ExitCode != 0 {
				failed++
			} else {
				succeeded++
			}
		default:
			waiting++
		}
	}

	switch {
	case initFailed:
		out.Phase = corev1.PodFailed
	case !initDone:
		out.Phase = corev1.PodPending
	case waiting > 0:
		out.Phase = corev1.PodPending
	case running > 0:
		out.Phase = corev1.PodRunning
	case stopped > 0:
		switch {
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || pod.Spec.RestartPolicy == "":
			out.Phase = corev1.PodRunning
		case succeeded == stopped:
			out.Phase = corev1.PodSucceeded
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			out.Phase = corev1.PodFailed
		default: // OnFailure with failures: they restart
			out.Phase = corev1.PodRunning
		}
	default:
		out.Phase = corev1.PodPending
	}
	if old.Phase == corev1.PodSucceeded || old.Phase == corev1.PodFailed {
		out.Phase = old.Phase // terminal phases never change
	}
	if in.sandboxErr != "" && out.PodIP == "" {
		out.Message = in.sandboxErr
	}

	// Conditions. Ready pods of a terminal phase are not ready.
	ready := allReady && out.Phase == corev1.PodRunning
	cond := func(t corev1.PodConditionType, ok bool, reason string) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
			reason = ""
		}
		return corev1.PodCondition{Type: t, Status: s, Reason: reason}
	}
	notReadyReason := "ContainersNotReady"
	if out.Phase == corev1.PodSucceeded || out.Phase == corev1.PodFailed {
		notReadyReason = "PodCompleted"
	}
	initOK := initDone || out.Phase == corev1.PodSucceeded
	conds := []corev1.PodCondition{
		cond(corev1.PodInitialized, initOK, "ContainersNotInitialized"),
		cond(corev1.ContainersReady, ready, notReadyReason),
		cond(corev1.PodReady, ready, notReadyReason),
	}
	if !ready {
		var names []string
		for _, cs := range out.ContainerStatuses {
			if !cs.Ready {
				names = append(names, cs.Name)
			}
		}
		if len(names) > 0 && notReadyReason == "ContainersNotReady" {
			msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(names, " "))
			conds[1].Message, conds[2].Message = msg, msg
		}
	}
	// PodScheduled and anything else others own stay as they were.
	for _, c := range old.Conditions {
		switch c.Type {
		case corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady:
		default:
			out.Conditions = append(out.Conditions, c)
		}
	}
	hasScheduled := false
	for _, c := range out.Conditions {
		if c.Type == corev1.PodScheduled {
			hasScheduled = true
		}
	}
	if !hasScheduled {
		out.Conditions = append([]corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(in.now.Truncate(time.Second))}}, out.Conditions...)
	}
	for _, c := range conds {
		c.LastTransitionTime = metav1.NewTime(in.now.Truncate(time.Second))
		for _, o := range old.Conditions {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		out.Conditions = append(out.Conditions, c)
	}
	return out
}

// statusMergePatch is a JSON merge patch from the pod's current status to
// status (nulls remove what is gone), with the pod's uid as a test.
func statusMergePatch(pod *corev1.Pod, status corev1.PodStatus) ([]byte, error) {
	type doc struct {
		Metadata map[string]any   `json:"metadata"`
		Status   corev1.PodStatus `json:"status"`
	}
	meta := map[string]any{"uid": pod.UID}
	before, err := json.Marshal(doc{Metadata: meta, Status: pod.Status})
	if err != nil {
		return nil, err
	}
	after, err := json.Marshal(doc{Metadata: meta, Status: status})
	if err != nil {
		return nil, err
	}
	patch, err := jsonpatch.CreateMergePatch(before, after)
	if err != nil {
		return nil, err
	}
	// Keep the uid in the patch: a pod recreated under the same name
	// rejects it instead of getting our status.
	var m map[string]any
	if err := json.Unmarshal(patch, &m); err != nil {
		return nil, err
	}
	m["metadata"] = meta
	return json.Marshal(m)
}

// writeStatus writes status through pods/{name}/status when it differs
// from what the API has. It returns the pod as the API has it now: the
// written one, pod itself when nothing needed writing, nil when the pod is
// gone.
func (k *Kubelet) writeStatus(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus) (*corev1.Pod, error) {
	if equality.Semantic.DeepEqual(pod.Status, status) {
		return pod, nil
	}
	p := pod.DeepCopy()
	p.Status = status
	pods := k.client.Pods.Namespace(pod.Namespace)
	out, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		// Our cached copy is behind (often our own last write). The status
		// is ours, so patch the difference instead of racing on
		// resourceVersion; the uid precondition keeps it on this pod.
		patch, perr := statusMergePatch(pod, status)
		if perr != nil {
			return nil, fmt.Errorf("pod %s/%s: status: %w", pod.Namespace, pod.Name, perr)
		}
		out, err = pods.Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: status: %w", pod.Namespace, pod.Name, err)
	}
	return out, nil
}

package registry

import (
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// Pods is core/v1 pods, with the status and binding subresources.
func Pods() *Resource {
	return &Resource{
		Version: "v1", Resource: "pods", Singular: "pod", Kind: "Pod", ListKind: "PodList",
		ShortNames: []string{"po"}, Namespaced: true, Categories: []string{"all"},
		New:       func() runtime.Object { return &corev1.Pod{} },
		NewList:   func() runtime.Object { return &corev1.PodList{} },
		HasStatus: true,
		Strategy:  podStrategy{},
		Binder:    &Binder{New: func() runtime.Object { return &corev1.Binding{} }, Apply: bindPod},
		Fields: func(obj runtime.Object) fields.Set {
			p := obj.(*corev1.Pod)
			return fields.Set{
				"spec.nodeName": p.Spec.NodeName, "spec.restartPolicy": string(p.Spec.RestartPolicy),
				"spec.schedulerName": p.Spec.SchedulerName, "spec.serviceAccountName": p.Spec.ServiceAccountName,
				"spec.hostNetwork": fmt.Sprint(p.Spec.HostNetwork),
				"status.phase":     string(p.Status.Phase), "status.podIP": p.Status.PodIP,
				"status.nominatedNodeName": p.Status.NominatedNodeName,
			}
		},
		Columns: []metav1.TableColumnDefinition{nameCol,
			col("Ready", "string", "The number of containers that are ready."),
			col("Status", "string", "The aggregate state of the containers in this pod."),
			col("Restarts", "string", "The number of times the containers in this pod have been restarted."),
			ageCol,
			wide(col("IP", "string", "IP address allocated to the pod.")),
			wide(col("Node", "string", "Name of the node the pod is assigned to.")),
			wide(col("Nominated Node", "string", "Node the pod is nominated to run on.")),
			wide(col("Readiness Gates", "string", "Pod readiness gates.")),
		},
		Row: func(obj runtime.Object) []any {
			p := obj.(*corev1.Pod)
			ready, restarts := 0, int32(0)
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Ready {
					ready++
				}
				restarts += cs.RestartCount
			}
			return []any{p.Name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), PodStatusReason(p),
				fmt.Sprint(restarts), Age(p.CreationTimestamp), orNone(p.Status.PodIP), orNone(p.Spec.NodeName),
				orNone(p.Status.NominatedNodeName), "<none>"}
		},
	}
}

// PodStatusReason is the one-word state kubectl shows in the STATUS column:
// the most telling container reason, else the phase.
func PodStatusReason(p *corev1.Pod) string {
	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	for i, cs := range p.Status.InitContainerStatuses {
		switch {
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			continue
		case cs.State.Terminated != nil:
			reason = "Init:" + orElse(cs.State.Terminated.Reason, fmt.Sprintf("ExitCode:%d", cs.State.Terminated.ExitCode))
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + cs.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
		}
		return decorateTerminating(p, reason)
	}
	running := false
	for i := len(p.Status.ContainerStatuses) - 1; i >= 0; i-- {
		cs := p.Status.ContainerStatuses[i]
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			reason = cs.State.Waiting.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
			reason = cs.State.Terminated.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.Signal != 0:
			reason = fmt.Sprintf("Signal:%d", cs.State.Terminated.Signal)
		case cs.State.Terminated != nil:
			reason = fmt.Sprintf("ExitCode:%d", cs.State.Terminated.ExitCode)
		case cs.Ready && cs.State.Running != nil:
			running = true
		}
	}
	// A finished container next to a running one: the pod is Running,
	// or NotReady while its Ready condition is not true.
	if running && reason == "Completed" {
		reason = "Running"
		if !podReady(p) {
			reason = "NotReady"
		}
	}
	return decorateTerminating(p, reason)
}

// decorateTerminating: a pod being deleted shows Terminating while it
// still runs; a finished one keeps its Completed/Error, and one the node
// lifecycle controller gave up on (reason NodeLost) shows Unknown.
func decorateTerminating(p *corev1.Pod, reason string) string {
	switch {
	case p.DeletionTimestamp == nil:
		return reason
	case p.Status.Reason == "NodeLost":
		return "Unknown"
	case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		return reason
	}
	return "Terminating"
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

type podStrategy struct{ baseStrategy }

// PrepareForCreate starts every pod Pending; only the kubelet moves it on.
func (podStrategy) PrepareForCreate(obj runtime.Object) {
	p := obj.(*corev1.Pod)
	p.Status = corev1.PodStatus{Phase: corev1.PodPending}
}

// GracePeriod: a pod that never reached a node, or already finished, has
// nothing to stop and goes at once; otherwise the kubelet gets the grace
// period to stop its containers.
func (podStrategy) GracePeriod(obj runtime.Object, requested *int64) int64 {
	p := obj.(*corev1.Pod)
	if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return 0
	}
	if requested != nil {
		return *requested
	}
	if p.Spec.TerminationGracePeriodSeconds != nil {
		return *p.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

func (podStrategy) BeginDelete(runtime.Object) {}
func (podStrategy) Held(runtime.Object) bool   { return false }

// bindPod sets spec.nodeName from a Binding, once.
func bindPod(obj, b runtime.Object, now metav1.Time) error {
	p, binding := obj.(*corev1.Pod), b.(*corev1.Binding)
	gr := corev1.Resource("pods")
	if binding.Target.Name == "" {
		return apierrors.NewBadRequest("target.name: Required value: the node to bind to")
	}
	if k := binding.Target.Kind; k != "" && !strings.EqualFold(k, "Node") {
		return apierrors.NewBadRequest(fmt.Sprintf("target.kind: Unsupported value: %q: only Node", k))
	}
	if p.DeletionTimestamp != nil {
		return apierrors.NewConflict(gr, p.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", p.Name))
	}
	if p.Spec.NodeName != "" {
		return apierrors.NewConflict(gr, p.Name, fmt.Errorf("pod %s is already assigned to node %q", p.Name, p.Spec.NodeName))
	}
	if binding.UID != "" && binding.UID != p.UID {
		return apierrors.NewConflict(gr, p.Name, fmt.Errorf("binding uid %s does not match pod uid %s", binding.UID, p.UID))
	}
	p.Spec.NodeName = binding.Target.Name
	p.Status.SetCondition(corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now})
	return nil
}

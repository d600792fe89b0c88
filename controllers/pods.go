package controllers

import (
	"errors"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
)

// PodsByNodeIndex is the name of the pod informer index by spec.nodeName
// that IndexPodsByNode adds.
const PodsByNodeIndex = "spec.nodeName"

// IndexPodsByNode adds PodsByNodeIndex to a pod informer. The controllers
// that need a node's pods (nodelifecycle, podgc) share one informer, so
// the first adds the index and the others use it: the index is kept once,
// not once per controller.
func IndexPodsByNode(pods *informer.Informer) error {
	err := pods.AddIndexers(informer.Indexers{PodsByNodeIndex: func(obj runtime.Object) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}})
	if errors.Is(err, informer.ErrIndexerExists) {
		return nil
	}
	return err
}

// IsPodActive reports whether a pod counts towards its owner's replicas: it
// has not finished and is not being deleted.
func IsPodActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

// PodCondition returns the pod's condition of type t, or nil.
func PodCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// NodeCondition returns the node's condition of type t, or nil.
func NodeCondition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// IsNodeReady reports whether the node's Ready condition is True; Unknown
// (a silent node) and a missing condition are not ready.
func IsNodeReady(n *corev1.Node) bool {
	c := NodeCondition(n, corev1.NodeReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

// IsPodReady reports whether the pod's Ready condition is True.
func IsPodReady(p *corev1.Pod) bool {
	c := PodCondition(p, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

// IsPodAvailable reports whether the pod has been ready for at least
// minReadySeconds at now.
func IsPodAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	return AvailableIn(p, minReadySeconds, now) == 0
}

// AvailableIn is how long until a ready pod becomes available: 0 if it is
// available now, -1 if it is not ready (so time alone will not help).
func AvailableIn(p *corev1.Pod, minReadySeconds int32, now time.Time) time.Duration {
	c := PodCondition(p, corev1.PodReady)
	if c == nil || c.Status != corev1.ConditionTrue {
		return -1
	}
	if minReadySeconds <= 0 || c.LastTransitionTime.IsZero() {
		return 0
	}
	at := c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second)
	if !now.Before(at) {
		return 0
	}
	return at.Sub(now)
}

// IsNamespaceTerminating reports whether a create was refused because its
// namespace is being deleted (the API server's admission answer).
func IsNamespaceTerminating(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "because it is being terminated")
}

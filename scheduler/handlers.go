package scheduler

import (
	"maps"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/scheduler/framework"
)

// The handlers keep the cache and the queue in step with the API server:
// bound pods go to the cache, pending pods of this scheduler to the queue,
// and changes that can make parked pods fit move them back.

func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func (s *Scheduler) responsibleFor(pod *corev1.Pod) bool {
	return pod.Spec.SchedulerName == s.name
}

// pending reports whether pod is ours to schedule.
func (s *Scheduler) pending(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && s.responsibleFor(pod) && !terminal(pod) && pod.DeletionTimestamp == nil
}

func (s *Scheduler) podHandler() informer.Handler {
	return informer.Handler{
		AddFunc: func(obj runtime.Object) {
			pod, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			switch {
			case pod.Spec.NodeName != "":
				if !terminal(pod) {
					s.cache.AddPod(pod)
				}
			case s.pending(pod):
				s.queue.Add(pod)
			}
		},
		UpdateFunc: func(oldObj, newObj runtime.Object) {
			old, ok1 := oldObj.(*corev1.Pod)
			pod, ok2 := newObj.(*corev1.Pod)
			if !ok1 || !ok2 {
				return
			}
			s.podUpdated(old, pod)
		},
		DeleteFunc: func(obj any) {
			pod, ok := informer.ObjectOf[*corev1.Pod](obj)
			if !ok {
				return
			}
			s.records.delete(pod.UID)
			if pod.Spec.NodeName != "" {
				s.cache.RemovePod(pod)
				s.queue.MoveAllToActiveOrBackoffQueue(framework.AssignedPodDelete)
				return
			}
			s.queue.Delete(pod)
		},
	}
}

func (s *Scheduler) podUpdated(old, pod *corev1.Pod) {
	if pod.Spec.NodeName == "" {
		if s.pending(pod) {
			s.queue.Update(pod)
		} else {
			s.queue.Delete(pod)
			s.records.delete(pod.UID)
		}
		return
	}
	if old.Spec.NodeName == "" {
		// Bound (by us or anyone): leave the queue, join the cache
		// (confirming our assumption).
		s.queue.Delete(old)
		s.records.delete(pod.UID)
		if !terminal(pod) {
			s.cache.AddPod(pod)
		}
		return
	}
	switch {
	case terminal(pod):
		if !terminal(old) {
			// A finished pod no longer holds its node's resources.
			s.cache.RemovePod(pod)
			s.queue.MoveAllToActiveOrBackoffQueue(framework.AssignedPodDelete)
		}
	default:
		s.cache.UpdatePod(old, pod)
		if !maps.Equal(old.Labels, pod.Labels) {
			s.queue.MoveAllToActiveOrBackoffQueue(framework.AssignedPodLabelChange)
		}
	}
}

func (s *Scheduler) nodeHandler() informer.Handler {
	return informer.Handler{
		AddFunc: func(obj runtime.Object) {
			node, ok := obj.(*corev1.Node)
			if !ok {
				return
			}
			s.cache.AddNode(node)
			s.queue.MoveAllToActiveOrBackoffQueue(framework.NodeAdd)
		},
		UpdateFunc: func(oldObj, newObj runtime.Object) {
			old, ok1 := oldObj.(*corev1.Node)
			node, ok2 := newObj.(*corev1.Node)
			if !ok1 || !ok2 {
				return
			}
			s.cache.UpdateNode(old, node)
			for _, ev := range nodeChanges(old, node) {
				s.queue.MoveAllToActiveOrBackoffQueue(ev)
			}
		},
		DeleteFunc: func(obj any) {
			node, ok := informer.ObjectOf[*corev1.Node](obj)
			if !ok {
				return
			}
			s.cache.RemoveNode(node)
		},
	}
}

// nodeChanges lists the scheduling-relevant changes between two versions
// of a node; heartbeats and condition updates yield none.
func nodeChanges(old, node *corev1.Node) []framework.ClusterEvent {
	var evs []framework.ClusterEvent
	if !maps.Equal(old.Labels, node.Labels) {
		evs = append(evs, framework.NodeLabelChange)
	}
	if !equality.Semantic.DeepEqual(old.Spec.Taints, node.Spec.Taints) {
		evs = append(evs, framework.NodeTaintChange)
	}
	if old.Spec.Unschedulable != node.Spec.Unschedulable {
		evs = append(evs, framework.NodeSpecUnschedulableChange)
	}
	if !equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) {
		evs = append(evs, framework.NodeAllocatableChange)
	}
	return evs
}

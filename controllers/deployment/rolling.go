package deployment

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/intstr"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
)

// Fenceposts resolves maxSurge (rounded up) and maxUnavailable (rounded
// down) against desired replicas. Both zero would block every rollout, so
// maxUnavailable is then 1, as in Kubernetes. Recreate Deployments have
// neither.
func Fenceposts(d *appsv1.Deployment) (surge, unavailable int32, err error) {
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType || ru == nil {
		return 0, 0, nil
	}
	desired := int(replicasOf(d))
	one := intstr.FromInt32(1)
	def := intstr.FromString("25%")
	ms, mu := ru.MaxSurge, ru.MaxUnavailable
	if ms == nil {
		ms = &def
	}
	if mu == nil {
		mu = &def
	}
	s, err := intstr.GetScaledValueFromIntOrPercent(ms, desired, true)
	if err != nil {
		return 0, 0, fmt.Errorf("maxSurge: %w", err)
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(mu, desired, false)
	if err != nil {
		return 0, 0, fmt.Errorf("maxUnavailable: %w", err)
	}
	if s == 0 && u == 0 {
		u, _ = intstr.GetScaledValueFromIntOrPercent(&one, desired, false)
	}
	return int32(s), int32(min(u, desired)), nil
}

// Replicas is what a rolling update needs to know about one ReplicaSet.
type Replicas struct {
	// Spec is spec.replicas.
	Spec int32
	// Pods is an upper bound on its pods that are not terminating: the
	// largest of Spec, the pods in the cache and status.replicas (pods
	// lag a lowered Spec until they are deleted).
	Pods int32
	// Available is how many of its pods are available, at most Spec (the
	// ReplicaSet deletes its unavailable pods first when it shrinks).
	Available int32
}

// NewReplicas is the new ReplicaSet's size for the next step of a rolling
// update: as large as the surge budget allows, never above desired.
func NewReplicas(desired, maxSurge int32, newRS Replicas, old []Replicas) int32 {
	if newRS.Spec >= desired {
		return desired
	}
	total := newRS.Pods
	for _, r := range old {
		total += r.Pods
	}
	room := desired + maxSurge - total
	if room <= 0 {
		return newRS.Spec
	}
	return newRS.Spec + min(room, desired-newRS.Spec)
}

// OldReplicas is the old ReplicaSets' sizes (old ordered oldest first)
// for the next step of a rolling update, in two moves as in Kubernetes:
//
//  1. Unavailable old replicas go first, as they cost no availability —
//     but only as far as the pods left still cover desired-maxUnavailable
//     plus the new ReplicaSet's unavailable ones, so a rollout to a broken
//     template does not sweep away old pods that are merely slow to start.
//  2. Available old replicas go, oldest ReplicaSet first, while the
//     available pods of all ReplicaSets stay at least
//     desired-maxUnavailable.
func OldReplicas(desired, maxUnavailable int32, newRS Replicas, old []Replicas) []int32 {
	minAvailable := desired - maxUnavailable
	out := make([]int32, len(old))
	total := newRS.Spec
	for i, r := range old {
		out[i] = r.Spec
		total += r.Spec
	}
	cleanup := total - minAvailable - (newRS.Spec - newRS.Available)
	for i, r := range old {
		if cleanup <= 0 {
			break
		}
		cut := min(cleanup, out[i]-min(out[i], r.Available))
		out[i] -= cut
		cleanup -= cut
	}
	available := newRS.Available
	for i, r := range old {
		available += min(out[i], r.Available)
	}
	budget := available - minAvailable
	for i := range out {
		if budget <= 0 {
			break
		}
		cut := min(budget, out[i])
		out[i] -= cut
		budget -= cut
	}
	return out
}

// Proportional spreads delta replicas over ReplicaSets of the given sizes
// in proportion to their sizes (rounding toward zero), then gives what
// rounding left over one at a time starting with the entry at order[0].
// Sizes never go below zero.
func Proportional(sizes []int32, delta int32, order []int) []int32 {
	out := append([]int32(nil), sizes...)
	var total int64
	for _, s := range sizes {
		total += int64(s)
	}
	if total == 0 || delta == 0 {
		if len(order) > 0 {
			out[order[0]] = max(0, out[order[0]]+delta)
		}
		return out
	}
	left := delta
	for i, s := range sizes {
		share := int32(int64(delta) * int64(s) / total)
		if out[i]+share < 0 {
			share = -out[i]
		}
		out[i] += share
		left -= share
	}
	for left != 0 {
		moved := false
		for _, i := range order {
			if left == 0 {
				break
			}
			if left > 0 {
				out[i]++
				left--
				moved = true
			} else if out[i] > 0 {
				out[i]--
				left++
				moved = true
			}
		}
		if !moved {
			break
		}
	}
	return out
}

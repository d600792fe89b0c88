package plugins

import (
	"context"
	"math"
	"slices"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/scheduler/framework"
)

// NodeResourcesFit rejects nodes whose allocatable resources, minus what
// the pods already there request, cannot hold the pod's requests, or that
// already run as many pods as status.allocatable.pods allows. As a Score
// plugin it prefers the least allocated nodes (by cpu and memory, with
// Kubernetes' defaults for containers that request nothing).
type NodeResourcesFit struct{}

var (
	_ framework.FilterPlugin = NodeResourcesFit{}
	_ framework.ScorePlugin  = NodeResourcesFit{}

	errTooManyPods      = framework.NewStatus(framework.Unschedulable, ReasonTooManyPods).WithPlugin(NodeResourcesFitName)
	errInsufficientCPU  = framework.NewStatus(framework.Unschedulable, ReasonInsufficientPrefix+string(corev1.ResourceCPU)).WithPlugin(NodeResourcesFitName)
	errInsufficientMem  = framework.NewStatus(framework.Unschedulable, ReasonInsufficientPrefix+string(corev1.ResourceMemory)).WithPlugin(NodeResourcesFitName)
	errInsufficientBoth = framework.NewStatus(framework.Unschedulable,
		ReasonInsufficientPrefix+string(corev1.ResourceCPU), ReasonInsufficientPrefix+string(corev1.ResourceMemory)).WithPlugin(NodeResourcesFitName)
)

// Name implements framework.Plugin.
func (NodeResourcesFit) Name() string { return NodeResourcesFitName }

// Filter implements framework.FilterPlugin.
func (NodeResourcesFit) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	var reasons []string
	if int64(len(ni.Pods))+1 > ni.Allocatable.AllowedPodNumber {
		reasons = append(reasons, ReasonTooManyPods)
	}
	req := &pod.Requests
	cpu := req.MilliCPU > 0 && req.MilliCPU > ni.Allocatable.MilliCPU-ni.Requested.MilliCPU
	mem := req.Memory > 0 && req.Memory > ni.Allocatable.Memory-ni.Requested.Memory
	eph := req.EphemeralStorage > 0 && req.EphemeralStorage > ni.Allocatable.EphemeralStorage-ni.Requested.EphemeralStorage
	if reasons == nil && !eph && len(req.Scalar) == 0 {
		// The common cases, without allocating.
		switch {
		case cpu && mem:
			return errInsufficientBoth
		case cpu:
			return errInsufficientCPU
		case mem:
			return errInsufficientMem
		default:
			return nil
		}
	}
	if cpu {
		reasons = append(reasons, ReasonInsufficientPrefix+string(corev1.ResourceCPU))
	}
	if mem {
		reasons = append(reasons, ReasonInsufficientPrefix+string(corev1.ResourceMemory))
	}
	if eph {
		reasons = append(reasons, ReasonInsufficientPrefix+string(corev1.ResourceEphemeralStorage))
	}
	if len(req.Scalar) > 0 {
		names := make([]corev1.ResourceName, 0, len(req.Scalar))
		for name := range req.Scalar {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			want := req.Scalar[name]
			if want > 0 && want > ni.Allocatable.Scalar[name]-ni.Requested.Scalar[name] {
				reasons = append(reasons, ReasonInsufficientPrefix+string(name))
			}
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	return framework.NewStatus(framework.Unschedulable, reasons...).WithPlugin(NodeResourcesFitName)
}

// Score is the least-allocated score: for cpu and memory (weight 1 each),
// the share of allocatable left free after placing the pod, times 100.
func (NodeResourcesFit) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	cpu := leastAllocated(ni.NonZeroRequested.MilliCPU+pod.NonZeroMilliCPU, ni.Allocatable.MilliCPU)
	mem := leastAllocated(ni.NonZeroRequested.Memory+pod.NonZeroMemory, ni.Allocatable.Memory)
	return (cpu + mem) / 2, nil
}

func leastAllocated(requested, allocatable int64) int64 {
	if allocatable <= 0 || requested > allocatable {
		return 0
	}
	return (allocatable - requested) * framework.MaxNodeScore / allocatable
}

// BalancedAllocation prefers nodes whose cpu and memory would be used in
// equal shares after placing the pod: score = (1 - standard deviation of
// the used fractions) × 100.
type BalancedAllocation struct{}

var _ framework.ScorePlugin = BalancedAllocation{}

// Name implements framework.Plugin.
func (BalancedAllocation) Name() string { return BalancedAllocationName }

// Score implements framework.ScorePlugin.
func (BalancedAllocation) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	var fr [2]float64
	n := 0
	if a := ni.Allocatable.MilliCPU; a > 0 {
		fr[n] = min(1, float64(ni.Requested.MilliCPU+pod.Requests.MilliCPU)/float64(a))
		n++
	}
	if a := ni.Allocatable.Memory; a > 0 {
		fr[n] = min(1, float64(ni.Requested.Memory+pod.Requests.Memory)/float64(a))
		n++
	}
	if n < 2 {
		// One resource (or none) is always balanced.
		return framework.MaxNodeScore, nil
	}
	// For two values the standard deviation is half their distance.
	std := math.Abs(fr[0]-fr[1]) / 2
	return int64((1 - std) * float64(framework.MaxNodeScore)), nil
}

package nodelifecycle

import (
	"math"
	"time"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// Tolerates reports whether tol tolerates taint.
func Tolerates(tol corev1.Toleration, taint corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != taint.Effect {
		return false
	}
	switch tol.Operator {
	case corev1.TolerationOpExists:
		return tol.Key == "" || tol.Key == taint.Key
	case corev1.TolerationOpEqual, "":
		return tol.Key != "" && tol.Key == taint.Key && tol.Value == taint.Value
	}
	return false
}

// Never is the eviction time of a pod that tolerates its node's taints
// forever.
var Never = time.Unix(math.MaxInt64/2, 0)

// EvictionTime is when pod must leave a node with the given taints
// (NoExecute ones only count): the earliest, over the taints, of when
// each was added plus how long the pod tolerates it. A taint the pod does
// not tolerate means at once (the taint's time); defaults gives the
// tolerationSeconds assumed for taints (not-ready, unreachable) the pod has
// no toleration for. It returns Never if the pod may stay.
func EvictionTime(pod *corev1.Pod, taints []corev1.Taint, defaults map[string]int64, now time.Time) time.Time {
	at := Never
	for _, t := range taints {
		if t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		added := now
		if t.TimeAdded != nil {
			added = t.TimeAdded.Time
		}
		var secs *int64
		tolerated := false
		for _, tol := range pod.Spec.Tolerations {
			if !Tolerates(tol, t) {
				continue
			}
			tolerated = true
			if tol.TolerationSeconds == nil {
				continue // this one tolerates forever
			}
			if secs == nil || *tol.TolerationSeconds < *secs {
				s := *tol.TolerationSeconds
				secs = &s
			}
		}
		var deadline time.Time
		switch {
		case !tolerated:
			d, ok := defaults[t.Key]
			if !ok {
				return added // not tolerated at all: now
			}
			deadline = added.Add(time.Duration(d) * time.Second)
		case secs == nil:
			continue // tolerated forever
		default:
			deadline = added.Add(time.Duration(max(0, *secs)) * time.Second)
		}
		if deadline.Before(at) {
			at = deadline
		}
	}
	return at
}

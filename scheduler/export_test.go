package scheduler

import corev1 "github.com/minik8s/minik8s/api/core/v1"

// CachedNode returns the named node as the scheduler's cache has it, or
// nil: tests wait for a node to be there before creating pods that must
// see it, since nothing orders the pod and node watches.
func (s *Scheduler) CachedNode(name string) *corev1.Node { return s.cache.Node(name) }

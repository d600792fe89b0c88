// Package deployment owns the Deployment controller. A Deployment owns
// ReplicaSets, one per pod template it has had; the one whose template
// equals the Deployment's is the new ReplicaSet, the others are old. The
// controller moves replicas from old to new:
//
//   - RollingUpdate: the new ReplicaSet grows while the pods of all
//     ReplicaSets stay within replicas+maxSurge, and old ones shrink while
//     available pods stay at least replicas-maxUnavailable (maxSurge rounds
//     up, maxUnavailable down, as in Kubernetes);
//   - Recreate: old ReplicaSets go to zero, and the new one is created or
//     scaled up only when no old pod is left.
//
// ReplicaSets are named <deployment>-<pod-template-hash>, where the hash
// is of the pod template (plus status.collisionCount), and carry it as the
// pod-template-hash label in their selector and template. Each carries the
// deployment.kubernetes.io/revision annotation; rolling back (copying an
// old ReplicaSet's template into the Deployment, as `kubectl rollout undo`
// does) makes that ReplicaSet the new one again under a new revision. Old
// ReplicaSets at zero beyond revisionHistoryLimit are deleted. A paused
// Deployment only scales; a Deployment whose replicas change mid-rollout
// has the change spread over its ReplicaSets in proportion to their sizes.
// Status reports counts and the Available and Progressing conditions
// (including ProgressDeadlineExceeded).
//
// Counting is conservative: availability comes from the pods in the cache
// (never more than a ReplicaSet's spec), pod totals from the larger of a
// ReplicaSet's spec and its pods, and no decision is made while the cache
// has not yet caught up with the controller's own ReplicaSet writes. The
// controller never touches pods: the ReplicaSet controller does.
package deployment

// Package nodelifecycle owns the node lifecycle controller. Kubelets
// heartbeat by renewing a Lease named after their node in kube-node-lease
// (and by posting node status). A node silent for longer than the grace
// period (--node-monitor-grace-period, default 40s) is marked Ready=Unknown
// (with its other conditions), tainted node.kubernetes.io/unreachable with
// NoExecute and NoSchedule effects, and its pods are marked not ready; a
// node whose kubelet reports Ready=False gets the not-ready taints. When
// the node is healthy again the controller removes the taints it added.
//
// Pods on a node with NoExecute taints are evicted (deleted) once their
// tolerations run out: immediately for a taint they do not tolerate,
// after tolerationSeconds for one they do, never for an unlimited
// toleration. Pods without a toleration for the not-ready or unreachable
// taints are treated as tolerating them for a default time (300s,
// configurable), which is what Kubernetes' DefaultTolerationSeconds
// admission plugin arranges. Their owners (ReplicaSets) replace them. If
// no node at all is healthy, evictions pause: that looks like the control
// plane losing its network, not every node failing at once.
//
// It decides from heartbeat changes it observed on its own clock, so clock
// skew between nodes and the controller does not matter.
package nodelifecycle

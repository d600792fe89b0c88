// Package kubelet owns one node's agent: it registers the Node and keeps
// its status and Lease fresh, runs the pods bound to the node through a
// container runtime (kubelet/runtime: CRI on containerd, or the fake for
// hollow nodes) with one level-triggered worker per pod, runs probes,
// projects volumes (emptyDir, hostPath, configMap, secret), writes pod
// status through pods/{name}/status, and serves container logs, exec,
// attach and port-forward over HTTPS.
//
// It talks to the cluster only through the API server (client/...), and to
// containers only through runtime.Runtime. It must not touch etcd, other
// nodes' pods, or containers it did not label as its own.
package kubelet

// Package agent runs one node of a cluster in one process, like
// "k3s agent": the kubelet (with its own supervised containerd), the
// service proxy, and pod routes to the other nodes (podroutes). Each part
// is the same command that runs alone (kubelet.NewCommand,
// proxy.NewCommand), started with the flags the node needs, so a node
// behaves the same however it was started. `minik8s agent` joins a node to
// a server with a join token; `minik8s server` runs an agent for its own
// machine unless --disable-agent.
package agent

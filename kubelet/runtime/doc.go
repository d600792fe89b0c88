// Package runtime owns the kubelet's view of a container runtime: the
// Runtime interface (pod sandboxes, containers, images, exec, log paths),
// its implementation over CRI gRPC (CRI, for containerd), an in-memory
// Fake for unit tests and hollow nodes, and Containerd, which runs and
// supervises a private containerd with a generated config and CNI setup.
//
// It speaks the CRI's own types (k8s.io/cri-api runtime/v1) so that what
// the kubelet asks for is exactly what goes over the wire. It must not know
// about API objects (Pods, Nodes): turning a Pod into sandbox and container
// configs is the kubelet's job.
package runtime

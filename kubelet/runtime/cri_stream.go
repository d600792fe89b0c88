package runtime

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Attach and PortForward are not part of the Runtime interface: only a
// runtime with a streaming server (CRI) can offer them, and the fake
// runtime of hollow nodes cannot. The kubelet's server checks for them
// with a type assertion and answers 501 when they are missing.

// Attach asks the runtime to prepare an attach to a running container's
// stdio and returns the URL of its streaming server that serves it.
func (c *CRI) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (string, error) {
	r, err := c.rt.Attach(ctx, req)
	if err != nil {
		return "", wrap(err, fmt.Sprintf("attach to container %s", req.ContainerId))
	}
	return r.Url, nil
}

// PortForward asks the runtime to prepare port forwarding into a pod
// sandbox's network namespace and returns the URL of its streaming server
// that serves it.
func (c *CRI) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (string, error) {
	r, err := c.rt.PortForward(ctx, req)
	if err != nil {
		return "", wrap(err, fmt.Sprintf("port-forward %v to sandbox %s", req.Port, req.PodSandboxId))
	}
	return r.Url, nil
}

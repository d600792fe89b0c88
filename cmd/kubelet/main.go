// Command kubelet runs minik8s's node agent: it registers this machine as
// a Node and runs the pods bound to it on containerd through CRI (its own
// supervised containerd, or an existing one), or, with --hollow N, runs N
// hollow nodes on the fake runtime in one process for scale tests.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/minik8s/minik8s/kubelet"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := kubelet.NewCommand("kubelet").ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

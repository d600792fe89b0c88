// Command proxy is the minik8s service proxy: one per node, it programs
// iptables so Services' cluster IPs and node ports reach ready pods. All
// logic lives in package proxy; this is only the process entry point.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/minik8s/minik8s/proxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := proxy.NewCommand("proxy").ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

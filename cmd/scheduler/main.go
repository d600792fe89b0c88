// Command scheduler is the minik8s scheduler: it binds pending pods to
// nodes. All logic lives in package scheduler; this is only the process
// entry point. SIGINT/SIGTERM stop it gracefully (in-flight bindings
// finish or are abandoned, the Lease is released).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/minik8s/minik8s/scheduler"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := scheduler.NewCommand("scheduler").ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

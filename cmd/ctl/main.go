// Command ctl is the minik8s command-line client, a kubectl look-alike:
// `ctl get pods`, `ctl apply -f app.yaml`, `ctl describe deploy web`.
// Everything lives in package ctl; this is only the process entry point.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/minik8s/minik8s/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Main(ctx, os.Args[1:], ctl.DefaultStreams())
	stop()
	os.Exit(code)
}

// Command controller-manager runs minik8s' controllers — Deployment,
// ReplicaSet, Endpoints, Namespace, garbage collector and node lifecycle —
// against an API server, with leader election so several replicas can run.
package main

import (
	"os"

	"github.com/minik8s/minik8s/controllers/manager"
)

func main() {
	if err := manager.NewCommand("controller-manager").Execute(); err != nil {
		os.Exit(1)
	}
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/minik8s/minik8s/agent/podroutes"
	krt "github.com/minik8s/minik8s/kubelet/runtime"
	"github.com/minik8s/minik8s/proxy"
)

// Cleanup undoes what a node left on this machine after it stopped. A
// stopped kubelet leaves its pods running (as Kubernetes does, so a
// restart adopts them); Cleanup is for taking the node away for good:
// it starts the node's containerd once more to stop and remove every pod
// sandbox (which also frees their CNI addresses and iptables chains),
// stops it, unmounts what is left under the data directory, deletes the
// bridge, removes the proxy's KUBE-* rules and the pod routes, and the
// node's empty pod cgroups. The data directory itself stays.
func Cleanup(ctx context.Context, o Options, log *slog.Logger) error {
	var errs []error
	ctdDir := filepath.Join(o.DataDir, "kubelet", "containerd")
	if _, err := os.Stat(filepath.Join(ctdDir, "config.toml")); err == nil {
		ctd, err := krt.StartContainerd(ctx, krt.ContainerdOptions{Dir: ctdDir, Log: log})
		if err != nil {
			errs = append(errs, fmt.Errorf("start containerd to remove pods: %w", err))
		} else {
			tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			errs = append(errs, ctd.Teardown(tctx))
			cancel()
		}
	}
	errs = append(errs, krt.UnmountUnder(o.DataDir))
	if !o.DisableProxy {
		errs = append(errs, proxy.Cleanup(ctx, "", log))
	}
	errs = append(errs, podroutes.Sync(podroutes.IPRoute{}, nil))
	if busy := removeCgroups(filepath.Join("/minik8s", o.NodeName)); len(busy) > 0 {
		// Still holding processes: another node of the same name on this
		// machine, or pods that outlived their runtime. Not ours to kill.
		log.Warn("cgroups still in use were left", "cgroups", busy)
	}
	err := errors.Join(errs...)
	if err == nil {
		log.Info("node cleaned up", "dataDir", o.DataDir)
	}
	return err
}

// removeCgroups removes the (empty) cgroup directories below rel in every
// hierarchy, deepest first, and returns those the kernel refused because
// processes are still in them.
func removeCgroups(rel string) (busy []string) {
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	hier = append(hier, "/sys/fs/cgroup")
	for _, h := range hier {
		root := filepath.Join(h, rel)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				busy = append(busy, d)
			}
		}
	}
	return busy
}

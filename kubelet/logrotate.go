package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	krt "github.com/minik8s/minik8s/kubelet/runtime"
)

// Container log rotation. containerd 1.6 writes a container's output to
// its LogPath and never rotates it, so the kubelet does, as Kubernetes'
// container log manager does: when a running container's log passes
// ContainerLogMaxSize, it is renamed to <LogPath>.<UTC time> and the
// runtime is asked to reopen LogPath (CRI ReopenContainerLog), which it
// creates empty. Lines written between the rename and the reopen land in
// the renamed file, so nothing is lost. At most ContainerLogMaxFiles files
// are kept per container, the current one included; older rotated files
// are deleted (Kubernetes also gzips them; this kubelet does not).

// rotatedSuffix is the layout of a rotated file's suffix; it sorts by time.
const rotatedSuffix = "20060102-150405.000000000"

// logRotationLoop checks the node's running containers' log sizes every
// ContainerLogMonitorInterval.
func (k *Kubelet) logRotationLoop(ctx context.Context) {
	if k.cfg.Hollow || k.cfg.ContainerLogMaxSize < 0 {
		return
	}
	every(ctx, k.cfg.ContainerLogMonitorInterval, time.Minute, false, k.rotateLogs)
}

// rotateLogs rotates every running container's log that is too big.
func (k *Kubelet) rotateLogs(ctx context.Context) {
	cs, err := k.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{krt.LabelNode: k.cfg.NodeName},
	})
	if err != nil {
		if ctx.Err() == nil {
			k.log.Warn("log rotation: listing containers failed", "err", err)
		}
		return
	}
	for _, c := range cs {
		st, err := k.rt.ContainerStatus(ctx, c.Id)
		if err != nil || st.LogPath == "" || st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		if err := k.rotateContainerLog(ctx, c.Id, st.LogPath); err != nil {
			k.log.Warn("log rotation failed", "pod", c.Labels[krt.LabelPodNamespace]+"/"+c.Labels[krt.LabelPodName],
				"container", c.GetMetadata().GetName(), "err", err)
		}
	}
}

// rotateContainerLog rotates one running container's log file if it has
// reached the size limit, keeping at most ContainerLogMaxFiles files.
func (k *Kubelet) rotateContainerLog(ctx context.Context, id, path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		// Someone removed it: have the runtime start a new one, or the
		// container's output goes nowhere anyone can read.
		return k.rt.ReopenContainerLog(ctx, id)
	}
	if err != nil {
		return err
	}
	if fi.Size() < k.cfg.ContainerLogMaxSize {
		return nil
	}
	// Make room: the current file and the one about to be rotated count,
	// so keep the newest MaxFiles-2 of the already rotated ones.
	old, err := rotatedLogs(path)
	if err != nil {
		return err
	}
	if keep := k.cfg.ContainerLogMaxFiles - 2; len(old) > keep {
		for _, p := range old[:len(old)-keep] {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	rotated := path + "." + k.clock.Now().UTC().Format(rotatedSuffix)
	if err := os.Rename(path, rotated); err != nil {
		return err
	}
	if err := k.rt.ReopenContainerLog(ctx, id); err != nil {
		// The runtime still writes to the renamed file: give it back its
		// name, so `logs` keeps showing it.
		if rerr := os.Rename(rotated, path); rerr != nil {
			return errors.Join(err, rerr)
		}
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	k.log.Debug("rotated container log", "path", path, "size", fi.Size())
	return nil
}

// rotatedLogs lists the rotated files of the log at path, oldest first.
func rotatedLogs(path string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	prefix := filepath.Base(path) + "."
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		if _, err := time.Parse(rotatedSuffix, name[len(prefix):]); err != nil {
			continue
		}
		out = append(out, filepath.Join(filepath.Dir(path), name))
	}
	sort.Strings(out)
	return out, nil
}

// removeContainerLogs deletes a removed container's log and its rotated
// files.
func removeContainerLogs(path string) error {
	if path == "" {
		return nil
	}
	old, err := rotatedLogs(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var errs []error
	for _, p := range append(old, path) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

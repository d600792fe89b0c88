package kubelet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// Layout under the kubelet's root dir:
//
//	pods/<uid>/volumes/<name>/                 emptyDir, configMap, secret, downwardAPI, projected volumes
//	pods/<uid>/containers/<name>/<attempt>-termination-log
//	logs/<namespace>_<name>_<uid>/<container>/<attempt>.log   (written by the runtime)

func (k *Kubelet) podDir(uid string) string { return filepath.Join(k.cfg.RootDir, "pods", uid) }

func (k *Kubelet) podLogDir(pod *corev1.Pod) string {
	return k.podLogDirFor(pod.Namespace, pod.Name, string(pod.UID))
}

func (k *Kubelet) podLogDirFor(ns, name, uid string) string {
	return filepath.Join(k.cfg.RootDir, "logs", ns+"_"+name+"_"+uid)
}

func (k *Kubelet) volumeDir(pod *corev1.Pod, name string) string {
	return filepath.Join(k.podDir(string(pod.UID)), "volumes", name)
}

func (k *Kubelet) terminationLogPath(pod *corev1.Pod, container string, attempt uint32) string {
	if k.cfg.Hollow {
		return ""
	}
	return filepath.Join(k.podDir(string(pod.UID)), "containers", container, strconv.Itoa(int(attempt))+"-termination-log")
}

// setupVolumes makes every volume's directory and (re)projects ConfigMap,
// Secret, downward API and projected contents. It is level-triggered:
// called on every sync, it brings the files up to date when a source
// object or the pod's labels/annotations changed.
func (k *Kubelet) setupVolumes(pod *corev1.Pod) error {
	if k.cfg.Hollow {
		return nil
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		dir := k.volumeDir(pod, v.Name)
		switch {
		case v.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
			if v.EmptyDir.Medium == corev1.StorageMediumMemory {
				opts := ""
				if v.EmptyDir.SizeLimit != nil && !v.EmptyDir.SizeLimit.IsZero() {
					opts = "size=" + strconv.FormatInt(v.EmptyDir.SizeLimit.Value(), 10)
				}
				if err := mountTmpfs(dir, opts); err != nil {
					return fmt.Errorf("volume %q: %w", v.Name, err)
				}
			}
			_ = os.Chmod(dir, 0o777)
		case v.HostPath != nil:
			if err := prepareHostPath(v.HostPath); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		case v.ConfigMap != nil, v.Secret != nil, v.DownwardAPI != nil, v.Projected != nil:
			var files map[string]projectedFile
			var err error
			switch {
			case v.ConfigMap != nil:
				files, err = k.configMapFiles(pod, v.ConfigMap)
			case v.Secret != nil:
				files, err = k.secretFiles(pod, v.Secret)
			case v.DownwardAPI != nil:
				files, err = k.downwardAPIFiles(pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode, corev1.DownwardAPIVolumeSourceDefaultMode)
			default:
				files, err = k.projectedFiles(pod, v.Projected)
			}
			if err == nil {
				// Secrets (and projections, which may hold them) live in
				// memory only, as in Kubernetes.
				err = writeVolume(dir, files, v.Secret != nil || v.Projected != nil)
			}
			if err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		}
	}
	return nil
}

func prepareHostPath(h *corev1.HostPathVolumeSource) error {
	typ := corev1.HostPathUnset
	if h.Type != nil {
		typ = *h.Type
	}
	st, err := os.Stat(h.Path)
	switch typ {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if err != nil {
			return os.MkdirAll(h.Path, 0o755)
		}
	case corev1.HostPathFileOrCreate:
		if err != nil {
			if err := os.MkdirAll(filepath.Dir(h.Path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
	case corev1.HostPathDirectory:
		if err != nil || !st.IsDir() {
			return configErrorf("hostPath %s is not a directory", h.Path)
		}
	case corev1.HostPathFile:
		if err != nil || !st.Mode().IsRegular() {
			return configErrorf("hostPath %s is not a file", h.Path)
		}
	case corev1.HostPathSocket:
		if err != nil || st.Mode()&os.ModeSocket == 0 {
			return configErrorf("hostPath %s is not a socket", h.Path)
		}
	case corev1.HostPathCharDev, corev1.HostPathBlockDev:
		if err != nil || st.Mode()&os.ModeDevice == 0 {
			return configErrorf("hostPath %s is not a device", h.Path)
		}
	}
	return nil
}

type projectedFile struct {
	data []byte
	mode os.FileMode
}

func project(data map[string][]byte, items []corev1.KeyToPath, defMode *int32, fallback int32, what string) (map[string]projectedFile, error) {
	mode := fallback
	if defMode != nil {
		mode = *defMode
	}
	out := map[string]projectedFile{}
	if len(items) == 0 {
		for k, v := range data {
			out[k] = projectedFile{v, os.FileMode(mode)}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return nil, configErrorf("%s has no key %q", what, it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = *it.Mode
		}
		if strings.Contains(it.Path, "..") || filepath.IsAbs(it.Path) {
			return nil, configErrorf("%s item path %q must be relative without '..'", what, it.Path)
		}
		out[it.Path] = projectedFile{v, os.FileMode(m)}
	}
	return out, nil
}

func (k *Kubelet) configMapFiles(pod *corev1.Pod, src *corev1.ConfigMapVolumeSource) (map[string]projectedFile, error) {
	return k.configMapProjection(pod, src.Name, src.Items, src.Optional, src.DefaultMode, corev1.ConfigMapVolumeSourceDefaultMode)
}

func (k *Kubelet) configMapProjection(pod *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, defMode *int32, fallback int32) (map[string]projectedFile, error) {
	what := fmt.Sprintf("configmap %q", name)
	cm, err := k.configs.ConfigMap(pod.Namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) && isOptional(optional) {
			return map[string]projectedFile{}, nil
		}
		if apierrors.IsNotFound(err) {
			return nil, configErrorf("configmap %q not found", name)
		}
		return nil, err
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return project(data, items, defMode, fallback, what)
}

func (k *Kubelet) secretFiles(pod *corev1.Pod, src *corev1.SecretVolumeSource) (map[string]projectedFile, error) {
	return k.secretProjection(pod, src.SecretName, src.Items, src.Optional, src.DefaultMode, corev1.SecretVolumeSourceDefaultMode)
}

func (k *Kubelet) secretProjection(pod *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, defMode *int32, fallback int32) (map[string]projectedFile, error) {
	what := fmt.Sprintf("secret %q", name)
	s, err := k.configs.Secret(pod.Namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) && isOptional(optional) {
			return map[string]projectedFile{}, nil
		}
		if apierrors.IsNotFound(err) {
			return nil, configErrorf("secret %q not found", name)
		}
		return nil, err
	}
	return project(s.Data, items, defMode, fallback, what)
}

// downwardAPIFiles renders downward API items: metadata fields through the
// same fieldValue as env (labels and annotations as sorted key="value"
// lines), resources through resourceValue (an unset limit reads the node's
// allocatable amount).
func (k *Kubelet) downwardAPIFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defMode *int32, fallback int32) (map[string]projectedFile, error) {
	mode := fallback
	if defMode != nil {
		mode = *defMode
	}
	out := map[string]projectedFile{}
	for _, it := range items {
		if strings.HasPrefix(it.Path, "..") || strings.Contains(it.Path, "/../") || strings.HasSuffix(it.Path, "/..") || filepath.IsAbs(it.Path) {
			return nil, configErrorf("downwardAPI item path %q must be relative without '..'", it.Path)
		}
		m := mode
		if it.Mode != nil {
			m = *it.Mode
		}
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			if !strings.HasPrefix(it.FieldRef.FieldPath, "metadata.") {
				return nil, configErrorf("downwardAPI item %q: unsupported fieldPath %q", it.Path, it.FieldRef.FieldPath)
			}
			v, err = fieldValue(pod, it.FieldRef.FieldPath, "", "", "")
		case it.ResourceFieldRef != nil:
			c := podContainer(pod, it.ResourceFieldRef.ContainerName)
			if c == nil {
				return nil, configErrorf("downwardAPI item %q: container %q not found", it.Path, it.ResourceFieldRef.ContainerName)
			}
			v, err = resourceValue(pod, c, it.ResourceFieldRef, k.capacity())
		default:
			err = errors.New("neither fieldRef nor resourceFieldRef")
		}
		if err != nil {
			return nil, configErrorf("downwardAPI item %q: %v", it.Path, err)
		}
		out[it.Path] = projectedFile{[]byte(v), os.FileMode(m)}
	}
	return out, nil
}

// podContainer finds a container or init container by name.
func podContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// projectedFiles is the union of a projected volume's sources; a later
// source wins a path two of them project, as in Kubernetes.
func (k *Kubelet) projectedFiles(pod *corev1.Pod, src *corev1.ProjectedVolumeSource) (map[string]projectedFile, error) {
	out := map[string]projectedFile{}
	fallback := corev1.ProjectedVolumeSourceDefaultMode
	for i, s := range src.Sources {
		var files map[string]projectedFile
		var err error
		switch {
		case s.Secret != nil:
			files, err = k.secretProjection(pod, s.Secret.Name, s.Secret.Items, s.Secret.Optional, src.DefaultMode, fallback)
		case s.ConfigMap != nil:
			files, err = k.configMapProjection(pod, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, src.DefaultMode, fallback)
		case s.DownwardAPI != nil:
			files, err = k.downwardAPIFiles(pod, s.DownwardAPI.Items, src.DefaultMode, fallback)
		case s.ServiceAccountToken != nil:
			err = configErrorf("sources[%d]: serviceAccountToken projections are not supported", i)
		}
		if err != nil {
			return nil, err
		}
		for p, f := range files {
			out[p] = f
		}
	}
	return out, nil
}

// writeVolume writes a configMap/secret/downwardAPI/projected volume's
// files into dir, on a tmpfs mounted there first when inMemory.
func writeVolume(dir string, files map[string]projectedFile, inMemory bool) error {
	if inMemory {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := mountTmpfs(dir, ""); err != nil {
			return err
		}
	}
	return writeAtomic(dir, files)
}

// writeAtomic makes dir hold exactly files, switching all of them at once:
// the files live in a fresh hidden directory and "..data" is a symlink
// renamed over the old one, while each visible name is a symlink through
// ..data. A container sees the old set or the new set, never a mix. If
// nothing changed, nothing is written.
func writeAtomic(dir string, files map[string]projectedFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if same(dir, files) {
		return nil
	}
	ts := filepath.Join(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05.000000000"))
	if err := os.Mkdir(ts, 0o755); err != nil {
		return err
	}
	for p, f := range files {
		full := filepath.Join(ts, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return err
		}
		_ = os.Chmod(full, f.mode)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	// Visible names: top-level entries of the projection.
	want := map[string]bool{}
	for p := range files {
		want[strings.SplitN(p, "/", 2)[0]] = true
	}
	for name := range want {
		link := filepath.Join(dir, name)
		if cur, err := os.Readlink(link); err == nil && cur == filepath.Join("..data", name) {
			continue
		}
		_ = os.RemoveAll(link)
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return err
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "..") {
			if n != "..data" && n != filepath.Base(ts) {
				_ = os.RemoveAll(filepath.Join(dir, n))
			}
			continue
		}
		if !want[n] {
			_ = os.RemoveAll(filepath.Join(dir, n))
		}
	}
	_ = old
	return nil
}

// same reports whether dir's current projection equals files.
func same(dir string, files map[string]projectedFile) bool {
	cur := filepath.Join(dir, "..data")
	if _, err := os.Stat(cur); err != nil {
		return false
	}
	n := 0
	err := filepath.Walk(cur+"/", func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(cur, p)
		f, ok := files[rel]
		if !ok || info.Mode().Perm() != f.mode.Perm() {
			return errors.New("differs")
		}
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(data, f.data) {
			return errors.New("differs")
		}
		n++
		return nil
	})
	return err == nil && n == len(files)
}

// mountsFor maps a container's volumeMounts to CRI mounts.
func (k *Kubelet) mountsFor(pod *corev1.Pod, c *corev1.Container) ([]*runtimeapi.Mount, error) {
	vols := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	var mounts []*runtimeapi.Mount
	for _, m := range c.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok {
			return nil, configErrorf("volumeMount %q: no volume of that name", m.Name)
		}
		host := k.volumeDir(pod, v.Name)
		ro := m.ReadOnly
		if v.HostPath != nil {
			host = v.HostPath.Path
		}
		if v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil {
			ro = true
		}
		if m.SubPath != "" {
			if strings.Contains(m.SubPath, "..") || filepath.IsAbs(m.SubPath) {
				return nil, configErrorf("volumeMount %q: subPath %q must be relative without '..'", m.Name, m.SubPath)
			}
			host = filepath.Join(host, m.SubPath)
			if v.EmptyDir != nil {
				if err := os.MkdirAll(host, 0o777); err != nil {
					return nil, err
				}
			}
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: host, Readonly: ro})
	}
	sort.SliceStable(mounts, func(i, j int) bool { return len(mounts[i].ContainerPath) < len(mounts[j].ContainerPath) })
	return mounts, nil
}

// mountTmpfs mounts a tmpfs on dir unless one is there already.
func mountTmpfs(dir, opts string) error {
	if mountPoints(dir)[dir] {
		return nil
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// mountPoints returns the mount points at or below dir.
func mountPoints(dir string) map[string]bool {
	out := map[string]bool{}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out[f[4]] = true
		}
	}
	return out
}

// cleanupPodDirs unmounts a pod's tmpfs volumes and removes its volumes,
// termination logs and log files.
func (k *Kubelet) cleanupPodDirs(uid, logDir string) error {
	if k.cfg.Hollow {
		return nil
	}
	var errs []error
	points := mountPoints(k.podDir(uid))
	var list []string
	for p := range points {
		list = append(list, p)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(list)))
	for _, p := range list {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	if len(errs) > 0 {
		// Never RemoveAll through a mount we could not unmount.
		return errors.Join(errs...)
	}
	errs = append(errs, os.RemoveAll(k.podDir(uid)))
	if logDir != "" {
		errs = append(errs, os.RemoveAll(logDir))
	}
	return errors.Join(errs...)
}

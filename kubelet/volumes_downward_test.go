package kubelet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

// TestKubeletDownwardAPIAndProjectedVolumes runs a pod with a downwardAPI
// and a projected volume on the fake runtime against a real API server: the
// files are written through the atomic writer (..data symlink), and they
// follow label/annotation, ConfigMap and Secret changes.
func TestKubeletDownwardAPIAndProjectedVolumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := testClientset(t, s)
	k, _ := startFakeKubelet(t, cs, "node-dapi")
	t.Cleanup(func() { // never leave a tmpfs behind under t.TempDir
		for p := range mountPoints(k.cfg.RootDir) {
			_ = syscall.Unmount(p, syscall.MNT_DETACH)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := "default"
	if _, err := cs.ConfigMaps.Namespace(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app-cfg", Namespace: ns}, Data: map[string]string{"mode": "blue", "other": "x"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Secrets.Namespace(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "app-sec", Namespace: ns}, Data: map[string][]byte{"pw": []byte("hunter2")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := cs.Pods.Namespace(ns)
	created, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "dapi", Namespace: ns,
			Labels:      map[string]string{"tier": "web", "app": "shop"},
			Annotations: map[string]string{"note": `say "hi"`}},
		Spec: corev1.PodSpec{NodeName: "node-dapi",
			Volumes: []corev1.Volume{
				{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
					{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
					{Path: "meta/tier", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['tier']"}, Mode: ptrTo(int32(0400))},
					{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
					{Path: "mem_mi", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
					{Path: "cpu_req_m", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "requests.cpu", Divisor: resource.MustParse("1m")}},
				}}}},
				{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptrTo(int32(0440)), Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app-cfg"},
						Items: []corev1.KeyToPath{{Key: "mode", Path: "cfg/mode"}}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app-sec"}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptrTo(true)}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}, Mode: ptrTo(int32(0600))}}}},
				}}}},
			},
			Containers: []corev1.Container{{Name: "app", Image: "minik8s.local/busybox:1.35",
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "podinfo", MountPath: "/etc/podinfo"}, {Name: "all", MountPath: "/etc/all"}},
			}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	podinfo := k.volumeDir(created, "podinfo")
	all := k.volumeDir(created, "all")
	read := func(dir, name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	waitForFile := func(dir, name, want string) {
		t.Helper()
		waitFor(t, name+" = "+want, func() (bool, error) { return read(dir, name) == want, nil })
	}
	waitForFile(podinfo, "labels", "app=\"shop\"\ntier=\"web\"")
	for name, want := range map[string]string{
		"annotations": `note="say \"hi\""`, "meta/tier": "web", "name": "dapi", "mem_mi": "64", "cpu_req_m": "250",
	} {
		if got := read(podinfo, name); got != want {
			t.Errorf("podinfo/%s = %q, want %q", name, got, want)
		}
	}
	waitForFile(all, "cfg/mode", "blue")
	for name, want := range map[string]string{"pw": "hunter2", "ns": "default"} {
		if got := read(all, name); got != want {
			t.Errorf("all/%s = %q, want %q", name, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(all, "other")); !os.IsNotExist(err) {
		t.Errorf("all/other: a configMap projection with items projects only those (stat err %v)", err)
	}
	// Atomic writer layout and modes: defaultMode 0644 (defaulted), item
	// modes, the projected volume's defaultMode.
	if l, err := os.Readlink(filepath.Join(podinfo, "labels")); err != nil || l != "..data/labels" {
		t.Errorf("podinfo/labels link = %q, %v; want ..data/labels", l, err)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{filepath.Join(podinfo, "name"), 0o644}, {filepath.Join(podinfo, "meta/tier"), 0o400},
		{filepath.Join(all, "cfg/mode"), 0o440}, {filepath.Join(all, "pw"), 0o440}, {filepath.Join(all, "ns"), 0o600},
	} {
		if st, err := os.Stat(c.path); err != nil || st.Mode().Perm() != c.mode {
			t.Errorf("%s: mode %v (err %v), want %v", c.path, st.Mode().Perm(), err, c.mode)
		}
	}
	if !mountPoints(all)[all] {
		t.Errorf("projected volume %s is not a tmpfs mount", all)
	}

	// Label and annotation changes reach the files.
	p, err := pods.Get(ctx, "dapi", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Labels["tier"] = "db"
	p.Annotations["extra"] = "1"
	if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForFile(podinfo, "labels", "app=\"shop\"\ntier=\"db\"")
	waitForFile(podinfo, "meta/tier", "db")
	waitForFile(podinfo, "annotations", "extra=\"1\"\nnote=\"say \\\"hi\\\"\"")

	// ConfigMap and Secret changes reach the projected volume.
	cm, err := cs.ConfigMaps.Namespace(ns).Get(ctx, "app-cfg", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["mode"] = "green"
	if _, err := cs.ConfigMaps.Namespace(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForFile(all, "cfg/mode", "green")
	sec, err := cs.Secrets.Namespace(ns).Get(ctx, "app-sec", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec.Data["pw"] = []byte("s3cret")
	if _, err := cs.Secrets.Namespace(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForFile(all, "pw", "s3cret")

	// Deleting the pod unmounts the tmpfs and removes the volumes.
	if err := pods.Delete(ctx, "dapi", metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0))}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod dir removed", func() (bool, error) {
		_, err := os.Stat(k.podDir(string(created.UID)))
		return os.IsNotExist(err), nil
	})
}

func ptrTo[T any](v T) *T { return &v }

// Unit checks of the file sets: an unset limit reads the node's allocatable
// amount (as for env), a later projected source wins a shared path, a
// missing required source or an unsupported projection is a config error.
func TestDownwardAPIAndProjectedFiles(t *testing.T) {
	k := unitKubelet(t, runtime.NewFake(), mapConfigs{
		cms:     map[string]*corev1.ConfigMap{"c": {Data: map[string]string{"k": "from-cm"}}},
		secrets: map[string]*corev1.Secret{"s": {Data: map[string][]byte{"k": []byte("from-secret")}}},
	})
	k.cfg.CPUCapacity = "3"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Ki")}}}},
			Containers: []corev1.Container{{Name: "app"}},
		},
	}
	files, err := k.downwardAPIFiles(pod, []corev1.DownwardAPIVolumeFile{
		{Path: "cpu", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu"}},
		{Path: "init_mem", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "init", Resource: "requests.memory"}},
		{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
	}, nil, corev1.DownwardAPIVolumeSourceDefaultMode)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"cpu": "3", "init_mem": "1024", "labels": ""} {
		if f := files[name]; string(f.data) != want || f.mode != 0o644 {
			t.Errorf("%s = %q mode %v, want %q mode 0644", name, f.data, f.mode, want)
		}
	}
	for _, bad := range []corev1.DownwardAPIVolumeFile{
		{Path: "ip", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}},
		{Path: "x", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "nope", Resource: "limits.cpu"}},
		{Path: "../x", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
	} {
		var ce *ConfigError
		if _, err := k.downwardAPIFiles(pod, []corev1.DownwardAPIVolumeFile{bad}, nil, 0o644); !errors.As(err, &ce) {
			t.Errorf("%s: err %v, want a ConfigError", bad.Path, err)
		}
	}

	proj := &corev1.ProjectedVolumeSource{DefaultMode: ptrTo(int32(0o400)), Sources: []corev1.VolumeProjection{
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}},
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Optional: ptrTo(true)}},
	}}
	files, err = k.projectedFiles(pod, proj)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || string(files["k"].data) != "from-secret" || files["k"].mode != 0o400 {
		t.Errorf("projected files = %v, want k=from-secret mode 0400", files)
	}
	var ce *ConfigError
	proj.Sources[2].ConfigMap.Optional = nil
	if _, err := k.projectedFiles(pod, proj); !errors.As(err, &ce) || !strings.Contains(err.Error(), "gone") {
		t.Errorf("missing required configmap: err %v", err)
	}
	proj.Sources = []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}
	if _, err := k.projectedFiles(pod, proj); !errors.As(err, &ce) || !strings.Contains(err.Error(), "serviceAccountToken") {
		t.Errorf("serviceAccountToken: err %v", err)
	}
}

//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/minik8s/minik8s/hack/images/imagebuild"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

var (
	kubeletImagesOnce sync.Once
	kubeletImages     []string
	kubeletImagesErr  error
)

// needKubeletDeps skips unless we are root with containerd, runc, ctr, the
// CNI plugins and busybox-static installed (hack/install-deps).
func needKubeletDeps(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kubelet e2e tests need root")
	}
	for _, bin := range []string{"containerd", "runc", "ctr", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("kubelet e2e tests need %s (hack/install-deps)", bin)
		}
	}
	for _, f := range []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/bin/busybox"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("kubelet e2e tests need %s (hack/install-deps)", f)
		}
	}
}

// testImages builds the local images once per test binary.
func testImages(t testing.TB) []string {
	t.Helper()
	kubeletImagesOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "minik8s-e2e-images")
		kubeletImages, kubeletImagesErr = imagebuild.Build(dir, "/bin/busybox")
	})
	if kubeletImagesErr != nil {
		t.Fatalf("building images: %v", kubeletImagesErr)
	}
	return kubeletImages
}

// startContainerd runs a private containerd for one test node, with the
// local images imported, and tears it down (sandboxes, mounts, bridge)
// when the test ends. dir must be short: it holds the unix socket.
func startContainerd(t testing.TB, dir, podCIDR string) *runtime.Containerd {
	t.Helper()
	needKubeletDeps(t)
	imgs := testImages(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The supervisor lives until Teardown, not just until this setup ends.
	c, err := runtime.StartContainerd(context.WithoutCancel(ctx), runtime.ContainerdOptions{
		Dir:          dir,
		SandboxImage: imagebuild.PauseImage,
		PodCIDR:      podCIDR,
		ImportImages: imgs,
		NoMasquerade: os.Getenv("MINIK8S_E2E_NO_MASQ") != "",
		Log:          testLogger(t),
	})
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Teardown(ctx); err != nil {
			t.Errorf("containerd teardown: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	return c
}

// shortDir makes a short temp dir (unix socket paths are limited to 108
// bytes, and t.TempDir names are long).
func shortDir(t testing.TB, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after containerd's teardown.
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

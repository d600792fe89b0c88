//go:build e2e

package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/minik8s/minik8s/hack/images/imagebuild"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("MINIK8S_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name())
}

// TestKubeletRuntimeCRI drives a real containerd through the CRI client:
// a sandbox on the CNI bridge, the web:v1 image serving on its pod IP,
// exec, a log file in CRI format, stop and remove.
func TestKubeletRuntimeCRI(t *testing.T) {
	dir := shortDir(t, "mkrt")
	ctd := startContainerd(t, dir, "10.233.1.0/24")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cri, err := runtime.DialCRI(ctx, ctd.Socket())
	if err != nil {
		t.Fatal(err)
	}
	defer cri.Close()
	name, version, err := cri.Version(ctx)
	if err != nil || name != "containerd" {
		t.Fatalf("version %q %q %v", name, version, err)
	}
	img, err := cri.ImageStatus(ctx, imagebuild.WebV1Image)
	if err != nil || img == nil {
		t.Fatalf("image %s not imported: %v", imagebuild.WebV1Image, err)
	}

	logDir := dir + "/logs"
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "uid-1"},
		Hostname:     "web",
		LogDirectory: logDir,
		Labels:       map[string]string{runtime.LabelPodUID: "uid-1"},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
	sb, err := cri.RunPodSandbox(ctx, sbCfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cri.PodSandboxStatus(ctx, sb)
	if err != nil || st.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.GetNetwork().GetIp() == "" {
		t.Fatalf("sandbox status %v %v", st, err)
	}
	ip := st.Network.Ip
	if !strings.HasPrefix(ip, "10.233.1.") {
		t.Errorf("pod IP %s outside the pod CIDR", ip)
	}
	cid, err := cri.CreateContainer(ctx, sb, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
		Image:    &runtimeapi.ImageSpec{Image: imagebuild.WebV1Image},
		LogPath:  "web/0.log",
		Labels:   map[string]string{runtime.LabelPodUID: "uid-1", runtime.LabelContainerName: "web"},
	}, sbCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cri.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	var body string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + ip + ":8080/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
	}
	if !strings.Contains(body, "minik8s web v1") {
		t.Fatalf("GET pod IP: %q", body)
	}
	res, err := cri.ExecSync(ctx, cid, []string{"cat", "/etc/hostname"}, 10*time.Second)
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "web" {
		t.Fatalf("exec: %+v %v", res, err)
	}
	cst, err := cri.ContainerStatus(ctx, cid)
	if err != nil || cst.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container status %v %v", cst, err)
	}
	logData, err := os.ReadFile(cst.LogPath)
	if err != nil || !strings.Contains(string(logData), " stdout F web v1 listening on :8080") {
		t.Fatalf("log %s: %q %v", cst.LogPath, logData, err)
	}
	start := time.Now()
	if err := cri.StopContainer(ctx, cid, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("web stopped on SIGTERM in %s", time.Since(start))
	cst, err = cri.ContainerStatus(ctx, cid)
	if err != nil || cst.State != runtimeapi.ContainerState_CONTAINER_EXITED || cst.ExitCode != 0 {
		t.Fatalf("after stop: %v %v (want exit 0 from the SIGTERM trap)", cst, err)
	}
	if err := cri.StopPodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if err := cri.RemovePodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if _, err := cri.ContainerStatus(ctx, cid); err == nil {
		t.Errorf("container survived its sandbox's removal")
	}
}

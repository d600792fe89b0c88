//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/hack/images/imagebuild"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

// TestKubeletBinaryOwnContainerd runs the kubelet binary the way a node
// does by default: it starts and supervises its own containerd (generated
// config, CNI conflist for --pod-cidr, images imported from tarballs),
// registers the node, runs a pod, removes it when deleted, and stops its
// containerd on SIGTERM.
func TestKubeletBinaryOwnContainerd(t *testing.T) {
	needKubeletDeps(t)
	imgs := testImages(t)
	api := apiservertest.Start(t)
	cs := api.Clientset(t)
	dir := shortDir(t, "mkk")
	root := dir + "/r"
	ctdDir := root + "/containerd"
	t.Cleanup(func() {
		removeCgroups("/minik8s-bin", "bin-node")
		_ = runtime.UnmountUnder(root)
		_ = exec.Command("ip", "link", "del", runtime.BridgeName(ctdDir)).Run()
	})
	bin := filepath.Join(dir, "kubelet-bin")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/kubelet").CombinedOutput(); err != nil {
		t.Fatalf("build kubelet: %v\n%s", err, out)
	}
	logPath := filepath.Join(dir, "kubelet.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--kubeconfig", api.Kubeconfig, "--node-name", "bin-node", "--root-dir", root,
		"--pod-cidr", "10.233.40.0/24", "--node-ip", "127.0.0.1", "--port", "0", "--cgroup-root", "/minik8s-bin",
		"--import-images", filepath.Dir(imgs[0]), "--register-with-taints", "role=test:NoSchedule", "--node-labels", "zone=a")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(45 * time.Second):
			t.Errorf("kubelet did not exit within 45s of SIGTERM")
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	defer stop()
	fail := func(format string, args ...any) {
		t.Helper()
		data, _ := os.ReadFile(logPath)
		t.Fatalf(format+"\nkubelet log:\n%s", append(args, data)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	wait := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-exited:
				fail("kubelet exited while waiting for %s", what)
			case <-ctx.Done():
				fail("timed out waiting for %s", what)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	var node *corev1.Node
	wait("node Ready", func() bool {
		n, err := cs.Nodes.Get(ctx, "bin-node", metav1.GetOptions{})
		if err != nil {
			return false
		}
		node = n
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	})
	if node.Labels["zone"] != "a" || len(node.Spec.Taints) != 1 || node.Spec.Taints[0].Effect != corev1.TaintEffectNoSchedule ||
		node.Spec.PodCIDR != "10.233.40.0/24" || !strings.HasPrefix(node.Status.NodeInfo.ContainerRuntimeVersion, "containerd://") {
		t.Errorf("node %+v", node)
	}
	conf, err := os.ReadFile(filepath.Join(ctdDir, "config.toml"))
	if err != nil || !strings.Contains(string(conf), "restrict_oom_score_adj = true") || !strings.Contains(string(conf), `sandbox_image = "minik8s.local/pause:3.10"`) {
		t.Errorf("containerd config: %v\n%s", err, conf)
	}
	pods := cs.Pods.Namespace("default")
	if _, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: "bin-node", TerminationGracePeriodSeconds: int64p(5),
			Containers: []corev1.Container{{Name: "web", Image: imagebuild.WebV2Image, ImagePullPolicy: corev1.PullNever}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("pod Running", func() bool {
		p, err := pods.Get(ctx, "web", metav1.GetOptions{})
		return err == nil && running(p) && strings.HasPrefix(p.Status.PodIP, "10.233.40.")
	})
	if err := pods.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("pod deleted", func() bool {
		_, err := pods.Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	cri, err := runtime.DialCRI(ctx, filepath.Join(ctdDir, "containerd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	wait("sandbox removed", func() bool {
		sbs, err := cri.ListPodSandbox(ctx, nil)
		return err == nil && len(sbs) == 0
	})
	cri.Close()
	stop()
	// The supervised containerd went with the kubelet.
	if out, _ := exec.Command("pgrep", "-f", "containerd --config "+ctdDir).Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("containerd still running after the kubelet stopped: pids %s", out)
	}
}

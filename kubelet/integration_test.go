package kubelet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

func testLog() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("MINIK8S_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func testClientset(t *testing.T, s *apiservertest.Server) *typed.Clientset {
	t.Helper()
	cs := s.Clientset(t)
	return cs
}

// startFakeKubelet runs a kubelet on the fake runtime against a real API
// server until the test ends.
func startFakeKubelet(t *testing.T, cs *typed.Clientset, name string) (*Kubelet, *runtime.Fake) {
	return startFakeKubeletWithClock(t, cs, name, nil)
}

func startFakeKubeletWithClock(t *testing.T, cs *typed.Clientset, name string, clock Clock) (*Kubelet, *runtime.Fake) {
	t.Helper()
	fake := runtime.NewFake()
	if clock != nil {
		fake.Now = clock.Now
	}
	k, err := New(Config{
		NodeName:           name,
		RootDir:            t.TempDir(),
		NodeIP:             "10.1.2.3",
		PodCIDR:            "10.244.7.0/24",
		Taints:             []corev1.Taint{{Key: "dedicated", Value: "test", Effect: corev1.TaintEffectNoSchedule}},
		Labels:             map[string]string{"tier": "test"},
		SyncInterval:       100 * time.Millisecond,
		LeaseRenewInterval: time.Second,
	}, Deps{Client: cs, Runtime: fake, Log: testLog(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("kubelet Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("kubelet did not stop within 30s")
		}
	})
	return k, fake
}

// waitFor polls cond until it returns true or a minute passes.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
}

func TestKubeletFakeRuntimeAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := testClientset(t, s)
	k, fake := startFakeKubelet(t, cs, "node-a")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The node registers with labels, taints, pod CIDR, capacity, Ready.
	var node *corev1.Node
	waitFor(t, "node Ready", func() (bool, error) {
		n, err := cs.Nodes.Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = n
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if node.Labels["kubernetes.io/hostname"] != "node-a" || node.Labels["kubernetes.io/os"] != "linux" || node.Labels["tier"] != "test" {
		t.Errorf("labels %v", node.Labels)
	}
	if node.Spec.PodCIDR != "10.244.7.0/24" || len(node.Spec.Taints) != 1 || node.Spec.Taints[0].Key != "dedicated" {
		t.Errorf("spec %+v", node.Spec)
	}
	if node.Status.Capacity.Cpu().IsZero() || node.Status.Capacity.Memory().IsZero() || node.Status.Capacity.Pods().Value() != 110 {
		t.Errorf("capacity %v", node.Status.Capacity)
	}
	if len(node.Status.Addresses) != 2 || node.Status.Addresses[0].Address != "10.1.2.3" || node.Status.NodeInfo.ContainerRuntimeVersion != "fake://0.1.0" {
		t.Errorf("addresses %v nodeInfo %+v", node.Status.Addresses, node.Status.NodeInfo)
	}
	waitFor(t, "node lease", func() (bool, error) {
		l, err := cs.Leases.Namespace("kube-node-lease").Get(ctx, "node-a", metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime != nil && *l.Spec.HolderIdentity == "node-a", err
	})

	// A pod bound here runs, with the fake's pod IP and Ready conditions.
	pods := cs.Pods.Namespace("default")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:   "node-a",
			Containers: []corev1.Container{{Name: "web", Image: "minik8s.local/web:v1"}},
		},
	}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	waitFor(t, "pod Running and Ready", func() (bool, error) {
		p, err := pods.Get(ctx, "web", metav1.GetOptions{})
		got = p
		return err == nil && p.Status.Phase == corev1.PodRunning && podReady(p), err
	})
	if got.Status.PodIP == "" || got.Status.HostIP != "10.1.2.3" || len(got.Status.ContainerStatuses) != 1 ||
		got.Status.ContainerStatuses[0].State.Running == nil || got.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Fatalf("status %+v", got.Status)
	}

	// The kubelet's HTTP endpoint lists the pod and counts its worker.
	srv := httptest.NewServer(NewServer(k, ServerOptions{Anonymous: true}).Handler())
	defer srv.Close()
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/pods":    `"name":"web"`,
		"/metrics": `minik8s_kubelet_pod_workers{node="node-a"} 1`,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	if resp, err := http.Get(srv.URL + "/containerLogs/default/nope/c"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("logs of a missing pod: %v %v", resp, err)
	}
	if resp, err := http.Get(srv.URL + "/containerLogs/default/web/nope"); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("logs of a missing container: %v %v", resp, err)
	}

	// The container crashes: it restarts at once (restartCount 1) ...
	if err := fake.SetExited(fake.RunningContainerID(string(got.UID), "web"), 2, "Error"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restartCount 1", func() (bool, error) {
		p, err := pods.Get(ctx, "web", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, err
		}
		cs := p.Status.ContainerStatuses[0]
		got = p
		return cs.RestartCount == 1 && cs.State.Running != nil, nil
	})
	if lt := got.Status.ContainerStatuses[0].LastTerminationState.Terminated; lt == nil || lt.ExitCode != 2 || lt.Reason != "Error" {
		t.Errorf("lastState %+v", got.Status.ContainerStatuses[0].LastTerminationState)
	}
	// ... and crashing again soon after backs off.
	if err := fake.SetExited(fake.RunningContainerID(string(got.UID), "web"), 1, "Error"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "CrashLoopBackOff", func() (bool, error) {
		p, err := pods.Get(ctx, "web", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, err
		}
		got = p
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CrashLoopBackOff", nil
	})
	if podReady(got) || got.Status.Phase != corev1.PodRunning {
		t.Errorf("crash-looping pod: phase %s ready %v", got.Status.Phase, podReady(got))
	}

	// Graceful deletion: the kubelet stops the containers and deletes the
	// pod object, and the runtime is left empty.
	if err := pods.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod gone", func() (bool, error) {
		_, err := pods.Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	waitFor(t, "runtime empty", func() (bool, error) {
		sb, c, _ := fake.Counts()
		return sb == 0 && c == 0, fmt.Errorf("%d sandboxes, %d containers left", sb, c)
	})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestKubeletCrashLoopWithFakeClock drives the pod worker's restart
// decisions with a fake clock: immediate first restart, then 10s, 20s
// back-offs that pass only when the clock moves.
func TestKubeletCrashLoopWithFakeClock(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := testClientset(t, s)
	clock := NewFakeClock(time.Now())
	k, fake := startFakeKubeletWithClock(t, cs, "node-b", clock)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pods := cs.Pods.Namespace("default")
	if _, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "crashy", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: "node-b", Containers: []corev1.Container{{Name: "app", Image: "minik8s.local/busybox:1.35"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	status := func() corev1.ContainerStatus {
		p, err := pods.Get(ctx, "crashy", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return corev1.ContainerStatus{}
		}
		return p.Status.ContainerStatuses[0]
	}
	var uid string
	waitFor(t, "running", func() (bool, error) {
		p, err := pods.Get(ctx, "crashy", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		uid = string(p.UID)
		return status().State.Running != nil, nil
	})
	crash := func() {
		// The fake clock stamps every container with the same time, so
		// pick the running one rather than the "newest".
		id := fake.RunningContainerID(uid, "app")
		if id == "" {
			t.Fatal("no running container to crash")
		}
		if err := fake.SetExited(id, 1, "Error"); err != nil {
			t.Fatal(err)
		}
	}
	waitRestarts := func(n int32) {
		waitFor(t, fmt.Sprintf("restartCount %d", n), func() (bool, error) {
			st := status()
			return st.RestartCount == n && st.State.Running != nil, nil
		})
	}
	waitBackoff := func(msg string) {
		waitFor(t, "CrashLoopBackOff "+msg, func() (bool, error) {
			w := status().State.Waiting
			return w != nil && w.Reason == "CrashLoopBackOff" && strings.Contains(w.Message, msg), nil
		})
	}
	crash()
	waitRestarts(1) // the first restart is immediate
	crash()
	waitBackoff("back-off 10s")
	// The real clock moves, the fake one does not: still backing off.
	time.Sleep(time.Second)
	if st := status(); st.RestartCount != 1 || st.State.Waiting == nil {
		t.Fatalf("restarted before the back-off passed: %+v", st)
	}
	// Moving the fake clock fires no real timer; poke the worker as the
	// back-off timer would.
	step := func(d time.Duration) {
		clock.Step(d)
		k.wake(types.UID(uid))
	}
	step(10 * time.Second)
	waitRestarts(2)
	crash()
	waitBackoff("back-off 20s")
	step(19 * time.Second)
	time.Sleep(time.Second)
	if st := status(); st.RestartCount != 2 {
		t.Fatalf("restarted after 19s of a 20s back-off: %+v", st)
	}
	step(time.Second)
	waitRestarts(3)
}

// TestKubeletConfigErrorAndProbes: a missing ConfigMap holds the
// container in CreateContainerConfigError until it appears; a failing
// exec liveness probe restarts the container; readiness gates Ready.
func TestKubeletConfigErrorAndProbes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := testClientset(t, s)
	_, fake := startFakeKubelet(t, cs, "node-c")
	var healthy, readyOK atomic.Bool
	healthy.Store(true)
	fake.ExecHook = func(_ string, cmd []string) (*runtime.ExecResult, error) {
		ok := healthy.Load()
		if cmd[0] == "ready" {
			ok = readyOK.Load()
		}
		if ok {
			return &runtime.ExecResult{}, nil
		}
		return &runtime.ExecResult{ExitCode: 1}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pods := cs.Pods.Namespace("default")
	if _, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: "node-c", Containers: []corev1.Container{{
			Name: "app", Image: "minik8s.local/busybox:1.35",
			Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "x"}}}},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"live"}}}, PeriodSeconds: 1, FailureThreshold: 1},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"ready"}}}, PeriodSeconds: 1},
		}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	get := func() *corev1.Pod {
		p, _ := pods.Get(ctx, "cfg", metav1.GetOptions{})
		return p
	}
	waitFor(t, "CreateContainerConfigError", func() (bool, error) {
		p := get()
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false, nil
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError" && strings.Contains(w.Message, "settings"), nil
	})
	if _, err := cs.ConfigMaps.Namespace("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "default"}, Data: map[string]string{"x": "1"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "running, not ready", func() (bool, error) {
		p := get()
		return p != nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil && !podReady(p), nil
	})
	readyOK.Store(true)
	waitFor(t, "ready", func() (bool, error) { p := get(); return p != nil && podReady(p), nil })
	healthy.Store(false)
	waitFor(t, "liveness restart", func() (bool, error) {
		p := get()
		return p != nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1, nil
	})
	healthy.Store(true)
	waitFor(t, "ready again after the restart", func() (bool, error) {
		p := get()
		return p != nil && podReady(p) && p.Status.ContainerStatuses[0].State.Running != nil, nil
	})
}

// TestKubeletImagePullErrors: a failing pull shows ErrImagePull, then
// ImagePullBackOff; once the image can be pulled the pod runs.
func TestKubeletImagePullErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := testClientset(t, s)
	clock := NewFakeClock(time.Now())
	k, fake := startFakeKubeletWithClock(t, cs, "node-d", clock)
	fake.SetPullError("registry.example/app:v1", fmt.Errorf("no route to registry"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods := cs.Pods.Namespace("default")
	p, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: "node-d", Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:v1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reason := func() string {
		p, err := pods.Get(ctx, "pull", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return ""
		}
		return p.Status.ContainerStatuses[0].State.Waiting.Reason
	}
	waitFor(t, "ErrImagePull or ImagePullBackOff", func() (bool, error) {
		r := reason()
		return r == "ErrImagePull" || r == "ImagePullBackOff", nil
	})
	k.wake(p.UID)
	waitFor(t, "ImagePullBackOff", func() (bool, error) { return reason() == "ImagePullBackOff", nil })
	fake.SetPullError("registry.example/app:v1", nil)
	clock.Step(10 * time.Second)
	k.wake(p.UID)
	waitFor(t, "running after a good pull", func() (bool, error) {
		p, err := pods.Get(ctx, "pull", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	calls := 0
	for _, c := range fake.Calls() {
		if c == "PullImage registry.example/app:v1" {
			calls++
		}
	}
	if calls != 2 {
		t.Errorf("pulled %d times, want 2 (one failure, one success after the back-off)", calls)
	}
}

package kubelet

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

// TestLifecycleHooks on the fake runtime: postStart runs once the
// container started, preStop runs while it still runs (before the stop),
// and a failing postStart kills the container, which restarts.
func TestLifecycleHooks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := testClientset(t, s)
	_, fake := startFakeKubelet(t, cs, "node-h")
	var mu sync.Mutex
	var execs []string
	fake.ExecHook = func(_ string, cmd []string) (*runtime.ExecResult, error) {
		mu.Lock()
		execs = append(execs, strings.Join(cmd, " "))
		mu.Unlock()
		if cmd[0] == "fail" {
			return &runtime.ExecResult{ExitCode: 1, Stderr: []byte("no")}, nil
		}
		return &runtime.ExecResult{}, nil
	}
	ran := func(cmd string) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(execs, cmd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods := cs.Pods.Namespace("default")
	grace := int64(5)
	mk := func(name, postStart string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{
			NodeName: "node-h", TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{Name: "app", Image: "minik8s.local/web:v1", Lifecycle: &corev1.Lifecycle{
				PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{postStart}}},
				PreStop:   &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"drain", name}}},
			}}}}}
	}
	if _, err := pods.Create(ctx, mk("hooked", "warm-up"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hooked Running with its postStart run", func() (bool, error) {
		p, err := pods.Get(ctx, "hooked", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning && ran("warm-up"), err
	})
	if ran("drain hooked") {
		t.Fatal("preStop ran before any deletion")
	}
	if err := pods.Delete(ctx, "hooked", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hooked gone", func() (bool, error) {
		_, err := pods.Get(ctx, "hooked", metav1.GetOptions{})
		return err != nil, nil
	})
	// The fake's ExecSync refuses a stopped container, so a recorded
	// preStop ran before the stop.
	if !ran("drain hooked") {
		t.Fatalf("preStop did not run before the container stopped; execs: %v", execs)
	}

	if _, err := pods.Create(ctx, mk("failing", "fail"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the container restarted after its postStart failed", func() (bool, error) {
		p, err := pods.Get(ctx, "failing", metav1.GetOptions{})
		return err == nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1, err
	})
	waitFor(t, "a FailedPostStartHook event", func() (bool, error) {
		l, err := cs.Events.Namespace("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range l.Items {
			if e.Reason == "FailedPostStartHook" && e.InvolvedObject.Name == "failing" {
				return true, nil
			}
		}
		return false, nil
	})
}

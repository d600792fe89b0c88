package kubelet

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

// TestHollowNodes runs several hollow kubelets in one process (fake
// runtime, shared ConfigMap/Secret cache), as `kubelet --hollow N` does:
// each registers, and pods bound to each run.
func TestHollowNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := testClientset(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shared := informer.NewFactory(cs.REST, informer.FactoryOptions{})
	configs := NewSharedConfigSource(shared)
	shared.Start(ctx)
	const n = 5
	done := make(chan error, n)
	for i := range n {
		k, err := New(Config{
			NodeName: fmt.Sprintf("hollow-%d", i), NodeIP: fmt.Sprintf("10.255.0.%d", i+1),
			CPUCapacity: "4", MemoryCapacity: "16Gi", Hollow: true, SyncInterval: 200 * time.Millisecond,
		}, Deps{Client: cs, Runtime: runtime.NewFake(), Configs: configs, Log: testLog()})
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- k.Run(ctx) }()
	}
	defer func() {
		cancel()
		for range n {
			select {
			case err := <-done:
				if err != nil {
					t.Error(err)
				}
			case <-time.After(30 * time.Second):
				t.Error("hollow kubelet did not stop")
			}
		}
		shared.Wait()
	}()
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer rcancel()
	if _, err := cs.ConfigMaps.Namespace("default").Create(rctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "default"}, Data: map[string]string{"k": "v"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := cs.Pods.Namespace("default").Create(rctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "default"},
			Spec: corev1.PodSpec{NodeName: fmt.Sprintf("hollow-%d", i), Containers: []corev1.Container{{
				Name: "c", Image: "minik8s.local/web:v1",
				Env: []corev1.EnvVar{{Name: "K", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "shared"}, Key: "k"}}}},
			}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "hollow nodes Ready and their pods Running", func() (bool, error) {
		nodes, err := cs.Nodes.List(rctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		readyNodes := 0
		for _, nd := range nodes.Items {
			for _, c := range nd.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && nd.Status.Capacity.Cpu().String() == "4" {
					readyNodes++
				}
			}
		}
		pods, err := cs.Pods.Namespace("default").List(rctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && podReady(&p) {
				running++
			}
		}
		if readyNodes == n && running == n {
			return true, nil
		}
		return false, errors.New(fmt.Sprint(readyNodes, " nodes ready, ", running, " pods running"))
	})
}

package scheduler

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
	st "github.com/minik8s/minik8s/scheduler/internal/schedtest"
)

func TestCommandHelpAndBadFlags(t *testing.T) {
	cmd := NewCommand("scheduler")
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--bind-address", "127.0.0.1:10259", "--leader-elect", "--percentage-of-nodes-to-score", "/debug/pods"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	for _, args := range [][]string{
		{"--log-level=loud"},
		{"--percentage-of-nodes-to-score=101"},
		{"--kubeconfig=/nonexistent/kubeconfig"},
		{"stray-argument"},
	} {
		cmd := NewCommand("scheduler")
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SetArgs(args)
		if err := cmd.ExecuteContext(context.Background()); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestCommandRunsAgainstAPIServer runs the scheduler as the binary does:
// kubeconfig, leader election, HTTP endpoints; then stops it and checks it
// handed the Lease back.
func TestCommandRunsAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	srv := apiservertest.Start(t)
	cs := srv.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	o := DefaultOptions()
	o.Kubeconfig = srv.Kubeconfig
	o.BindAddress = "127.0.0.1:0"
	o.LogLevel = "error"
	o.RetryPeriod = 200 * time.Millisecond
	addrc := make(chan string, 1)
	o.ready = func(a string) { addrc <- a }
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(runCtx) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	}

	status := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for status("/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz never became 200")
		}
		time.Sleep(20 * time.Millisecond)
	}

	n := st.Node("n1", "2", "2Gi", 110)
	n.UID = ""
	created, err := cs.Nodes.Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = n.Status
	if _, err := cs.Nodes.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := st.Pod("default", "web-1")
	p.UID = ""
	if _, err := cs.Pods.Namespace("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		got, err := cs.Pods.Namespace("default").Get(ctx, "web-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.NodeName == "n1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod not bound: %+v", got.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	lease, err := cs.Leases.Namespace("kube-system").Get(ctx, DefaultLeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("lease still held by %q after a clean stop", *h)
	}
	if status("/healthz") != 0 {
		t.Error("HTTP server still answers after stop")
	}
}

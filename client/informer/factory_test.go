package informer

import (
	"context"
	"log/slog"
	"testing"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/api/scheme"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
)

func TestFactorySharesInformers(t *testing.T) {
	c, err := rest.New(&rest.Config{Host: "http://127.0.0.1:1"}, scheme.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	f := NewFactory(c, FactoryOptions{})
	if f.Pods().Informer != f.Pods().Informer {
		t.Error("two Pods() calls made two informers")
	}
	if f.Pods().Informer == f.Nodes().Informer {
		t.Error("pods and nodes share an informer")
	}
	if got := f.Deployments().Resource().String(); got != "deployments.apps" {
		t.Errorf("deployments informer resource = %q", got)
	}
}

func TestFactoryStartSyncWait(t *testing.T) {
	f := NewFactory(nil, FactoryOptions{Logger: slog.New(slog.DiscardHandler)})
	pods, nodes := newFakeListerWatcher(), newFakeListerWatcher()
	pods.lists <- listResult{obj: podList("1", "", pod("ns", "a", "1", nil))}
	podInf := f.InformerFor(typed.PodsResource, pods)
	if again := f.InformerFor(typed.PodsResource, newFakeListerWatcher()); again != podInf {
		t.Fatal("InformerFor made a second informer for the same resource")
	}
	nodeInf := f.InformerFor(typed.NodesResource, nodes)

	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx)
	f.Start(ctx) // idempotent: no informer runs twice
	pods.nextWatch(t)
	if f.HasSynced() {
		t.Fatal("factory synced while nodes never listed")
	}
	nodes.lists <- listResult{obj: podList("1", "")}
	nodes.nextWatch(t)
	waitSynced(t, f)
	if !podInf.HasSynced() || !nodeInf.HasSynced() {
		t.Fatal("informers not synced")
	}
	if _, err := NewLister[*corev1.Pod](podInf).Get("ns", "a"); err != nil {
		t.Errorf("shared cache lookup: %v", err)
	}
	cancel()
	f.Wait() // must return: every informer goroutine is owned by ctx
}

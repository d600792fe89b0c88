package informer_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/informer"
)

// TestFactoryAgainstAPIServer runs a shared pods informer against a real
// API server: initial list, then watch-driven adds, updates and deletes,
// with the cache and handlers agreeing with the server.
func TestFactoryAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := s.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods := cs.Pods.Namespace("default")
	mkPod := func(name, tier string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"tier": tier}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "minik8s.local/busybox:1.35"}}},
		}
	}
	// One pod exists before the informer starts: it must come from the list.
	if _, err := pods.Create(ctx, mkPod("before", "a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	f := informer.NewFactory(cs.REST, informer.FactoryOptions{Logger: slog.New(slog.DiscardHandler)})
	podInf := f.Pods()
	events := make(chan string, 100)
	err := podInf.AddEventHandler(informer.Handler{
		AddFunc: func(obj runtime.Object) { events <- "add " + obj.(*corev1.Pod).Name },
		UpdateFunc: func(old, obj runtime.Object) {
			o, n := old.(*corev1.Pod), obj.(*corev1.Pod)
			if o.Labels["tier"] != n.Labels["tier"] {
				events <- fmt.Sprintf("update %s %s->%s", n.Name, o.Labels["tier"], n.Labels["tier"])
			}
		},
		DeleteFunc: func(obj any) {
			p, _ := informer.ObjectOf[*corev1.Pod](obj)
			events <- "delete " + p.Name
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	f.Start(runCtx)
	defer func() { stop(); f.Wait() }()
	if !f.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	expect := func(want string) {
		t.Helper()
		for {
			select {
			case got := <-events:
				if got == want {
					return
				}
				t.Fatalf("event %q, want %q", got, want)
			case <-ctx.Done():
				t.Fatalf("no event, want %q", want)
			}
		}
	}
	expect("add before")

	if _, err := pods.Create(ctx, mkPod("after", "a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("add after")
	p, err := pods.Get(ctx, "after", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Labels["tier"] = "b"
	if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("update after a->b")

	lister := podInf.Lister()
	inB, err := lister.List(labels.SelectorFromSet(labels.Set{"tier": "b"}))
	if err != nil || len(inB) != 1 || inB[0].Name != "after" {
		t.Fatalf("lister tier=b: %v %v", inB, err)
	}

	if err := pods.Delete(ctx, "before", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	expect("delete before")
	if _, err := lister.Get("default", "before"); err == nil {
		t.Error("deleted pod still in the cache")
	}
	if rv := podInf.LastSyncResourceVersion(); rv == "" {
		t.Error("informer tracked no resourceVersion")
	}
}

package apiserver_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

type podEvent struct {
	typ      watch.EventType
	name     string
	node     string
	deleting bool
}

func nextPod(t *testing.T, w watch.Interface) podEvent {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch ended")
		}
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			t.Fatalf("%s event with %T: %+v", ev.Type, ev.Object, ev.Object)
		}
		return podEvent{ev.Type, p.Name, p.Spec.NodeName, p.DeletionTimestamp != nil}
	case <-time.After(30 * time.Second):
		t.Fatal("no pod event within 30s")
	}
	return podEvent{}
}

// TestIntegrationPodWatchByNode follows a pod through the watches the
// scheduler (spec.nodeName=) and a kubelet (spec.nodeName=node-1) use: a
// binding moves it from one selection to the other, and graceful deletion
// shows up as MODIFIED before the final DELETED.
func TestIntegrationPodWatchByNode(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	pods := cs.CoreV1().Pods("")
	l, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv := l.ResourceVersion
	kubelet, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=node-1", ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer kubelet.Stop()
	scheduler, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=", ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer scheduler.Stop()
	other, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=node-2", ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Stop()

	dp := cs.CoreV1().Pods("default")
	if _, err := dp.Create(ctx, itPod("p", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := nextPod(t, scheduler); ev != (podEvent{watch.Added, "p", "", false}) {
		t.Fatalf("scheduler: %+v, want ADDED p unbound", ev)
	}
	if err := dp.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := nextPod(t, scheduler); ev != (podEvent{watch.Deleted, "p", "", false}) {
		t.Fatalf("scheduler after binding: %+v, want DELETED p (its last unbound state)", ev)
	}
	if ev := nextPod(t, kubelet); ev != (podEvent{watch.Added, "p", "node-1", false}) {
		t.Fatalf("kubelet after binding: %+v, want ADDED p on node-1", ev)
	}
	if err := dp.Delete(ctx, "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := nextPod(t, kubelet); ev != (podEvent{watch.Modified, "p", "node-1", true}) {
		t.Fatalf("kubelet after delete: %+v, want MODIFIED p with deletionTimestamp", ev)
	}
	if err := dp.Delete(ctx, "p", metav1.DeleteOptions{GracePeriodSeconds: itPtr(int64(0))}); err != nil {
		t.Fatal(err)
	}
	if ev := nextPod(t, kubelet); ev != (podEvent{watch.Deleted, "p", "node-1", true}) {
		t.Fatalf("kubelet after final delete: %+v, want DELETED p", ev)
	}
	// node-2's kubelet saw nothing of it: its next event is its own pod.
	p2 := itPod("q", nil)
	p2.Spec.NodeName = "node-2"
	if _, err := dp.Create(ctx, p2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := nextPod(t, other); ev != (podEvent{watch.Added, "q", "node-2", false}) {
		t.Fatalf("node-2 watch: %+v, want only ADDED q", ev)
	}
}

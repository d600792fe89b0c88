package typed_test

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/typed"
)

// clientsetFor connects to a real in-process API server the way a
// component does: through the kubeconfig it wrote.
func clientsetFor(t *testing.T, s *apiservertest.Server) *typed.Clientset {
	t.Helper()
	cfg := s.RESTConfig(t)
	cfg.UserAgent = "client-typed-test"
	cs, err := typed.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "minik8s.local/busybox:1.35"}}},
	}
}

func TestAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := clientsetFor(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods := cs.Pods.Namespace("default")

	// Watch from the current list so we can check what the writes emit.
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()

	created, err := pods.Create(ctx, testPod("web-1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created.UID == "" || created.ResourceVersion == "" || created.Namespace != "default" {
		t.Fatalf("created pod lacks server fields: %+v", created.ObjectMeta)
	}
	if _, err := pods.Create(ctx, testPod("web-1"), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second Create: %v, want AlreadyExists", err)
	}

	got, err := pods.Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil || got.UID != created.UID {
		t.Fatalf("Get: %v %v", got, err)
	}
	if _, err := pods.Get(ctx, "nope", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get missing: %v, want NotFound", err)
	}

	// Optimistic concurrency: an update from a stale copy conflicts.
	fresh := got.DeepCopy()
	fresh.Labels["tier"] = "front"
	if _, err := pods.Update(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	stale := got.DeepCopy()
	stale.Labels["tier"] = "back"
	if _, err := pods.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale Update: %v, want Conflict", err)
	}

	patched, err := pods.Patch(ctx, "web-1", types.MergePatchType, []byte(`{"metadata":{"annotations":{"note":"hi"}}}`), metav1.PatchOptions{})
	if err != nil || patched.Annotations["note"] != "hi" || patched.Labels["tier"] != "front" {
		t.Fatalf("Patch: %v %+v", err, patched.ObjectMeta)
	}

	bind := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}}
	if err := pods.Bind(ctx, bind, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	bound, err := pods.Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil || bound.Spec.NodeName != "node-1" {
		t.Fatalf("after Bind nodeName = %q, %v", bound.Spec.NodeName, err)
	}

	bound.Status.Phase = corev1.PodRunning
	if st, err := pods.UpdateStatus(ctx, bound, metav1.UpdateOptions{}); err != nil || st.Status.Phase != corev1.PodRunning {
		t.Fatalf("UpdateStatus: %v", err)
	}

	sel, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=web,tier=front"})
	if err != nil || len(sel.Items) != 1 {
		t.Fatalf("List by selector: %v, %d items", err, len(sel.Items))
	}

	if err := pods.Delete(ctx, "web-1", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatalf("Delete: %v", err)
	}

	// The watch saw the whole story, in order, ending with the delete.
	var seen []watch.EventType
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed early after %v", seen)
			}
			if ev.Type == watch.Error {
				t.Fatalf("watch error: %v", apierrors.FromObject(ev.Object))
			}
			if _, ok := ev.Object.(*corev1.Pod); !ok {
				t.Fatalf("watch object %T", ev.Object)
			}
			seen = append(seen, ev.Type)
		case <-ctx.Done():
			t.Fatalf("watch incomplete: %v", seen)
		}
		if ev := seen[len(seen)-1]; ev == watch.Deleted {
			break
		}
	}
	if seen[0] != watch.Added {
		t.Errorf("first watch event %s, want ADDED", seen[0])
	}
}

func TestScaleAndLeaseAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := clientsetFor(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	replicas := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "minik8s.local/web:v1"}}},
			},
		},
	}
	// Created through the all-namespaces client: the object's namespace decides.
	if _, err := cs.Deployments.Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create deployment: %v", err)
	}
	deps := cs.Deployments.Namespace("default")
	scale, err := deps.GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil || scale.Spec.Replicas != 2 {
		t.Fatalf("GetScale: %v %+v", err, scale)
	}
	scale.Spec.Replicas = 5
	if _, err := deps.UpdateScale(ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("UpdateScale: %v", err)
	}
	got, err := deps.Get(ctx, "web", metav1.GetOptions{})
	if err != nil || got.Spec.Replicas == nil || *got.Spec.Replicas != 5 {
		t.Fatalf("replicas after UpdateScale: %v %v", got.Spec.Replicas, err)
	}

	holder := "me"
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "ctrl", Namespace: "kube-system"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder},
	}
	leases := cs.Leases.Namespace("kube-system")
	if _, err := leases.Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create lease: %v", err)
	}
	l, err := leases.Get(ctx, "ctrl", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "me" {
		t.Fatalf("Get lease: %v %+v", err, l)
	}
	if err := leases.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatalf("DeleteCollection: %v", err)
	}
	if left, err := leases.List(ctx, metav1.ListOptions{}); err != nil || len(left.Items) != 0 {
		t.Fatalf("after DeleteCollection: %v, %d left", err, len(left.Items))
	}
}

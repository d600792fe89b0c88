package namespace_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/garbagecollector"
	"github.com/minik8s/minik8s/controllers/internal/testenv"
	"github.com/minik8s/minik8s/controllers/namespace"
	"github.com/minik8s/minik8s/controllers/replicaset"
)

func TestDiscoverFindsNamespacedKinds(t *testing.T) {
	e := testenv.Start(t)
	rs, err := namespace.Discover(e.Ctx, e.CS.REST)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.String())
	}
	for _, want := range []string{"pods", "services", "endpoints", "configmaps", "secrets", "events", "replicasets.apps", "deployments.apps", "leases.coordination.k8s.io"} {
		if !slices.Contains(names, want) {
			t.Errorf("discovered %v: missing %s", names, want)
		}
	}
	for _, never := range []string{"namespaces", "nodes", "bindings", "pods/status"} {
		if slices.Contains(names, never) {
			t.Errorf("discovered %v: %s is not deletable namespaced content", names, never)
		}
	}
}

func TestNamespaceDeletionEmptiesThenFinalizes(t *testing.T) {
	e := testenv.Start(t)
	testenv.NewFakeKubelet(e, "node-1").Run()
	cs := e.Clientset("controllers")
	f := e.Factory(cs)
	opts := func(n string) controllers.Options { return controllers.Options{Logger: testenv.Logger(n)} }
	nc, err := namespace.New(f, cs, opts(namespace.Name))
	if err != nil {
		t.Fatal(err)
	}
	rsc, err := replicaset.New(f, cs, e.Recorder(cs, replicaset.Name), opts(replicaset.Name))
	if err != nil {
		t.Fatal(err)
	}
	gc, err := garbagecollector.New(f, cs, opts(garbagecollector.Name))
	if err != nil {
		t.Fatal(err)
	}
	e.Run(f, func(ctx context.Context) { _ = nc.Run(ctx, 2) }, func(ctx context.Context) { _ = rsc.Run(ctx, 2) },
		func(ctx context.Context) { _ = gc.Run(ctx, 2) })

	ns := e.Namespace("doomed")
	keep := e.Namespace("keep")
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "minik8s.local/busybox:1.35"}}}
	two := int32(2)
	lbl := map[string]string{"app": "web"}
	mustCreate := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.CS.ReplicaSets.Namespace(ns).Create(e.Ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.ReplicaSetSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: spec}}}, metav1.CreateOptions{})
	mustCreate(err)
	// A pod with a finalizer of the test's: the namespace must wait for it.
	_, err = e.CS.Pods.Namespace(ns).Create(e.Ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "held",
		Finalizers: []string{"test.minik8s.io/hold"}}, Spec: spec}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = e.CS.Services.Namespace(ns).Create(e.Ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: lbl, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	mustCreate(err)
	for _, n := range []string{ns, keep} {
		_, err = e.CS.ConfigMaps.Namespace(n).Create(e.Ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}}, metav1.CreateOptions{})
		mustCreate(err)
	}
	_, err = e.CS.Secrets.Namespace(ns).Create(e.Ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
	mustCreate(err)
	testenv.Eventually(t, "replicaset pods running", func() (bool, error) {
		rs, err := e.CS.ReplicaSets.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
		return err == nil && rs.Status.ReadyReplicas == 2, err
	})

	if err := e.CS.Namespaces.Delete(e.Ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Everything else goes; the held pod stays, and so does the namespace,
	// which says why.
	testenv.Eventually(t, "content deleted except the held pod", func() (bool, error) {
		got, err := e.CS.Namespaces.Get(e.Ctx, ns, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pods, err := e.CS.Pods.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		rss, err := e.CS.ReplicaSets.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		cms, err := e.CS.ConfigMaps.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		if len(pods.Items) != 1 || pods.Items[0].Name != "held" || pods.Items[0].DeletionTimestamp == nil || len(rss.Items)+len(cms.Items) != 0 {
			return false, fmt.Errorf("%d pods, %d replicasets, %d configmaps left", len(pods.Items), len(rss.Items), len(cms.Items))
		}
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.NamespaceContentRemaining && c.Status == corev1.ConditionTrue {
				return got.Status.Phase == corev1.NamespaceTerminating, nil
			}
		}
		return false, fmt.Errorf("conditions %+v", got.Status.Conditions)
	})

	if _, err := e.CS.Pods.Namespace(ns).Patch(e.Ctx, "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "namespace gone", func() (bool, error) {
		_, err := e.CS.Namespaces.Get(e.Ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	for what, list := range map[string]func() (int, error){
		"pods": func() (int, error) {
			l, err := e.CS.Pods.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		"services": func() (int, error) {
			l, err := e.CS.Services.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		"secrets": func() (int, error) {
			l, err := e.CS.Secrets.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
	} {
		if n, err := list(); err != nil || n != 0 {
			t.Errorf("%s left in deleted namespace: %d (%v)", what, n, err)
		}
	}
	if _, err := e.CS.ConfigMaps.Namespace(keep).Get(e.Ctx, "cfg", metav1.GetOptions{}); err != nil {
		t.Errorf("content of another namespace touched: %v", err)
	}
}

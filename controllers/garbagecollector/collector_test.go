package garbagecollector_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/garbagecollector"
	"github.com/minik8s/minik8s/controllers/internal/testenv"
	"github.com/minik8s/minik8s/controllers/replicaset"
)

// start runs the collector and the ReplicaSet controller, and a fake
// kubelet so pods are bound and their graceful deletions finish.
func start(t *testing.T) *testenv.Env {
	e := testenv.Start(t)
	testenv.NewFakeKubelet(e, "node-1").Run()
	cs := e.Clientset("controllers")
	f := e.Factory(cs)
	rs, err := replicaset.New(f, cs, e.Recorder(cs, replicaset.Name), controllers.Options{Logger: testenv.Logger(replicaset.Name)})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := garbagecollector.New(f, cs, controllers.Options{Logger: testenv.Logger(garbagecollector.Name)})
	if err != nil {
		t.Fatal(err)
	}
	e.Run(f, func(ctx context.Context) { _ = rs.Run(ctx, 2) }, func(ctx context.Context) { _ = gc.Run(ctx, 3) })
	return e
}

func ownerRef(kind, apiVersion string, m metav1.Object, controller bool) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: m.GetName(), UID: m.GetUID(),
		Controller: &controller, BlockOwnerDeletion: &yes}
}

// chain creates Deployment -> ReplicaSet -> 2 pods by hand (no Deployment
// controller runs here: the collector must not care who made the chain).
// Pods get podFinalizers from the template.
func chain(t *testing.T, e *testenv.Env, ns string, podFinalizers ...string) (*appsv1.Deployment, *appsv1.ReplicaSet) {
	t.Helper()
	two := int32(2)
	lbl := map[string]string{"app": "web"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl, Finalizers: podFinalizers},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "minik8s.local/web:v1"}}}}
	d, err := e.CS.Deployments.Namespace(ns).Create(e.Ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: tmpl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := e.CS.ReplicaSets.Namespace(ns).Create(e.Ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", OwnerReferences: []metav1.OwnerReference{ownerRef("Deployment", "apps/v1", d, true)}},
		Spec:       appsv1.ReplicaSetSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: tmpl},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "2 pods", func() (bool, error) {
		pods, err := pods(e, ns)
		return len(pods) == 2, err
	})
	return d, rs
}

func pods(e *testenv.Env, ns string) ([]corev1.Pod, error) {
	l, err := e.CS.Pods.Namespace(ns).List(e.Ctx, metav1.ListOptions{LabelSelector: labels.Set{"app": "web"}.String()})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

func count(e *testenv.Env, ns string) (deploys, rss, podN int, err error) {
	d, err := e.CS.Deployments.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
	if err != nil {
		return 0, 0, 0, err
	}
	r, err := e.CS.ReplicaSets.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
	if err != nil {
		return 0, 0, 0, err
	}
	p, err := pods(e, ns)
	return len(d.Items), len(r.Items), len(p), err
}

func deleteWith(t *testing.T, e *testenv.Env, ns, name string, policy metav1.DeletionPropagation) {
	t.Helper()
	if err := e.CS.Deployments.Namespace(ns).Delete(e.Ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		t.Fatal(err)
	}
}

// barrier proves the collector has processed everything before it: a
// throwaway dependent of a deleted owner must be collected.
func barrier(t *testing.T, e *testenv.Env, ns string) {
	t.Helper()
	cms := e.CS.ConfigMaps.Namespace(ns)
	owner, err := cms.Create(e.Ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "barrier-owner-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := cms.Create(e.Ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "barrier-dep-",
		OwnerReferences: []metav1.OwnerReference{ownerRef("ConfigMap", "v1", owner, false)}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(e.Ctx, owner.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "barrier dependent collected", func() (bool, error) {
		_, err := cms.Get(e.Ctx, dep.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

func TestCascadeBackground(t *testing.T) {
	e := start(t)
	ns := e.Namespace("gc-bg")
	chain(t, e, ns)
	deleteWith(t, e, ns, "web", metav1.DeletePropagationBackground)
	testenv.Eventually(t, "deployment, replicaset and pods all gone", func() (bool, error) {
		d, r, p, err := count(e, ns)
		return d+r+p == 0, err
	})
}

func TestCascadeForeground(t *testing.T) {
	e := start(t)
	ns := e.Namespace("gc-fg")
	// The pods hold a finalizer of the test's, so they stay (terminating)
	// until the test lets them go: meanwhile the owners must wait.
	const hold = "test.minik8s.io/hold"
	d, rs := chain(t, e, ns, hold)
	deleteWith(t, e, ns, "web", metav1.DeletePropagationForeground)

	testenv.Eventually(t, "pods being deleted", func() (bool, error) {
		ps, err := pods(e, ns)
		if err != nil {
			return false, err
		}
		for _, p := range ps {
			if p.DeletionTimestamp == nil {
				return false, nil
			}
		}
		return len(ps) == 2, nil
	})
	barrier(t, e, ns)
	got, err := e.CS.Deployments.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
	if err != nil || got.UID != d.UID || got.DeletionTimestamp == nil || !slices.Contains(got.Finalizers, metav1.FinalizerDeleteDependents) {
		t.Fatalf("deployment while its pods terminate: %v, %+v", err, got.ObjectMeta)
	}
	gotRS, err := e.CS.ReplicaSets.Namespace(ns).Get(e.Ctx, rs.Name, metav1.GetOptions{})
	if err != nil || gotRS.DeletionTimestamp == nil || !slices.Contains(gotRS.Finalizers, metav1.FinalizerDeleteDependents) {
		t.Fatalf("replicaset must be deleting in the foreground too: %v, %+v", err, gotRS.ObjectMeta)
	}

	// Let the pods go (as their kubelet would after stopping them).
	ps, _ := pods(e, ns)
	for _, p := range ps {
		if _, err := e.CS.Pods.Namespace(ns).Patch(e.Ctx, p.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "deployment gone last", func() (bool, error) {
		_, err := e.CS.Deployments.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
		if err == nil {
			return false, nil
		}
		if !apierrors.IsNotFound(err) {
			return false, err
		}
		// The owner is gone: nothing it owned (transitively) may remain.
		_, r, p, err := count(e, ns)
		if err != nil {
			return false, err
		}
		if r+p != 0 {
			t.Fatalf("deployment deleted while %d replicasets and %d pods remained", r, p)
		}
		return true, nil
	})
}

func TestCascadeOrphan(t *testing.T) {
	e := start(t)
	ns := e.Namespace("gc-orphan")
	_, rs := chain(t, e, ns)
	deleteWith(t, e, ns, "web", metav1.DeletePropagationOrphan)
	testenv.Eventually(t, "deployment gone", func() (bool, error) {
		_, err := e.CS.Deployments.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	barrier(t, e, ns)
	got, err := e.CS.ReplicaSets.Namespace(ns).Get(e.Ctx, rs.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("orphaned replicaset: %v", err)
	}
	if len(got.OwnerReferences) != 0 {
		t.Errorf("orphaned replicaset still has owners %+v", got.OwnerReferences)
	}
	ps, err := pods(e, ns)
	if err != nil || len(ps) != 2 {
		t.Fatalf("pods after orphaning: %d, %v", len(ps), err)
	}
	for _, p := range ps {
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != rs.UID || p.DeletionTimestamp != nil {
			t.Errorf("pod %s: controller %+v, deleting %v", p.Name, ref, p.DeletionTimestamp)
		}
	}
}

func TestSharedAndDanglingOwners(t *testing.T) {
	e := start(t)
	ns := e.Namespace("gc-shared")
	cms := e.CS.ConfigMaps.Namespace(ns)
	mk := func(name string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
		cm, err := cms.Create(e.Ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm
	}
	a, b := mk("a"), mk("b")
	shared := mk("shared", ownerRef("ConfigMap", "v1", a, false), ownerRef("ConfigMap", "v1", b, false))
	ghost := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "never-existed", UID: types.UID("00000000-dead")}
	mk("dangling", ghost)

	testenv.Eventually(t, "object with a dangling owner collected", func() (bool, error) {
		_, err := cms.Get(e.Ctx, "dangling", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err := cms.Delete(e.Ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "reference to deleted owner a dropped", func() (bool, error) {
		got, err := cms.Get(e.Ctx, "shared", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if got.UID != shared.UID {
			return false, fmt.Errorf("shared was recreated")
		}
		return len(got.OwnerReferences) == 1 && got.OwnerReferences[0].UID == b.UID, nil
	})
	if err := cms.Delete(e.Ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "shared collected once its last owner is gone", func() (bool, error) {
		_, err := cms.Get(e.Ctx, "shared", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

package apiserver_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestIntegrationNamespaces covers the built-in namespaces, the kubernetes
// Service, and the namespace lifecycle: no content in missing or
// terminating namespaces.
func TestIntegrationNamespaces(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)

	t.Run("system namespaces", func(t *testing.T) {
		for _, n := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
			ns, err := cs.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				t.Errorf("namespace %s: %v", n, err)
				continue
			}
			if ns.Status.Phase != corev1.NamespaceActive {
				t.Errorf("namespace %s phase %q", n, ns.Status.Phase)
			}
		}
	})

	t.Run("kubernetes service", func(t *testing.T) {
		svc, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP != "10.96.0.1" {
			t.Errorf("kubernetes service clusterIP %q, want 10.96.0.1", svc.Spec.ClusterIP)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 {
			t.Errorf("kubernetes service ports %+v, want 443", svc.Spec.Ports)
		}
		ep, err := cs.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := s.URL[len("https://"):]
		if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 1 || len(ep.Subsets[0].Ports) != 1 ||
			fmt.Sprintf("%s:%d", ep.Subsets[0].Addresses[0].IP, ep.Subsets[0].Ports[0].Port) != want {
			t.Errorf("kubernetes endpoints %+v, want %s", ep.Subsets, want)
		}
	})

	t.Run("create in missing namespace", func(t *testing.T) {
		_, err := cs.CoreV1().ConfigMaps("nope").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
		itWantStatus(t, err, 404, metav1.StatusReasonNotFound)
		_, err = cs.CoreV1().Pods("nope").Create(ctx, itPod("x", nil), metav1.CreateOptions{})
		itWantStatus(t, err, 404, metav1.StatusReasonNotFound)
		if resp, err := s.EtcdClient().Get(ctx, "/registry/configmaps/nope/", clientPrefix()...); err != nil || len(resp.Kvs) != 0 {
			t.Errorf("refused create wrote to etcd: %v", err)
		}
	})

	t.Run("terminating namespace", func(t *testing.T) {
		itNamespace(t, cs, "doomed")
		cms := cs.CoreV1().ConfigMaps("doomed")
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := cs.CoreV1().Namespaces().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		ns, err := cs.CoreV1().Namespaces().Get(ctx, "doomed", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("namespace gone before its content was cleaned up: %v", err)
		}
		if ns.Status.Phase != corev1.NamespaceTerminating || ns.DeletionTimestamp == nil {
			t.Fatalf("deleted namespace: phase %q deletionTimestamp %v", ns.Status.Phase, ns.DeletionTimestamp)
		}
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{})
		itWantStatus(t, err, 403, metav1.StatusReasonForbidden)
		// Existing content can still be changed and deleted (that is how
		// the namespace controller empties it).
		cm, err := cms.Get(ctx, "before", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data = map[string]string{"k": "v"}
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Errorf("update in terminating namespace: %v", err)
		}
		if err := cms.Delete(ctx, "before", metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete in terminating namespace: %v", err)
		}
		// An ordinary update cannot drop spec.finalizers ...
		ns.Spec.Finalizers = nil
		ns, err = cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ns.Spec.Finalizers) == 0 {
			t.Fatalf("a plain update removed the namespace's spec.finalizers")
		}
		// ... only /finalize can, and then the namespace is gone.
		ns.Spec.Finalizers = nil
		if _, err := cs.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx, "doomed", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("finalized namespace: %v, want NotFound", err)
		}
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{})
		itWantStatus(t, err, 404, metav1.StatusReasonNotFound)
	})

	// A namespace deleted and created again under the same name takes
	// content at once: the lifecycle check must not act on a stale
	// "Terminating" it remembers from before.
	t.Run("recreated namespace", func(t *testing.T) {
		for i := range 5 {
			itNamespace(t, cs, "again")
			if err := cs.CoreV1().Namespaces().Delete(ctx, "again", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			ns, err := cs.CoreV1().Namespaces().Get(ctx, "again", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ns.Spec.Finalizers = nil
			if _, err := cs.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			itNamespace(t, cs, "again")
			if _, err := cs.CoreV1().ConfigMaps("again").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("cm-", i)}},
				metav1.CreateOptions{}); err != nil {
				t.Fatalf("round %d: create in a re-created namespace: %v", i, err)
			}
			if err := cs.CoreV1().ConfigMaps("again").Delete(ctx, fmt.Sprint("cm-", i), metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := cs.CoreV1().Namespaces().Delete(ctx, "again", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			ns, err = cs.CoreV1().Namespaces().Get(ctx, "again", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ns.Spec.Finalizers = nil
			if _, err := cs.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

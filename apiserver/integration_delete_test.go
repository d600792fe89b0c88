package apiserver_test

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestIntegrationDeleteSemantics covers propagation policies, finalizers,
// graceful pod deletion and delete preconditions.
func TestIntegrationDeleteSemantics(t *testing.T) {
	s := apiservertest.Start(t)
	itBodyEncodings(t, s, func(t *testing.T, cs *kubernetes.Clientset, sfx string) {
		ctx := itCtx(t)
		ns := "del-" + sfx
		itNamespace(t, cs, ns)
		cms := cs.CoreV1().ConfigMaps(ns)
		pods := cs.CoreV1().Pods(ns)
		newCM := func(t *testing.T, name string, finalizers ...string) *corev1.ConfigMap {
			t.Helper()
			cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: finalizers}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return cm
		}

		for _, tc := range []struct {
			policy    metav1.DeletionPropagation
			finalizer string
		}{
			{metav1.DeletePropagationForeground, metav1.FinalizerDeleteDependents},
			{metav1.DeletePropagationOrphan, metav1.FinalizerOrphanDependents},
		} {
			t.Run(string(tc.policy), func(t *testing.T) {
				name := "prop-" + strings.ToLower(string(tc.policy))
				newCM(t, name)
				if err := cms.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &tc.policy}); err != nil {
					t.Fatal(err)
				}
				cm, err := cms.Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("object is gone after a %s delete; it must wait for the garbage collector: %v", tc.policy, err)
				}
				if cm.DeletionTimestamp == nil || !slices.Contains(cm.Finalizers, tc.finalizer) {
					t.Errorf("%s delete: deletionTimestamp %v finalizers %v, want a timestamp and %q", tc.policy, cm.DeletionTimestamp, cm.Finalizers, tc.finalizer)
				}
				// The garbage collector's part: drop the finalizer; the
				// object goes.
				cm.Finalizers = nil
				if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := cms.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("after removing %s: get = %v, want NotFound", tc.finalizer, err)
				}
			})
		}

		t.Run("custom finalizer", func(t *testing.T) {
			newCM(t, "held", "example.com/hold", "example.com/second")
			if err := cms.Delete(ctx, "held", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			cm, err := cms.Get(ctx, "held", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("finalized object is gone at once: %v", err)
			}
			if cm.DeletionTimestamp == nil {
				t.Fatalf("no deletionTimestamp on a deleted object held by finalizers")
			}
			ts := cm.DeletionTimestamp
			// A second delete changes nothing and keeps the timestamp.
			if err := cms.Delete(ctx, "held", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			cm, err = cms.Get(ctx, "held", metav1.GetOptions{})
			if err != nil || !cm.DeletionTimestamp.Equal(ts) {
				t.Fatalf("second delete: %v %v (timestamp was %v)", cm.DeletionTimestamp, err, ts)
			}
			// The deletion timestamp cannot be cleared by an update.
			cm.DeletionTimestamp = nil
			cm.Finalizers = []string{"example.com/hold"}
			cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if cm.DeletionTimestamp == nil {
				t.Errorf("update cleared deletionTimestamp")
			}
			cm.Finalizers = nil
			if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := cms.Get(ctx, "held", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("after the last finalizer went: %v, want NotFound", err)
			}
			if resp, err := s.EtcdClient().Get(ctx, "/registry/configmaps/"+ns+"/held"); err != nil || len(resp.Kvs) != 0 {
				t.Errorf("etcd still has the finalized object (%v)", err)
			}
		})

		t.Run("bound pod graceful", func(t *testing.T) {
			if _, err := pods.Create(ctx, itPod("bound", nil), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "bound"},
				Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			p, err := pods.Get(ctx, "bound", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("bound pod vanished without its kubelet: %v", err)
			}
			if p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 30 {
				t.Fatalf("bound pod: deletionTimestamp %v deletionGracePeriodSeconds %v, want set and 30", p.DeletionTimestamp, p.DeletionGracePeriodSeconds)
			}
			// Asking for a longer grace period does not extend it.
			if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: itPtr(int64(60))}); err != nil {
				t.Fatal(err)
			}
			if p, err := pods.Get(ctx, "bound", metav1.GetOptions{}); err != nil || *p.DeletionGracePeriodSeconds != 30 {
				t.Fatalf("longer grace: %v %v", p.DeletionGracePeriodSeconds, err)
			}
			// A negative grace period is the shortest graceful one (1 s), as
			// in Kubernetes, not a force delete.
			if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: itPtr(int64(-1))}); err != nil {
				t.Fatal(err)
			}
			if p, err := pods.Get(ctx, "bound", metav1.GetOptions{}); err != nil || *p.DeletionGracePeriodSeconds != 1 {
				t.Fatalf("negative grace: %v %v, want the pod kept with 1", p.DeletionGracePeriodSeconds, err)
			}
			// The kubelet confirms with grace 0.
			if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: itPtr(int64(0))}); err != nil {
				t.Fatal(err)
			}
			if _, err := pods.Get(ctx, "bound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("after grace-0 delete: %v, want NotFound", err)
			}
		})

		t.Run("unbound pod goes at once", func(t *testing.T) {
			if _, err := pods.Create(ctx, itPod("unbound", nil), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := pods.Delete(ctx, "unbound", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := pods.Get(ctx, "unbound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("unbound pod after delete: %v, want NotFound", err)
			}
		})

		t.Run("preconditions", func(t *testing.T) {
			cm := newCM(t, "pre")
			wrongUID := types.UID("00000000-0000-0000-0000-000000000000")
			err := cms.Delete(ctx, "pre", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &wrongUID}})
			itWantStatus(t, err, 409, metav1.StatusReasonConflict)
			oldRV := "1"
			err = cms.Delete(ctx, "pre", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &oldRV}})
			itWantStatus(t, err, 409, metav1.StatusReasonConflict)
			if _, err := cms.Get(ctx, "pre", metav1.GetOptions{}); err != nil {
				t.Fatalf("a refused delete removed the object: %v", err)
			}
			err = cms.Delete(ctx, "pre", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID, ResourceVersion: &cm.ResourceVersion}})
			if err != nil {
				t.Fatalf("delete with matching preconditions: %v", err)
			}
			if _, err := cms.Get(ctx, "pre", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("after delete: %v", err)
			}
		})

		t.Run("bad options", func(t *testing.T) {
			newCM(t, "badopts")
			bad := metav1.DeletionPropagation("Sideways")
			err := cms.Delete(ctx, "badopts", metav1.DeleteOptions{PropagationPolicy: &bad})
			itWantStatus(t, err, 400, metav1.StatusReasonBadRequest)
			err = cms.Delete(ctx, "missing", metav1.DeleteOptions{})
			itWantStatus(t, err, 404, metav1.StatusReasonNotFound)
		})
	})
}

package apiserver_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// itBoundPod is itPod already on a node, so its deletion is graceful.
func itBoundPod(name, node string) *corev1.Pod {
	p := itPod(name, map[string]string{"app": "evict"})
	p.Spec.NodeName = node
	return p
}

func itEviction(name string, opts *metav1.DeleteOptions) *policyv1.Eviction {
	return &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name}, DeleteOptions: opts}
}

func itDisruptionTarget(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.DisruptionTarget {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// TestIntegrationEvictionDiscovery checks what kubectl drain looks for
// before it evicts: pods/eviction in /api/v1 naming policy/v1 Eviction.
func TestIntegrationEvictionDiscovery(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	list, err := cs.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	var found *metav1.APIResource
	for i, r := range list.APIResources {
		if r.Name == "pods/eviction" {
			found = &list.APIResources[i]
		}
	}
	if found == nil {
		t.Fatal("/api/v1 lacks pods/eviction")
	}
	if found.Group != "policy" || found.Version != "v1" || found.Kind != "Eviction" || !found.Namespaced ||
		!slices.Equal(found.Verbs, metav1.Verbs{"create"}) {
		t.Errorf("pods/eviction = %+v, want group policy, version v1, kind Eviction, namespaced, verbs [create]", *found)
	}
}

// TestIntegrationEviction drives pods/eviction through client-go (protobuf
// and JSON bodies) and raw HTTP: a graceful delete with the Eviction's
// options, 201 Success, 404 for a missing pod, 400 for a name mismatch,
// preconditions and dry run honoured.
func TestIntegrationEviction(t *testing.T) {
	s := apiservertest.Start(t)
	itBodyEncodings(t, s, func(t *testing.T, cs *kubernetes.Clientset, sfx string) {
		ctx := itCtx(t)
		pods := cs.CoreV1().Pods("default")

		t.Run("graceful", func(t *testing.T) {
			name := "graceful-" + sfx
			if _, err := pods.Create(ctx, itBoundPod(name, "node-1"), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := pods.EvictV1(ctx, itEviction(name, nil)); err != nil {
				t.Fatalf("evict: %v", err)
			}
			// No kubelet confirms the stop: the pod lingers Terminating
			// with the default grace period, marked as evicted.
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("after eviction with the default grace period: %v", err)
			}
			if p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 30 {
				t.Errorf("deletion %v grace %v, want a deletionTimestamp and 30 s", p.DeletionTimestamp, p.DeletionGracePeriodSeconds)
			}
			c := itDisruptionTarget(p)
			if c == nil || c.Status != corev1.ConditionTrue || c.Reason != "EvictionByEvictionAPI" || c.Message != "Eviction API: evicting" {
				t.Errorf("DisruptionTarget condition %+v, want True/EvictionByEvictionAPI", c)
			}
			// Evicting again may shorten the grace period: 0 removes it.
			if err := pods.EvictV1(ctx, itEviction(name, &metav1.DeleteOptions{GracePeriodSeconds: itPtr(int64(0))})); err != nil {
				t.Fatalf("second eviction: %v", err)
			}
			if _, err := pods.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("after eviction with gracePeriodSeconds 0: %v, want NotFound", err)
			}
		})

		t.Run("policy/v1 client", func(t *testing.T) {
			name := "policy-" + sfx
			if _, err := pods.Create(ctx, itBoundPod(name, "node-1"), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			ev := itEviction(name, &metav1.DeleteOptions{GracePeriodSeconds: itPtr(int64(0))})
			ev.Namespace = "default" // this client builds the URL from it
			if err := cs.PolicyV1().Evictions("default").Evict(ctx, ev); err != nil {
				t.Fatalf("evict: %v", err)
			}
			if _, err := pods.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("after eviction: %v, want NotFound", err)
			}
		})

		t.Run("unbound pod goes at once", func(t *testing.T) {
			name := "unbound-" + sfx
			if _, err := pods.Create(ctx, itPod(name, nil), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := pods.EvictV1(ctx, itEviction(name, nil)); err != nil {
				t.Fatalf("evict: %v", err)
			}
			if _, err := pods.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("after eviction: %v, want NotFound", err)
			}
		})

		t.Run("missing pod", func(t *testing.T) {
			err := pods.EvictV1(ctx, itEviction("no-such-pod", nil))
			st := itWantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
			if st.Details == nil || st.Details.Name != "no-such-pod" || st.Details.Kind != "pods" {
				t.Errorf("details %+v, want pods no-such-pod", st.Details)
			}
		})

		t.Run("preconditions", func(t *testing.T) {
			name := "precond-" + sfx
			p, err := pods.Create(ctx, itBoundPod(name, "node-1"), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			zero := itPtr(int64(0))
			wrongUID := types.UID("00000000-0000-4000-8000-000000000000")
			err = pods.EvictV1(ctx, itEviction(name, &metav1.DeleteOptions{GracePeriodSeconds: zero,
				Preconditions: &metav1.Preconditions{UID: &wrongUID}}))
			itWantStatus(t, err, http.StatusConflict, metav1.StatusReasonConflict)
			stale := "1"
			err = pods.EvictV1(ctx, itEviction(name, &metav1.DeleteOptions{GracePeriodSeconds: zero,
				Preconditions: &metav1.Preconditions{ResourceVersion: &stale}}))
			itWantStatus(t, err, http.StatusConflict, metav1.StatusReasonConflict)
			after, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("after failed preconditions: %v", err)
			}
			if after.ResourceVersion != p.ResourceVersion || after.DeletionTimestamp != nil {
				t.Errorf("failed preconditions changed the pod: rv %s -> %s, deletionTimestamp %v",
					p.ResourceVersion, after.ResourceVersion, after.DeletionTimestamp)
			}
			err = pods.EvictV1(ctx, itEviction(name, &metav1.DeleteOptions{GracePeriodSeconds: zero,
				Preconditions: &metav1.Preconditions{UID: &p.UID, ResourceVersion: &p.ResourceVersion}}))
			if err != nil {
				t.Fatalf("evict with matching preconditions: %v", err)
			}
			if _, err := pods.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("after eviction: %v, want NotFound", err)
			}
		})

		t.Run("dry run", func(t *testing.T) {
			name := "dry-" + sfx
			p, err := pods.Create(ctx, itBoundPod(name, "node-1"), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			err = pods.EvictV1(ctx, itEviction(name, &metav1.DeleteOptions{GracePeriodSeconds: itPtr(int64(0)), DryRun: []string{metav1.DryRunAll}}))
			if err != nil {
				t.Fatalf("dry-run eviction: %v", err)
			}
			after, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("after dry-run eviction: %v", err)
			}
			if after.ResourceVersion != p.ResourceVersion || itDisruptionTarget(after) != nil {
				t.Errorf("dry run changed the pod: rv %s -> %s, conditions %+v", p.ResourceVersion, after.ResourceVersion, after.Status.Conditions)
			}
			err = pods.EvictV1(ctx, itEviction("no-such-pod", &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}))
			itWantStatus(t, err, http.StatusNotFound, metav1.StatusReasonNotFound)
		})
	})

	t.Run("raw HTTP", func(t *testing.T) {
		c := newClient(t, s)
		cs := itClientset(t, s, true)
		ctx := itCtx(t)
		pods := cs.CoreV1().Pods("default")
		for _, n := range []string{"raw-1", "raw-beta", "raw-dry"} {
			if _, err := pods.Create(ctx, itBoundPod(n, "node-1"), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		path := func(name string) string { return "/api/v1/namespaces/default/pods/" + name + "/eviction" }
		body := func(apiVersion, name, opts string) string {
			b := fmt.Sprintf(`{"apiVersion":%q,"kind":"Eviction","metadata":{"name":%q}`, apiVersion, name)
			if opts != "" {
				b += `,"deleteOptions":` + opts
			}
			return b + "}"
		}

		code, st := c.do("POST", path("raw-1"), "application/json", body("policy/v1", "raw-1", `{"gracePeriodSeconds":0}`))
		if code != http.StatusCreated || st["kind"] != "Status" || st["apiVersion"] != "v1" || st["status"] != "Success" || st["code"] != float64(201) {
			t.Errorf("eviction: %d %v, want 201 and a Success Status with code 201", code, st)
		}
		if _, err := pods.Get(ctx, "raw-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("after eviction: %v, want NotFound", err)
		}

		code, st = c.do("POST", path("raw-beta"), "application/json", body("policy/v1beta1", "raw-beta", `{"gracePeriodSeconds":0}`))
		if code != http.StatusCreated {
			t.Errorf("policy/v1beta1 eviction: %d %v, want 201", code, st)
		}

		// ?dryRun=All on the request works like deleteOptions.dryRun.
		code, st = c.do("POST", path("raw-dry")+"?dryRun=All", "application/json", body("policy/v1", "raw-dry", `{"gracePeriodSeconds":0}`))
		if code != http.StatusCreated {
			t.Errorf("dry-run eviction: %d %v, want 201", code, st)
		}
		if p, err := pods.Get(ctx, "raw-dry", metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
			t.Errorf("after a dry-run eviction: %v, deleting %v; want the pod untouched", err, p.DeletionTimestamp)
		}

		for _, tc := range []struct {
			what, method, path, body string
			code                     int
			reason                   string
		}{
			{"name mismatch", "POST", path("raw-dry"), body("policy/v1", "other", ""), 400, "BadRequest"},
			{"no name", "POST", path("raw-dry"), body("policy/v1", "", ""), 400, "BadRequest"},
			{"namespace mismatch", "POST", path("raw-dry"), `{"metadata":{"name":"raw-dry","namespace":"kube-system"}}`, 400, "BadRequest"},
			{"wrong kind", "POST", path("raw-dry"), `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"raw-dry"}}`, 400, "BadRequest"},
			{"bad propagation", "POST", path("raw-dry"), body("policy/v1", "raw-dry", `{"propagationPolicy":"Sideways"}`), 400, "BadRequest"},
			{"bad dry run", "POST", path("raw-dry"), body("policy/v1", "raw-dry", `{"dryRun":["Some"]}`), 400, "BadRequest"},
			{"empty body", "POST", path("raw-dry"), ``, 400, "BadRequest"},
			{"missing pod", "POST", path("nope"), body("policy/v1", "nope", ""), 404, "NotFound"},
			{"get", "GET", path("raw-dry"), ``, 405, "MethodNotAllowed"},
			{"eviction of a config map", "POST", "/api/v1/namespaces/default/configmaps/x/eviction", body("policy/v1", "x", ""), 404, "NotFound"},
		} {
			code, st := c.do(tc.method, tc.path, "application/json", tc.body)
			if code != tc.code || st["reason"] != tc.reason {
				t.Errorf("%s: %d %v, want %d %s", tc.what, code, st, tc.code, tc.reason)
			}
		}
		code, st = c.do("POST", path("raw-dry"), "application/json", body("policy/v1", "other", ""))
		if msg, _ := st["message"].(string); code != 400 || msg != "name in URL does not match name in Eviction object" {
			t.Errorf("name mismatch message %q", msg)
		}
		if p, err := pods.Get(ctx, "raw-dry", metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
			t.Errorf("after rejected evictions: %v, deleting %v; want the pod untouched", err, p.DeletionTimestamp)
		}
	})
}

package endpoints_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/endpoints"
	"github.com/minik8s/minik8s/controllers/internal/testenv"
)

// describe renders Endpoints by pod name: "ports|ready|notready" per
// subset, subsets sorted.
func describe(ep *corev1.Endpoints) string {
	var subs []string
	for _, s := range ep.Subsets {
		var ports, ready, notReady []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d", p.Name, p.Port))
		}
		for _, a := range s.Addresses {
			ready = append(ready, a.TargetRef.Name)
		}
		for _, a := range s.NotReadyAddresses {
			notReady = append(notReady, a.TargetRef.Name)
		}
		sort.Strings(ready)
		sort.Strings(notReady)
		subs = append(subs, strings.Join(ports, ",")+"|"+strings.Join(ready, ",")+"|"+strings.Join(notReady, ","))
	}
	sort.Strings(subs)
	return strings.Join(subs, " ")
}

func TestEndpointsFollowPods(t *testing.T) {
	e := testenv.Start(t)
	ns := e.Namespace("ep")
	k := testenv.NewFakeKubelet(e, "node-1")
	k.Ready = func(p *corev1.Pod) bool { return p.Labels["ready"] != "no" }
	k.Run()
	cs := e.Clientset(endpoints.Name)
	f := e.Factory(cs)
	c, err := endpoints.New(f, cs, e.Recorder(cs, endpoints.Name), controllers.Options{Logger: testenv.Logger(endpoints.Name)})
	if err != nil {
		t.Fatal(err)
	}
	e.Run(f, func(ctx context.Context) { _ = c.Run(ctx, 2) })

	// A service without a selector: its Endpoints are hand-made and must stay.
	manual := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "manual"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 5432}}}}
	if _, err := e.CS.Services.Namespace(ns).Create(e.Ctx, manual, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	manualEP := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "manual"}, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}}, Ports: []corev1.EndpointPort{{Port: 5432}}}}}
	if _, err := e.CS.Endpoints.Namespace(ns).Create(e.Ctx, manualEP, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"team": "a"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9100)},
		}}}
	if _, err := e.CS.Services.Namespace(ns).Create(e.Ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mkPod := func(name, ready string, port int32) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web", "ready": ready}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "minik8s.local/web:v1"}}}}
		if port != 0 {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: port}}
		}
		if _, err := e.CS.Pods.Namespace(ns).Create(e.Ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mkPod("a", "yes", 8080)
	mkPod("b", "yes", 8081)
	mkPod("c", "no", 0)
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"app": "db"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "minik8s.local/busybox:1.35"}}}}
	if _, err := e.CS.Pods.Namespace(ns).Create(e.Ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	want := func(what, expect string) {
		t.Helper()
		testenv.Eventually(t, what, func() (bool, error) {
			ep, err := e.CS.Endpoints.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if got := describe(ep); got != expect {
				return false, fmt.Errorf("endpoints %q, want %q", got, expect)
			}
			return ep.Labels["team"] == "a", nil
		})
	}
	want("all pods listed", "http:8080,metrics:9100|a| http:8081,metrics:9100|b| metrics:9100||c")

	// Readiness changes move addresses between the lists.
	relabel := func(pod, ready string) {
		patch := fmt.Appendf(nil, `{"metadata":{"labels":{"ready":%q}}}`, ready)
		if _, err := e.CS.Pods.Namespace(ns).Patch(e.Ctx, pod, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	relabel("b", "no")
	relabel("c", "yes")
	want("b not ready, c ready", "http:8080,metrics:9100|a| http:8081,metrics:9100||b metrics:9100|c|")

	// A deleted pod leaves at once (graceful deletion starts the moment it is asked for).
	if err := e.CS.Pods.Namespace(ns).Delete(e.Ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want("a removed", "http:8081,metrics:9100||b metrics:9100|c|")

	// Hand edits to managed Endpoints are repaired.
	ep, err := e.CS.Endpoints.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ep.Subsets = nil
	if _, err := e.CS.Endpoints.Namespace(ns).Update(e.Ctx, ep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want("hand edit repaired", "http:8081,metrics:9100||b metrics:9100|c|")

	// Deleting the service deletes its Endpoints.
	if err := e.CS.Services.Namespace(ns).Delete(e.Ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "endpoints of deleted service gone", func() (bool, error) {
		_, err := e.CS.Endpoints.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})

	got, err := e.CS.Endpoints.Namespace(ns).Get(e.Ctx, "manual", metav1.GetOptions{})
	if err != nil || len(got.Subsets) != 1 || got.Subsets[0].Addresses[0].IP != "192.0.2.10" {
		t.Errorf("hand-made endpoints of a selector-less service changed: %+v, %v", got, err)
	}
}

package manager_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/internal/testenv"
	"github.com/minik8s/minik8s/controllers/manager"
)

const (
	v1 = "minik8s.local/web:v1"
	v2 = "minik8s.local/web:v2"
)

// startManager runs a controller-manager replica with short leader
// election timings (and whatever tune changes); kill stops it the way a
// crash would (its Lease is not handed over).
func startManager(t *testing.T, e *testenv.Env, name string, tune ...func(*manager.Options)) (m *manager.Manager, kill func()) {
	t.Helper()
	o := manager.DefaultOptions()
	for _, f := range tune {
		f(&o)
	}
	o.Kubeconfig = e.Server.Kubeconfig
	o.Identity = name
	o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 3*time.Second, 2*time.Second, 500*time.Millisecond
	o.ReleaseOnCancel = false
	o.Address = "127.0.0.1:0"
	o.KubeAPIQPS = 0
	m, err := manager.New(o, testenv.Logger("manager-"+name))
	if err != nil {
		t.Fatal(err)
	}
	kill = testenv.Go(t, e.Ctx, func(ctx context.Context) {
		if err := m.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("manager %s: %v", name, err)
		}
	})
	return m, kill
}

func leaseHolder(e *testenv.Env) string {
	l, err := e.CS.Leases.Namespace("kube-system").Get(e.Ctx, "kube-controller-manager", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestFailoverMidRollout runs two controller-managers; the leader is
// killed in the middle of a 10-replica rolling update and the standby must
// take over and finish it without ever exceeding replicas+maxSurge pods or
// dropping below replicas-maxUnavailable ready ones.
func TestFailoverMidRollout(t *testing.T) {
	e := testenv.Start(t)
	k := testenv.NewFakeKubelet(e, "node-1", "node-2")
	k.ReadyDelay = 500 * time.Millisecond
	k.Run()

	a, killA := startManager(t, e, "a")
	testenv.Eventually(t, "a leads", func() (bool, error) { return strings.HasPrefix(leaseHolder(e), "a_") && a.IsLeader(), nil })
	b, _ := startManager(t, e, "b")

	ns := e.Namespace("failover")
	ten := int32(10)
	surge, unavail := intstr.FromInt32(2), intstr.FromInt32(1)
	lbl := map[string]string{"app": "web"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
		Replicas: &ten, Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavail}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: v1,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}},
	}}
	if _, err := e.CS.Deployments.Namespace(ns).Create(e.Ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{Selector: lbl,
		Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}}}
	if _, err := e.CS.Services.Namespace(ns).Create(e.Ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, e, ns, v1)

	// Every pod event from here on must respect the bounds.
	var mu sync.Mutex
	var violations []string
	pods := map[string]*corev1.Pod{}
	list, err := e.CS.Pods.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		pods[list.Items[i].Name] = &list.Items[i]
	}
	w, err := e.CS.Pods.Namespace(ns).Watch(e.Ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	stopWatch := testenv.Go(t, e.Ctx, func(ctx context.Context) {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				p := ev.Object.(*corev1.Pod)
				mu.Lock()
				if ev.Type == watch.Deleted {
					delete(pods, p.Name)
				} else {
					pods[p.Name] = p
				}
				live, ready := 0, 0
				for _, p := range pods {
					if controllers.IsPodActive(p) {
						live++
						if controllers.IsPodReady(p) {
							ready++
						}
					}
				}
				if live > 12 || ready < 9 {
					violations = append(violations, fmt.Sprintf("%s %s: %d pods, %d ready", ev.Type, p.Name, live, ready))
				}
				mu.Unlock()
			}
		}
	})

	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"` + v2 + `"}]}}}}`)
	if _, err := e.CS.Deployments.Namespace(ns).Patch(e.Ctx, "web", "application/strategic-merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "rollout under way", func() (bool, error) {
		l, err := e.CS.Pods.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		readyV2, liveV1 := 0, 0
		for _, p := range l.Items {
			if !controllers.IsPodActive(&p) {
				continue
			}
			if p.Spec.Containers[0].Image == v2 && controllers.IsPodReady(&p) {
				readyV2++
			}
			if p.Spec.Containers[0].Image == v1 {
				liveV1++
			}
		}
		return readyV2 >= 2 && liveV1 >= 4, nil
	})
	killA()
	testenv.Eventually(t, "b takes over", func() (bool, error) { return strings.HasPrefix(leaseHolder(e), "b_") && b.IsLeader(), nil })
	waitRollout(t, e, ns, v2)
	stopWatch()
	mu.Lock()
	if len(violations) > 0 {
		t.Errorf("bounds violated %d times, first: %v", len(violations), violations[:min(5, len(violations))])
	}
	mu.Unlock()

	// The standby runs the other controllers too.
	testenv.Eventually(t, "endpoints list the 10 v2 pods", func() (bool, error) {
		ep, err := e.CS.Endpoints.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
		if err != nil || len(ep.Subsets) != 1 {
			return false, err
		}
		return len(ep.Subsets[0].Addresses) == 10 && ep.Subsets[0].Ports[0].Port == 8080, nil
	})
	if code, body := get(t, "http://"+b.Addr()+"/readyz"); code != 200 || !strings.Contains(body, "leader") {
		t.Errorf("/readyz = %d %q", code, body)
	}
	if code, body := get(t, "http://"+b.Addr()+"/metrics"); code != 200 || !strings.Contains(body, "replicaset-controller") {
		t.Errorf("/metrics = %d, missing workqueue metrics of the controllers", code)
	}
}

// waitRollout waits for the Deployment web to run exactly 10 ready pods
// of image, all from one ReplicaSet, with its status complete.
func waitRollout(t *testing.T, e *testenv.Env, ns, image string) {
	t.Helper()
	testenv.Eventually(t, "rollout to "+image, func() (bool, error) {
		d, err := e.CS.Deployments.Namespace(ns).Get(e.Ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := d.Status
		if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != 10 || st.Replicas != 10 || st.AvailableReplicas != 10 {
			return false, fmt.Errorf("status %+v", st)
		}
		l, err := e.CS.Pods.Namespace(ns).List(e.Ctx, metav1.ListOptions{LabelSelector: labels.Set{"app": "web"}.String()})
		if err != nil {
			return false, err
		}
		owners := map[string]bool{}
		n := 0
		for _, p := range l.Items {
			if !controllers.IsPodActive(&p) {
				continue
			}
			if p.Spec.Containers[0].Image != image || !controllers.IsPodReady(&p) {
				return false, fmt.Errorf("pod %s: %s ready=%v", p.Name, p.Spec.Containers[0].Image, controllers.IsPodReady(&p))
			}
			owners[metav1.GetControllerOf(&p).Name] = true
			n++
		}
		return n == 10 && len(owners) == 1, fmt.Errorf("%d pods from %d replica sets", n, len(owners))
	})
}

// TestPodGCRuns: the manager runs pod GC with its flags' settings: the
// pods of a deleted node are force-deleted after --pod-gc-orphan-quarantine
// (shortened here), and terminated pods beyond
// --terminated-pod-gc-threshold go.
func TestPodGCRuns(t *testing.T) {
	e := testenv.Start(t)
	startManager(t, e, "a", func(o *manager.Options) {
		o.PodGCOrphanQuarantine = time.Second
		o.TerminatedPodGCThreshold = 1
		o.Controllers = []string{"podgc"}
	})
	ns := e.Namespace("podgc")
	if _, err := e.CS.Nodes.Create(e.Ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gone"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := e.CS.Pods.Namespace(ns)
	for _, name := range []string{"orphan", "done-1", "done-2"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{NodeName: "gone", Containers: []corev1.Container{{Name: "c", Image: v1}}}}
		if name != "orphan" {
			p.Spec.NodeName = ""
		}
		created, err := pods.Create(e.Ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if name != "orphan" {
			created.Status.Phase = corev1.PodSucceeded
			if _, err := pods.UpdateStatus(e.Ctx, created, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.CS.Nodes.Delete(e.Ctx, "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the orphan and one terminated pod are deleted", func() (bool, error) {
		l, err := pods.List(e.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var names []string
		for _, p := range l.Items {
			names = append(names, p.Name)
		}
		return len(names) == 1 && strings.HasPrefix(names[0], "done-"), fmt.Errorf("pods %v", names)
	})
}

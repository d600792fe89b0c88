package deployment_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/deployment"
	"github.com/minik8s/minik8s/controllers/garbagecollector"
	"github.com/minik8s/minik8s/controllers/internal/testenv"
	"github.com/minik8s/minik8s/controllers/replicaset"
)

// start runs the Deployment, ReplicaSet and garbage collector controllers
// against a fresh API server, plus a fake kubelet on one node.
func start(t *testing.T) (*testenv.Env, *testenv.FakeKubelet) {
	e := testenv.Start(t)
	k := testenv.NewFakeKubelet(e, "node-1", "node-2")
	cs := e.Clientset("controllers")
	f := e.Factory(cs)
	opts := func(n string) controllers.Options { return controllers.Options{Logger: testenv.Logger(n)} }
	dc, err := deployment.New(f, cs, e.Recorder(cs, deployment.Name), opts(deployment.Name))
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
	e.Run(f, func(ctx context.Context) { _ = dc.Run(ctx, 3) }, func(ctx context.Context) { _ = rsc.Run(ctx, 3) },
		func(ctx context.Context) { _ = gc.Run(ctx, 2) })
	return e, k
}

func newDeployment(name string, replicas int32, image string) *appsv1.Deployment {
	lbl := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
			},
		},
	}
}

func create(t *testing.T, e *testenv.Env, ns string, d *appsv1.Deployment) {
	t.Helper()
	if _, err := e.CS.Deployments.Namespace(ns).Create(e.Ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// update applies mutate to the live Deployment, retrying conflicts.
func update(t *testing.T, e *testenv.Env, ns, name string, mutate func(*appsv1.Deployment)) {
	t.Helper()
	client := e.CS.Deployments.Namespace(ns)
	for range 20 {
		d, err := client.Get(e.Ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mutate(d)
		if _, err = client.Update(e.Ctx, d, metav1.UpdateOptions{}); err == nil {
			return
		}
	}
	t.Fatalf("could not update deployment %s", name)
}

func setImage(image string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image }
}

func condition(d *appsv1.Deployment, ct appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == ct {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// waitComplete waits until the rollout of ns/name has finished: every
// replica updated and available, status current, Progressing says so,
// and all active pods run image.
func waitComplete(t *testing.T, e *testenv.Env, ns, name, image string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	testenv.Eventually(t, fmt.Sprintf("rollout of %s to %s complete", name, image), func() (bool, error) {
		var err error
		d, err = e.CS.Deployments.Namespace(ns).Get(e.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		n := *d.Spec.Replicas
		st := d.Status
		if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != n || st.Replicas != n || st.AvailableReplicas != n {
			return false, fmt.Errorf("status %+v", st)
		}
		if c := condition(d, appsv1.DeploymentProgressing); c == nil || c.Reason != deployment.ReasonNewRSAvailable {
			return false, fmt.Errorf("progressing condition %+v", c)
		}
		pods, err := activePods(e, ns, name)
		if err != nil {
			return false, err
		}
		if len(pods) != int(n) {
			return false, fmt.Errorf("%d active pods", len(pods))
		}
		for _, p := range pods {
			if p.Spec.Containers[0].Image != image {
				return false, fmt.Errorf("pod %s runs %s", p.Name, p.Spec.Containers[0].Image)
			}
		}
		return true, nil
	})
	return d
}

func activePods(e *testenv.Env, ns, app string) ([]corev1.Pod, error) {
	l, err := e.CS.Pods.Namespace(ns).List(e.Ctx, metav1.ListOptions{LabelSelector: labels.Set{"app": app}.String()})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if controllers.IsPodActive(&p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// replicaSets returns ns's ReplicaSets sorted by revision.
func replicaSets(e *testenv.Env, ns string) ([]appsv1.ReplicaSet, error) {
	l, err := e.CS.ReplicaSets.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	sort.Slice(l.Items, func(i, j int) bool { return deployment.Revision(&l.Items[i]) < deployment.Revision(&l.Items[j]) })
	return l.Items, nil
}

// podWatcher follows every pod of a namespace through a watch and checks
// a condition on the whole set after each event.
type podWatcher struct {
	mu         sync.Mutex
	pods       map[string]*corev1.Pod
	check      func(pods map[string]*corev1.Pod) string
	violations []string
	events     int
	stop       func()
}

func watchPods(t *testing.T, e *testenv.Env, ns string, check func(map[string]*corev1.Pod) string) *podWatcher {
	t.Helper()
	pw := &podWatcher{pods: map[string]*corev1.Pod{}, check: check}
	list, err := e.CS.Pods.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		pw.pods[list.Items[i].Name] = &list.Items[i]
	}
	w, err := e.CS.Pods.Namespace(ns).Watch(e.Ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	pw.stop = testenv.Go(t, e.Ctx, func(ctx context.Context) {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					pw.mu.Lock()
					pw.violations = append(pw.violations, "watch ended early")
					pw.mu.Unlock()
					return
				}
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				pw.mu.Lock()
				if ev.Type == watch.Deleted {
					delete(pw.pods, p.Name)
				} else {
					pw.pods[p.Name] = p
				}
				pw.events++
				if v := pw.check(pw.pods); v != "" {
					pw.violations = append(pw.violations, fmt.Sprintf("after event %d (%s %s): %s", pw.events, ev.Type, p.Name, v))
				}
				pw.mu.Unlock()
			}
		}
	})
	return pw
}

// finish stops the watcher and fails the test on violations.
func (pw *podWatcher) finish(t *testing.T) {
	t.Helper()
	pw.stop()
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if len(pw.violations) > 0 {
		n := min(len(pw.violations), 10)
		t.Fatalf("%d violations, first %d:\n%s", len(pw.violations), n, strings.Join(pw.violations[:n], "\n"))
	}
}

func imageCounts(pods map[string]*corev1.Pod) (live, ready map[string]int) {
	live, ready = map[string]int{}, map[string]int{}
	for _, p := range pods {
		if !controllers.IsPodActive(p) {
			continue
		}
		img := p.Spec.Containers[0].Image
		live[img]++
		if controllers.IsPodReady(p) {
			ready[img]++
		}
	}
	return live, ready
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

package replicaset_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/internal/testenv"
	"github.com/minik8s/minik8s/controllers/replicaset"
)

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	lbl := map[string]string{"app": name}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "minik8s.local/web:v1"}}},
			},
		},
	}
}

// startController runs a ReplicaSet controller; lw, if set, replaces how
// its pod informer lists and watches.
func startController(e *testenv.Env, lw informer.ListerWatcher) {
	cs := e.Clientset(replicaset.Name)
	f := e.Factory(cs)
	if lw != nil {
		f.InformerFor(typed.PodsResource, lw)
	}
	c, err := replicaset.New(f, cs, e.Recorder(cs, replicaset.Name), controllers.Options{Logger: testenv.Logger(replicaset.Name)})
	if err != nil {
		e.T.Fatal(err)
	}
	e.Run(f, func(ctx context.Context) { _ = c.Run(ctx, 3) })
}

// activePods lists the active pods in ns matching app=name.
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

func waitStatus(t *testing.T, e *testenv.Env, ns, name string, replicas, ready int32) *appsv1.ReplicaSet {
	t.Helper()
	var rs *appsv1.ReplicaSet
	testenv.Eventually(t, fmt.Sprintf("%s/%s status replicas=%d ready=%d", ns, name, replicas, ready), func() (bool, error) {
		var err error
		rs, err = e.CS.ReplicaSets.Namespace(ns).Get(e.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pods, err := activePods(e, ns, name)
		if err != nil {
			return false, err
		}
		st := rs.Status
		return st.ObservedGeneration == rs.Generation && st.Replicas == replicas && st.ReadyReplicas == ready &&
			st.AvailableReplicas == ready && st.FullyLabeledReplicas == replicas && len(pods) == int(replicas), nil
	})
	return rs
}

func scale(t *testing.T, e *testenv.Env, ns, name string, n int32) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)
	if _, err := e.CS.ReplicaSets.Namespace(ns).Patch(e.Ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestReplicaSetScalesAndReports(t *testing.T) {
	e := testenv.Start(t)
	ns := e.Namespace("rs-scale")
	k := testenv.NewFakeKubelet(e, "node-1")
	k.Run()
	startController(e, nil)

	if _, err := e.CS.ReplicaSets.Namespace(ns).Create(e.Ctx, newRS("web", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs := waitStatus(t, e, ns, "web", 3, 3)
	pods, _ := activePods(e, ns, "web")
	for _, p := range pods {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("pod %s controller ref = %+v", p.Name, ref)
		}
	}

	scale(t, e, ns, "web", 5)
	waitStatus(t, e, ns, "web", 5, 5)
	scale(t, e, ns, "web", 1)
	waitStatus(t, e, ns, "web", 1, 1)

	// A pod that disappears is replaced.
	pods, _ = activePods(e, ns, "web")
	zero := int64(0)
	if err := e.CS.Pods.Namespace(ns).Delete(e.Ctx, pods[0].Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "replacement pod", func() (bool, error) {
		now, err := activePods(e, ns, "web")
		return err == nil && len(now) == 1 && now[0].Name != pods[0].Name, err
	})

	// Every decision is an Event on the ReplicaSet.
	testenv.Eventually(t, "SuccessfulCreate and SuccessfulDelete events", func() (bool, error) {
		evs, err := e.CS.Events.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		seen := map[string]bool{}
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Kind == "ReplicaSet" && ev.InvolvedObject.Name == "web" && ev.Source.Component == replicaset.Name {
				seen[ev.Reason] = true
			}
		}
		return seen["SuccessfulCreate"] && seen["SuccessfulDelete"], nil
	})
}

func TestReplicaSetAdoptsAndReleases(t *testing.T) {
	e := testenv.Start(t)
	ns := e.Namespace("rs-adopt")
	k := testenv.NewFakeKubelet(e, "node-1")
	k.Run()
	startController(e, nil)

	// An orphan matching the selector exists before the ReplicaSet.
	rs := newRS("web", 1)
	orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{"app": "web"}}, Spec: rs.Spec.Template.Spec}
	if _, err := e.CS.Pods.Namespace(ns).Create(e.Ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created, err := e.CS.ReplicaSets.Namespace(ns).Create(e.Ctx, rs, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, ns, "web", 1, 1)
	pods, _ := activePods(e, ns, "web")
	if len(pods) != 1 || pods[0].Name != "orphan" {
		t.Fatalf("pods = %v, want only the adopted orphan", pods)
	}
	if ref := metav1.GetControllerOf(&pods[0]); ref == nil || ref.UID != created.UID {
		t.Fatalf("orphan not adopted: owner refs %+v", pods[0].OwnerReferences)
	}

	// Relabelling it out of the selector releases it and a replacement is made.
	patch := []byte(`{"metadata":{"labels":{"app":"debug"}}}`)
	if _, err := e.CS.Pods.Namespace(ns).Patch(e.Ctx, "orphan", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "release and replacement", func() (bool, error) {
		p, err := e.CS.Pods.Namespace(ns).Get(e.Ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pods, err := activePods(e, ns, "web")
		return len(p.OwnerReferences) == 0 && len(pods) == 1 && pods[0].Name != "orphan", err
	})
}

// TestReplicaSetSlowWatchNoDoubleCreate delays every pod watch event the
// controller sees by 1.5s while the ReplicaSet is being poked, so the
// controller syncs many times with a cache that does not yet show the pods
// it created. Expectations must keep it from creating more.
func TestReplicaSetSlowWatchNoDoubleCreate(t *testing.T) {
	e := testenv.Start(t)
	ns := e.Namespace("rs-slow")
	k := testenv.NewFakeKubelet(e, "node-1")
	k.Run()
	cs := e.Clientset("slow")
	startController(e, &delayedLW{ListerWatcher: informer.FromTyped(cs.Pods.Client, nil), delay: 1500 * time.Millisecond})

	// Record every pod ever created in the namespace.
	w, err := e.CS.Pods.Namespace(ns).Watch(e.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	seen := map[string]bool{}
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Added {
				mu.Lock()
				seen[p.Name] = true
				mu.Unlock()
			}
		}
	}()

	if _, err := e.CS.ReplicaSets.Namespace(ns).Create(e.Ctx, newRS("web", 4), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Poke the ReplicaSet (each update is a sync) while pod events lag.
	for i := range 30 {
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{"poke":"%d"}}}`, i)
		if _, err := e.CS.ReplicaSets.Namespace(ns).Patch(e.Ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitStatus(t, e, ns, "web", 4, 4)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 4 {
		t.Fatalf("%d pods were created for 4 replicas: %v", len(seen), seen)
	}
}

// delayedLW delivers watch events delay after they arrive, in order.
type delayedLW struct {
	informer.ListerWatcher
	delay time.Duration
}

func (d *delayedLW) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	inner, err := d.ListerWatcher.Watch(ctx, opts)
	if err != nil {
		return nil, err
	}
	out := &delayedWatch{inner: inner, ch: make(chan watch.Event), stop: make(chan struct{})}
	go func() {
		defer close(out.ch)
		for ev := range inner.ResultChan() {
			select {
			case <-time.After(d.delay):
			case <-out.stop:
				return
			}
			select {
			case out.ch <- ev:
			case <-out.stop:
				return
			}
		}
	}()
	return out, nil
}

type delayedWatch struct {
	inner watch.Interface
	ch    chan watch.Event
	stop  chan struct{}
	once  sync.Once
}

func (w *delayedWatch) ResultChan() <-chan watch.Event { return w.ch }
func (w *delayedWatch) Stop() {
	w.once.Do(func() { close(w.stop); w.inner.Stop() })
}

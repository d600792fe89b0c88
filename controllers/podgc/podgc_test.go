package podgc_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/internal/testenv"
	"github.com/minik8s/minik8s/controllers/podgc"
)

func startPodGC(t *testing.T, e *testenv.Env, cfg podgc.Config) (stop func()) {
	t.Helper()
	cs := e.Clientset("podgc")
	f := e.Factory(cs)
	cfg.Options = controllers.Options{Logger: testenv.Logger(podgc.Name)}
	c, err := podgc.New(f, cs, e.Recorder(cs, podgc.Name), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e.Run(f, func(ctx context.Context) { _ = c.Run(ctx, 2) })
}

// createNode registers a node reporting Ready as ready says, with taints.
func createNode(t *testing.T, e *testenv.Env, name string, ready corev1.ConditionStatus, taints ...corev1.Taint) {
	t.Helper()
	n, err := e.CS.Nodes.Create(e.Ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.NodeSpec{Taints: taints}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, LastHeartbeatTime: now, LastTransitionTime: now}}
	if _, err := e.CS.Nodes.UpdateStatus(e.Ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createPod creates a pod bound to node ("" for none) in phase.
func createPod(t *testing.T, e *testenv.Env, ns, name, node string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	p, err := e.CS.Pods.Namespace(ns).Create(e.Ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "minik8s.local/app:v1"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if phase != corev1.PodPending {
		p.Status.Phase = phase
		if p, err = e.CS.Pods.Namespace(ns).UpdateStatus(e.Ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// terminate deletes pod gracefully with a grace period no kubelet here
// will ever cut short: it stays Terminating.
func terminate(t *testing.T, e *testenv.Env, ns, name string) {
	t.Helper()
	grace := int64(3600)
	if err := e.CS.Pods.Namespace(ns).Delete(e.Ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	p, err := e.CS.Pods.Namespace(ns).Get(e.Ctx, name, metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp == nil {
		t.Fatalf("pod %s should be terminating: %v", name, err)
	}
}

func gone(e *testenv.Env, ns, name string) func() (bool, error) {
	return func() (bool, error) {
		_, err := e.CS.Pods.Namespace(ns).Get(e.Ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
}

func exists(t *testing.T, e *testenv.Env, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := e.CS.Pods.Namespace(ns).Get(e.Ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pod %s should still exist: %v", name, err)
	}
	return p
}

// deletions records the last state of every pod deleted in ns.
func deletions(t *testing.T, e *testenv.Env, ns string) func(name string) (*corev1.Pod, bool) {
	t.Helper()
	w, err := e.CS.Pods.Namespace(ns).Watch(e.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *corev1.Pod, 100)
	testenv.Go(t, e.Ctx, func(ctx context.Context) {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				if p, isPod := ev.Object.(*corev1.Pod); isPod && ev.Type == watch.Deleted {
					got <- p
				}
			}
		}
	})
	seen := map[string]*corev1.Pod{}
	return func(name string) (*corev1.Pod, bool) {
		for {
			select {
			case p := <-got:
				seen[p.Name] = p
				continue
			default:
			}
			p, ok := seen[name]
			return p, ok
		}
	}
}

// TestOrphanedAndOutOfServicePods: a pod bound to a node that is deleted
// is marked Failed with a DisruptionTarget condition and force-deleted
// after the quarantine; a terminating pod on a not-ready node tainted
// out-of-service is force-deleted; a terminating pod on a not-ready node
// without the taint stays until the taint arrives; an unscheduled pod and
// a running pod on a ready node stay.
func TestOrphanedAndOutOfServicePods(t *testing.T) {
	e := testenv.Start(t)
	ns := e.Namespace("gc")
	deleted := deletions(t, e, ns)
	outOfService := corev1.Taint{Key: podgc.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	createNode(t, e, "doomed", corev1.ConditionTrue)
	createNode(t, e, "dead", corev1.ConditionUnknown, unreachable, outOfService)
	createNode(t, e, "sick", corev1.ConditionUnknown, unreachable)
	createNode(t, e, "fine", corev1.ConditionTrue)

	createPod(t, e, ns, "orphan", "doomed", corev1.PodRunning)
	createPod(t, e, ns, "on-dead", "dead", corev1.PodRunning)
	terminate(t, e, ns, "on-dead")
	createPod(t, e, ns, "on-sick", "sick", corev1.PodRunning)
	terminate(t, e, ns, "on-sick")
	createPod(t, e, ns, "on-fine", "fine", corev1.PodRunning)
	createPod(t, e, ns, "unscheduled", "", corev1.PodPending)

	startPodGC(t, e, podgc.Config{OrphanQuarantine: time.Second})
	if err := e.CS.Nodes.Delete(e.Ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the orphan is deleted", gone(e, ns, "orphan"))
	testenv.Eventually(t, "the pod on the out-of-service node is deleted", gone(e, ns, "on-dead"))

	// How the orphan ended: Failed, with the reason, before it went.
	testenv.Eventually(t, "the orphan's deletion is watched", func() (bool, error) {
		_, ok := deleted("orphan")
		return ok, nil
	})
	last, _ := deleted("orphan")
	if last.Status.Phase != corev1.PodFailed {
		t.Errorf("orphan deleted in phase %s, want Failed", last.Status.Phase)
	}
	if c := controllers.PodCondition(last, corev1.DisruptionTarget); c == nil || c.Status != corev1.ConditionTrue || c.Reason != podgc.ReasonDeletionByPodGC {
		t.Errorf("orphan deleted with DisruptionTarget condition %+v, want True/%s", c, podgc.ReasonDeletionByPodGC)
	}
	last, _ = deleted("on-dead")
	if last.Status.Phase != corev1.PodFailed {
		t.Errorf("pod on the out-of-service node deleted in phase %s, want Failed", last.Status.Phase)
	}

	// Not ready is not enough: only the operator's taint says the node is
	// not coming back to finish its pods.
	if p := exists(t, e, ns, "on-sick"); p.Status.Phase != corev1.PodRunning {
		t.Errorf("pod on the not-ready node without the taint is %s", p.Status.Phase)
	}
	exists(t, e, ns, "on-fine")
	exists(t, e, ns, "unscheduled")
	n, err := e.CS.Nodes.Get(e.Ctx, "sick", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = append(n.Spec.Taints, outOfService)
	if _, err := e.CS.Nodes.Update(e.Ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the pod on the node now tainted out-of-service is deleted", gone(e, ns, "on-sick"))
	exists(t, e, ns, "on-fine")
	exists(t, e, ns, "unscheduled")

	testenv.Eventually(t, "a DeletionByPodGC event for the orphan", func() (bool, error) {
		l, err := e.CS.Events.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range l.Items {
			if ev.Reason == podgc.ReasonDeletionByPodGC && ev.InvolvedObject.Name == "orphan" {
				return true, nil
			}
		}
		return false, nil
	})
}

// TestTerminatedPodThreshold: with a threshold of 2, of four terminated
// pods the two created first go, even though their names sort last; a
// running pod older than all of them stays.
func TestTerminatedPodThreshold(t *testing.T) {
	e := testenv.Start(t)
	ns := e.Namespace("done")
	createNode(t, e, "n1", corev1.ConditionTrue)
	createPod(t, e, ns, "old-running", "n1", corev1.PodRunning)
	var old []*corev1.Pod
	for _, name := range []string{"z-old-1", "z-old-2"} {
		old = append(old, createPod(t, e, ns, name, "n1", corev1.PodPending))
	}
	// creationTimestamp has whole seconds: the new pods must be created
	// in a later second to be newer.
	newest := old[len(old)-1].CreationTimestamp.Time
	for !time.Now().After(newest.Add(time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}
	var young []*corev1.Pod
	for _, name := range []string{"a-new-1", "a-new-2"} {
		young = append(young, createPod(t, e, ns, name, "n1", corev1.PodPending))
	}
	for _, o := range old {
		if !o.CreationTimestamp.Before(&young[0].CreationTimestamp) {
			t.Fatalf("%s created at %v, not before %s at %v", o.Name, o.CreationTimestamp, young[0].Name, young[0].CreationTimestamp)
		}
	}

	startPodGC(t, e, podgc.Config{TerminatedPodThreshold: 2})
	// They finish newest first, so the sweep runs with the old ones
	// arriving last.
	for i, p := range slices.Concat(young, old) {
		p.Status.Phase = []corev1.PodPhase{corev1.PodSucceeded, corev1.PodFailed}[i%2]
		if _, err := e.CS.Pods.Namespace(ns).UpdateStatus(e.Ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "the two oldest terminated pods are deleted", func() (bool, error) {
		l, err := e.CS.Pods.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var names []string
		for _, p := range l.Items {
			names = append(names, p.Name)
		}
		slices.Sort(names)
		got := strings.Join(names, " ")
		return got == "a-new-1 a-new-2 old-running", fmt.Errorf("pods: %s", got)
	})
}

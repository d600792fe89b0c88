package nodelifecycle_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/internal/testenv"
	"github.com/minik8s/minik8s/controllers/nodelifecycle"
	"github.com/minik8s/minik8s/controllers/replicaset"
)

// TestSilentNodePodsReplacedElsewhere stops one of two nodes'
// heartbeats: it must be marked Unknown and tainted, its pods marked not
// ready and evicted after their toleration, and the ReplicaSet's
// replacements must run on the other node. A pod tolerating the
// unreachable taint forever stays.
func TestSilentNodePodsReplacedElsewhere(t *testing.T) {
	e := testenv.Start(t)
	k := testenv.NewFakeKubelet(e, "node-1", "node-2")
	k.Run()
	cs := e.Clientset("controllers")
	f := e.Factory(cs)
	two := int64(2)
	nl, err := nodelifecycle.New(f, cs, e.Recorder(cs, nodelifecycle.Name), nodelifecycle.Config{
		GracePeriod: 3 * time.Second, UnreachableTolerationSeconds: &two, NotReadyTolerationSeconds: &two,
		Options: controllers.Options{Logger: testenv.Logger(nodelifecycle.Name)},
	})
	if err != nil {
		t.Fatal(err)
	}
	rsc, err := replicaset.New(f, cs, e.Recorder(cs, replicaset.Name), controllers.Options{Logger: testenv.Logger(replicaset.Name)})
	if err != nil {
		t.Fatal(err)
	}
	e.Run(f, func(ctx context.Context) { _ = nl.Run(ctx, 2) }, func(ctx context.Context) { _ = rsc.Run(ctx, 2) })

	ns := e.Namespace("nodeloss")
	four := int32(4)
	lbl := map[string]string{"app": "web"}
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "minik8s.local/web:v1"}}}
	if _, err := e.CS.ReplicaSets.Namespace(ns).Create(e.Ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.ReplicaSetSpec{Replicas: &four, Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: spec}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pod that tolerates being unreachable forever, pinned to node-1.
	patient := spec.DeepCopy()
	patient.NodeName = "node-1"
	patient.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
	if _, err := e.CS.Pods.Namespace(ns).Create(e.Ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "patient"}, Spec: *patient}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var onNode1 []string
	testenv.Eventually(t, "4 ready pods spread over both nodes", func() (bool, error) {
		l, err := e.CS.Pods.Namespace(ns).List(e.Ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		onNode1 = nil
		ready := 0
		for _, p := range l.Items {
			if controllers.IsPodReady(&p) {
				ready++
			}
			if p.Spec.NodeName == "node-1" {
				onNode1 = append(onNode1, p.Name)
			}
		}
		return ready == 4 && len(onNode1) > 0 && len(onNode1) < 4, fmt.Errorf("%d ready, %d on node-1", ready, len(onNode1))
	})

	k.Stop("node-1")

	testenv.Eventually(t, "node-1 unknown and tainted", func() (bool, error) {
		n, err := e.CS.Nodes.Get(e.Ctx, "node-1", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		var ready corev1.ConditionStatus
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status
			}
		}
		tainted := false
		for _, tt := range n.Spec.Taints {
			tainted = tainted || (tt.Key == corev1.TaintNodeUnreachable && tt.Effect == corev1.TaintEffectNoExecute && tt.TimeAdded != nil)
		}
		return ready == corev1.ConditionUnknown && tainted, fmt.Errorf("ready=%s taints=%+v", ready, n.Spec.Taints)
	})
	testenv.Eventually(t, "node-1's pods evicted and replaced on node-2", func() (bool, error) {
		l, err := e.CS.Pods.Namespace(ns).List(e.Ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		readyOn2 := 0
		for _, p := range l.Items {
			switch {
			case p.Spec.NodeName == "node-1" && p.DeletionTimestamp == nil:
				return false, fmt.Errorf("pod %s still active on node-1", p.Name)
			case p.Spec.NodeName == "node-2" && controllers.IsPodActive(&p) && controllers.IsPodReady(&p):
				readyOn2++
			}
		}
		return readyOn2 == 4, fmt.Errorf("%d ready on node-2", readyOn2)
	})
	p, err := e.CS.Pods.Namespace(ns).Get(e.Ctx, "patient", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp != nil || controllers.IsPodReady(p) {
		t.Errorf("tolerating pod: err %v, deleting %v, ready %v; want kept but marked not ready", err, p.DeletionTimestamp, controllers.IsPodReady(p))
	}
	n2, err := e.CS.Nodes.Get(e.Ctx, "node-2", metav1.GetOptions{})
	if err != nil || len(n2.Spec.Taints) != 0 {
		t.Errorf("healthy node-2 tainted: %+v, %v", n2.Spec.Taints, err)
	}
	// The node comes back: its taints go.
	if err := k.Resume("node-1"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "node-1 untainted after it is back", func() (bool, error) {
		n, err := e.CS.Nodes.Get(e.Ctx, "node-1", metav1.GetOptions{})
		return err == nil && len(n.Spec.Taints) == 0, err
	})

	evs, err := e.CS.Events.Namespace(ns).List(e.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	evicted := 0
	for _, ev := range evs.Items {
		if ev.Reason == "TaintManagerEviction" {
			evicted++
		}
	}
	if evicted < len(onNode1) {
		t.Errorf("%d eviction events for %d evicted pods", evicted, len(onNode1))
	}
}

package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/scheduler"
	"github.com/minik8s/minik8s/scheduler/framework"
	st "github.com/minik8s/minik8s/scheduler/internal/schedtest"
	"github.com/minik8s/minik8s/scheduler/plugins"
)

// env is a real API server on a real embedded etcd, a clientset, and
// schedulers running against it.
type env struct {
	t   *testing.T
	ctx context.Context
	cs  *typed.Clientset

	mu     sync.Mutex
	scheds []*scheduler.Scheduler // running; createNode waits for them
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	srv := apiservertest.Start(t)
	cs := srv.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return &env{t: t, ctx: ctx, cs: cs}
}

func testLogger() *slog.Logger {
	if os.Getenv("MINIK8S_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startScheduler runs a scheduler until the test ends.
func (e *env) startScheduler(mutate ...func(*scheduler.Config)) *scheduler.Scheduler {
	e.t.Helper()
	cfg := scheduler.Config{Client: e.cs, Logger: testLogger()}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := scheduler.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.track(s)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("scheduler %s: %v", s.Identity(), err)
		}
	})
	return s
}

// track makes createNode wait for s too.
func (e *env) track(s *scheduler.Scheduler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.scheds = append(e.scheds, s)
}

// createNode creates a node and sets its status (create ignores status),
// as a kubelet would, then waits until every running scheduler's cache
// has the node with its status. The pod and node watches are separate
// streams with no order between them (in Kubernetes too), so without the
// wait a pod created right after could be scheduled before the scheduler
// knows the node, or while it knows it without allocatable resources.
func (e *env) createNode(n *corev1.Node) {
	e.t.Helper()
	n = n.DeepCopy()
	n.UID = ""
	created, err := e.cs.Nodes.Create(e.ctx, n, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create node %s: %v", n.Name, err)
	}
	created.Status = n.Status
	updated, err := e.cs.Nodes.UpdateStatus(e.ctx, created, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatalf("set status of node %s: %v", n.Name, err)
	}
	want, err := strconv.ParseUint(updated.ResourceVersion, 10, 64)
	if err != nil {
		e.t.Fatalf("node %s: resourceVersion %q: %v", n.Name, updated.ResourceVersion, err)
	}
	e.mu.Lock()
	scheds := slices.Clone(e.scheds)
	e.mu.Unlock()
	for _, s := range scheds {
		waitFor(e.t, fmt.Sprintf("scheduler %s has node %s at resourceVersion %d", s.Identity(), n.Name, want), func() bool {
			c := s.CachedNode(n.Name)
			if c == nil {
				return false
			}
			rv, err := strconv.ParseUint(c.ResourceVersion, 10, 64)
			return err == nil && rv >= want
		})
	}
}

func (e *env) createPod(p *corev1.Pod) *corev1.Pod {
	e.t.Helper()
	p = p.DeepCopy()
	p.UID = ""
	created, err := e.cs.Pods.Namespace(p.Namespace).Create(e.ctx, p, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	return created
}

// waitPod polls the pod until cond holds.
func (e *env) waitPod(ns, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	e.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var last *corev1.Pod
	for time.Now().Before(deadline) {
		p, err := e.cs.Pods.Namespace(ns).Get(e.ctx, name, metav1.GetOptions{})
		if err == nil {
			last = p
			if cond(p) {
				return p
			}
		} else if !apierrors.IsNotFound(err) {
			e.t.Fatalf("get pod %s/%s: %v", ns, name, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	e.t.Fatalf("pod %s/%s never %s; last seen: nodeName=%q conditions=%+v", ns, name, what, last.Spec.NodeName, last.Status.Conditions)
	return nil
}

func (e *env) waitBound(ns, name string) *corev1.Pod {
	e.t.Helper()
	return e.waitPod(ns, name, "bound", func(p *corev1.Pod) bool { return p.Spec.NodeName != "" })
}

func scheduledCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// waitUnschedulable waits for PodScheduled=False/Unschedulable with
// exactly message.
func (e *env) waitUnschedulable(ns, name, message string) *corev1.Pod {
	e.t.Helper()
	p := e.waitPod(ns, name, "marked unschedulable with "+message, func(p *corev1.Pod) bool {
		c := scheduledCondition(p)
		return c != nil && c.Status == corev1.ConditionFalse && c.Message == message
	})
	c := scheduledCondition(p)
	if c.Reason != corev1.PodReasonUnschedulable {
		e.t.Errorf("pod %s/%s: PodScheduled reason %q, want Unschedulable", ns, name, c.Reason)
	}
	if p.Spec.NodeName != "" {
		e.t.Errorf("pod %s/%s is unschedulable but bound to %s", ns, name, p.Spec.NodeName)
	}
	return p
}

// waitEvent waits for an event about the pod with reason and message.
func (e *env) waitEvent(pod *corev1.Pod, reason, message string) *corev1.Event {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		l, err := e.cs.Events.Namespace(pod.Namespace).List(e.ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.name=" + pod.Name + ",reason=" + reason,
		})
		if err != nil {
			e.t.Fatal(err)
		}
		seen = seen[:0]
		for i := range l.Items {
			ev := &l.Items[i]
			if ev.Message == message && ev.InvolvedObject.UID == pod.UID && ev.InvolvedObject.Kind == "Pod" {
				return ev
			}
			seen = append(seen, ev.Message)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("no %s event %q for pod %s/%s; saw %q", reason, message, pod.Namespace, pod.Name, seen)
	return nil
}

// stays asserts that the pod stays unbound for a while (the scheduler had
// every chance to bind it).
func (e *env) staysUnbound(ns, name string, d time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p, err := e.cs.Pods.Namespace(ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		if p.Spec.NodeName != "" {
			e.t.Fatalf("pod %s/%s was bound to %s; it must not fit", ns, name, p.Spec.NodeName)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestResourceExhaustionAndNodeAdded(t *testing.T) {
	e := newEnv(t)
	e.startScheduler()
	e.createNode(st.Node("n1", "1", "2Gi", 110))
	e.createNode(st.Node("n2", "1", "2Gi", 110))
	e.createNode(st.Node("n3", "8", "16Gi", 110, st.Taint("key", "value", corev1.TaintEffectNoSchedule)))

	a := e.createPod(st.Pod("default", "a", st.Container("600m", "100Mi")))
	b := e.createPod(st.Pod("default", "b", st.Container("600m", "100Mi")))
	a, b = e.waitBound("default", "a"), e.waitBound("default", "b")
	if a.Spec.NodeName == b.Spec.NodeName || a.Spec.NodeName == "n3" || b.Spec.NodeName == "n3" {
		t.Fatalf("a on %s, b on %s: want one each on n1 and n2", a.Spec.NodeName, b.Spec.NodeName)
	}
	for _, p := range []*corev1.Pod{a, b} {
		c := scheduledCondition(p)
		if c == nil || c.Status != corev1.ConditionTrue {
			t.Errorf("bound pod %s has PodScheduled %+v", p.Name, c)
		}
		ev := e.waitEvent(p, "Scheduled", fmt.Sprintf("Successfully assigned default/%s to %s", p.Name, p.Spec.NodeName))
		if ev.Type != corev1.EventTypeNormal || ev.Source.Component != corev1.DefaultSchedulerName {
			t.Errorf("Scheduled event type %q source %q", ev.Type, ev.Source.Component)
		}
	}

	c := e.createPod(st.Pod("default", "c", st.Container("600m", "100Mi")))
	const msg = "0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient cpu."
	e.waitUnschedulable("default", "c", msg)
	ev := e.waitEvent(c, "FailedScheduling", msg)
	if ev.Type != corev1.EventTypeWarning {
		t.Errorf("FailedScheduling event type %q", ev.Type)
	}
	e.staysUnbound("default", "c", 500*time.Millisecond)

	// A node that fits arrives: the parked pod is moved and bound.
	e.createNode(st.Node("n4", "2", "2Gi", 110))
	c = e.waitBound("default", "c")
	if c.Spec.NodeName != "n4" {
		t.Errorf("c bound to %s, want the new n4", c.Spec.NodeName)
	}
	if cond := scheduledCondition(c); cond == nil || cond.Status != corev1.ConditionTrue {
		t.Errorf("c's PodScheduled after binding: %+v", cond)
	}
}

func TestUnschedulablePodFitsAfterAPodIsDeleted(t *testing.T) {
	e := newEnv(t)
	e.startScheduler()
	e.createNode(st.Node("n1", "1", "1Gi", 110))
	e.createPod(st.Pod("default", "hog", st.Container("800m", "")))
	e.waitBound("default", "hog")
	e.createPod(st.Pod("default", "waiting", st.Container("500m", "")))
	e.waitUnschedulable("default", "waiting", "0/1 nodes are available: 1 Insufficient cpu.")
	if err := e.cs.Pods.Namespace("default").Delete(e.ctx, "hog", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if p := e.waitBound("default", "waiting"); p.Spec.NodeName != "n1" {
		t.Errorf("bound to %s", p.Spec.NodeName)
	}
}

func TestTaintsAndTolerations(t *testing.T) {
	e := newEnv(t)
	e.startScheduler()
	e.createNode(st.Node("dedicated", "4", "8Gi", 110, st.Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule)))
	e.createNode(st.Node("draining", "4", "8Gi", 110, st.Taint("maintenance", "", corev1.TaintEffectNoExecute)))

	plain := e.createPod(st.Pod("default", "plain"))
	e.waitUnschedulable("default", "plain",
		"0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) had untolerated taint {maintenance: }.")
	e.waitEvent(plain, "FailedScheduling",
		"0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) had untolerated taint {maintenance: }.")

	e.createPod(st.Pod("default", "gpu", st.Toleration("dedicated", corev1.TolerationOpEqual, "gpu", corev1.TaintEffectNoSchedule)))
	if p := e.waitBound("default", "gpu"); p.Spec.NodeName != "dedicated" {
		t.Errorf("tolerating pod on %s, want dedicated", p.Spec.NodeName)
	}
	e.createPod(st.Pod("default", "any", st.Toleration("", corev1.TolerationOpExists, "", "")))
	e.waitBound("default", "any")

	// Removing the hard taint lets the parked pod in: the taint change
	// moves it back to the active queue.
	n, err := e.cs.Nodes.Get(e.ctx, "dedicated", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = nil
	if _, err := e.cs.Nodes.Update(e.ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := e.waitBound("default", "plain"); p.Spec.NodeName != "dedicated" {
		t.Errorf("plain bound to %s, want the untainted dedicated", p.Spec.NodeName)
	}

	// PreferNoSchedule is a preference: pods avoid the node while another
	// node fits as well.
	e.createNode(st.Node("soft", "64", "128Gi", 110, st.Taint("spot", "true", corev1.TaintEffectPreferNoSchedule)))
	e.createNode(st.Node("clean", "64", "128Gi", 110))
	for i := range 3 {
		name := fmt.Sprintf("soft-%d", i)
		e.createPod(st.Pod("default", name, st.Container("100m", "128Mi"), st.RequiredNodeAffinity(st.Term(
			st.Expr("kubernetes.io/hostname", corev1.NodeSelectorOpIn, "soft", "clean")))))
		if p := e.waitBound("default", name); p.Spec.NodeName != "clean" {
			t.Errorf("%s on %s; PreferNoSchedule should keep it on clean", name, p.Spec.NodeName)
		}
	}
}

func TestNodeSelectorAndAffinity(t *testing.T) {
	e := newEnv(t)
	e.startScheduler()
	e.createNode(st.Node("ssd-a", "4", "8Gi", 110, st.NodeLabels("disk", "ssd", "zone", "a", "gen", "3")))
	e.createNode(st.Node("hdd-b", "4", "8Gi", 110, st.NodeLabels("disk", "hdd", "zone", "b", "gen", "5")))
	e.createNode(st.Node("ssd-c", "4", "8Gi", 110, st.NodeLabels("disk", "ssd", "zone", "c", "gen", "7")))

	cases := []struct {
		name string
		opts []st.PodOption
		want []string // acceptable nodes
	}{
		{"selector", []st.PodOption{st.NodeSelector("disk", "hdd")}, []string{"hdd-b"}},
		{"in", []st.PodOption{st.RequiredNodeAffinity(st.Term(st.Expr("zone", corev1.NodeSelectorOpIn, "c", "x")))}, []string{"ssd-c"}},
		{"notin", []st.PodOption{st.RequiredNodeAffinity(st.Term(st.Expr("zone", corev1.NodeSelectorOpNotIn, "a", "c")))}, []string{"hdd-b"}},
		{"gt-and-lt", []st.PodOption{st.RequiredNodeAffinity(st.Term(
			st.Expr("gen", corev1.NodeSelectorOpGt, "3"), st.Expr("gen", corev1.NodeSelectorOpLt, "7")))}, []string{"hdd-b"}},
		{"exists-and-selector", []st.PodOption{st.NodeSelector("disk", "ssd"),
			st.RequiredNodeAffinity(st.Term(st.Expr("zone", corev1.NodeSelectorOpExists), st.Expr("gen", corev1.NodeSelectorOpGt, "4")))}, []string{"ssd-c"}},
		{"match-fields", []st.PodOption{st.RequiredNodeAffinity(corev1.NodeSelectorTerm{
			MatchFields: []corev1.NodeSelectorRequirement{st.Expr("metadata.name", corev1.NodeSelectorOpIn, "ssd-a")}})}, []string{"ssd-a"}},
		{"preferred", []st.PodOption{st.PreferredNodeAffinity(100, st.Term(st.Expr("zone", corev1.NodeSelectorOpIn, "b")))}, []string{"hdd-b"}},
	}
	for _, tc := range cases {
		e.createPod(st.Pod("default", tc.name, tc.opts...))
	}
	for _, tc := range cases {
		p := e.waitBound("default", tc.name)
		ok := false
		for _, w := range tc.want {
			ok = ok || p.Spec.NodeName == w
		}
		if !ok {
			t.Errorf("%s: bound to %s, want one of %v", tc.name, p.Spec.NodeName, tc.want)
		}
	}

	e.createPod(st.Pod("default", "nowhere", st.RequiredNodeAffinity(st.Term(st.Expr("disk", corev1.NodeSelectorOpDoesNotExist)))))
	e.waitUnschedulable("default", "nowhere", "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")
	// Labelling a node so it matches moves the pod back and binds it.
	n, err := e.cs.Nodes.Get(e.ctx, "hdd-b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delete(n.Labels, "disk")
	if _, err := e.cs.Nodes.Update(e.ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := e.waitBound("default", "nowhere"); p.Spec.NodeName != "hdd-b" {
		t.Errorf("nowhere bound to %s after relabelling hdd-b", p.Spec.NodeName)
	}
}

func TestPodAntiAffinity(t *testing.T) {
	e := newEnv(t)
	e.startScheduler()
	for _, n := range []struct{ name, zone string }{{"a1", "a"}, {"a2", "a"}, {"b1", "b"}} {
		e.createNode(st.Node(n.name, "4", "8Gi", 110, st.NodeLabels("topology.kubernetes.io/zone", n.zone)))
	}
	web := map[string]string{"app": "web"}
	nodes := map[string]string{}
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		e.createPod(st.Pod("default", name, st.Labels("app", "web"), st.AntiAffinity("kubernetes.io/hostname", web)))
		// One at a time: each must see the previous ones.
		p := e.waitBound("default", name)
		if other, dup := nodes[p.Spec.NodeName]; dup {
			t.Fatalf("%s and %s share node %s despite anti-affinity", name, other, p.Spec.NodeName)
		}
		nodes[p.Spec.NodeName] = name
	}
	e.createPod(st.Pod("default", "web-3", st.Labels("app", "web"), st.AntiAffinity("kubernetes.io/hostname", web)))
	e.waitUnschedulable("default", "web-3", "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.")

	// A pod without anti-affinity of its own is kept away by the existing
	// pods' terms, by zone.
	e.createPod(st.Pod("default", "db", st.Labels("app", "db"), st.AntiAffinity("topology.kubernetes.io/zone", map[string]string{"app": "cache"})))
	db := e.waitBound("default", "db")
	e.createPod(st.Pod("default", "cache", st.Labels("app", "cache")))
	cache := e.waitBound("default", "cache")
	zoneOf := map[string]string{"a1": "a", "a2": "a", "b1": "b"}
	if zoneOf[cache.Spec.NodeName] == zoneOf[db.Spec.NodeName] {
		t.Errorf("cache on %s shares zone with db on %s", cache.Spec.NodeName, db.Spec.NodeName)
	}

	// Deleting one web pod frees its node for web-3.
	if err := e.cs.Pods.Namespace("default").Delete(e.ctx, "web-0", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	freed := ""
	for n, p := range nodes {
		if p == "web-0" {
			freed = n
		}
	}
	if p := e.waitBound("default", "web-3"); p.Spec.NodeName != freed {
		t.Errorf("web-3 bound to %s, want %s (freed by web-0)", p.Spec.NodeName, freed)
	}
}

func TestSpreadsPodsOfOneOwner(t *testing.T) {
	e := newEnv(t)
	e.startScheduler()
	// One big node that least-allocated scoring alone would fill first.
	e.createNode(st.Node("big", "64", "256Gi", 110))
	for i := range 3 {
		e.createNode(st.Node(fmt.Sprintf("small-%d", i), "4", "16Gi", 110))
	}
	counts := map[string]int{}
	for i := range 8 {
		name := fmt.Sprintf("rs-pod-%d", i)
		e.createPod(st.Pod("default", name, st.OwnedBy("11111111-2222-3333-4444-555555555555"), st.Container("100m", "128Mi")))
		counts[e.waitBound("default", name).Spec.NodeName]++
	}
	for n, c := range counts {
		if c != 2 {
			t.Errorf("node %s got %d pods of the ReplicaSet, want 2 each: %v", n, c, counts)
		}
	}
	// Pods without an owner are not spread: least allocated picks big.
	for i := range 3 {
		name := fmt.Sprintf("lone-%d", i)
		e.createPod(st.Pod("default", name, st.Container("100m", "128Mi")))
		if p := e.waitBound("default", name); p.Spec.NodeName != "big" {
			t.Errorf("%s on %s, want big (least allocated)", name, p.Spec.NodeName)
		}
	}
}

func TestNoOvercommitWhen200PodsArriveAtOnce(t *testing.T) {
	e := newEnv(t)
	e.startScheduler()
	// 20 nodes of 2 cpu and 1Gi; 200 pods of 200m and 100Mi fill them
	// exactly (10 per node), so any double-booking shows as an
	// over-committed node or a pod left pending.
	const nodes, pods = 20, 200
	for i := range nodes {
		e.createNode(st.Node(fmt.Sprintf("n%02d", i), "2", "1Gi", 110))
	}
	var wg sync.WaitGroup
	errs := make(chan error, pods)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < pods; i += 16 {
				p := st.Pod("default", fmt.Sprintf("burst-%03d", i), st.Container("200m", "100Mi"))
				p.UID = ""
				if _, err := e.cs.Pods.Namespace("default").Create(e.ctx, p, metav1.CreateOptions{}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var l *corev1.PodList
	for {
		var err error
		l, err = e.cs.Pods.Namespace("default").List(e.ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bound := 0
		for _, p := range l.Items {
			if p.Spec.NodeName != "" {
				bound++
			}
		}
		if bound == pods || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cpu := map[string]int64{}
	mem := map[string]int64{}
	count := map[string]int{}
	var unbound []string
	for _, p := range l.Items {
		if p.Spec.NodeName == "" {
			unbound = append(unbound, p.Name)
			continue
		}
		pi := framework.NewPodInfo(&p)
		cpu[p.Spec.NodeName] += pi.Requests.MilliCPU
		mem[p.Spec.NodeName] += pi.Requests.Memory
		count[p.Spec.NodeName]++
	}
	for n := range cpu {
		if cpu[n] > 2000 || mem[n] > 1<<30 {
			t.Errorf("node %s over-committed: %dm cpu, %d bytes memory in %d pods", n, cpu[n], mem[n], count[n])
		}
	}
	if len(unbound) > 0 {
		t.Errorf("%d pods never bound although everything fits exactly: %v", len(unbound), unbound[:min(5, len(unbound))])
	}
}

func TestLeaderElectionOnlyLeaderBinds(t *testing.T) {
	e := newEnv(t)
	le := func(c *scheduler.Config) {
		c.LeaderElection = &scheduler.LeaderElectionConfig{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond}
	}
	// sched-a runs under the test's control so it can be stopped.
	ctxA, stopA := context.WithCancel(e.ctx)
	cfgA := scheduler.Config{Client: e.cs, Logger: testLogger(), Identity: "sched-a"}
	le(&cfgA)
	a, err := scheduler.New(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	e.track(a)
	doneA := make(chan error, 1)
	go func() { doneA <- a.Run(ctxA) }()
	t.Cleanup(func() { stopA(); <-doneA })
	waitFor(t, "sched-a leads", func() bool { return a.IsLeader() })

	b := e.startScheduler(le, func(c *scheduler.Config) { c.Identity = "sched-b" })
	e.createNode(st.Node("n1", "4", "8Gi", 110))
	p := e.createPod(st.Pod("default", "first"))
	e.waitBound("default", "first")
	ev := e.waitEvent(p, "Scheduled", "Successfully assigned default/first to n1")
	if ev.ReportingInstance != "sched-a" {
		t.Errorf("first pod bound by %q, want the leader sched-a", ev.ReportingInstance)
	}
	if b.IsLeader() {
		t.Error("both schedulers lead")
	}
	lease, err := e.cs.Leases.Namespace("kube-system").Get(e.ctx, scheduler.DefaultLeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h == nil || *h != "sched-a" {
		t.Errorf("lease holder %v, want sched-a", h)
	}

	// The leader stops (releasing the Lease); the standby takes over.
	stopA()
	if err := <-doneA; err != nil {
		t.Errorf("sched-a: %v", err)
	}
	doneA <- nil
	waitFor(t, "sched-b leads", func() bool { return b.IsLeader() })
	p = e.createPod(st.Pod("default", "second"))
	e.waitBound("default", "second")
	ev = e.waitEvent(p, "Scheduled", "Successfully assigned default/second to n1")
	if ev.ReportingInstance != "sched-b" {
		t.Errorf("second pod bound by %q, want sched-b", ev.ReportingInstance)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDebugEndpointAndMetrics(t *testing.T) {
	e := newEnv(t)
	s := e.startScheduler()
	e.createNode(st.Node("small", "1", "1Gi", 110))
	e.createNode(st.Node("tainted", "8", "8Gi", 110, st.Taint("key", "value", corev1.TaintEffectNoSchedule)))
	e.createNode(st.Node("fits", "4", "8Gi", 110))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	get := func(path string, into any) int {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		switch v := into.(type) {
		case nil:
		case *string:
			*v = string(body)
		default:
			if err := json.Unmarshal(body, into); err != nil {
				t.Fatalf("%s: %v: %s", path, err, body)
			}
		}
		return resp.StatusCode
	}

	e.createPod(st.Pod("default", "huge", st.Container("16", "")))
	e.waitUnschedulable("default", "huge", "0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient cpu.")
	var d scheduler.PodDiagnosis
	if code := get("/debug/pods/default/huge", &d); code != http.StatusOK {
		t.Fatalf("debug endpoint: %d", code)
	}
	if d.Result != "unschedulable" || d.NumAllNodes != 3 || d.NumEvaluated != 3 || d.NumFeasible != 0 || d.Queue != "unschedulable" {
		t.Errorf("diagnosis %+v", d)
	}
	byNode := map[string]scheduler.NodeDiagnosis{}
	for _, n := range d.Nodes {
		byNode[n.Node] = n
	}
	if n := byNode["tainted"]; n.Plugin != "TaintToleration" || n.Filter != "UnschedulableAndUnresolvable" ||
		len(n.Reasons) != 1 || n.Reasons[0] != "node(s) had untolerated taint {key: value}" {
		t.Errorf("tainted: %+v", n)
	}
	if n := byNode["small"]; n.Plugin != "NodeResourcesFit" || len(n.Reasons) != 1 || n.Reasons[0] != "Insufficient cpu" {
		t.Errorf("small: %+v", n)
	}

	// A pod that fits while another one is pending: its record goes once
	// it is bound.
	e.createPod(st.Pod("default", "ok", st.Container("1", "")))
	e.waitBound("default", "ok")
	waitFor(t, "the record of the bound pod to go", func() bool {
		return get("/debug/pods/default/ok", nil) == http.StatusNotFound
	})

	var pending []scheduler.PendingPod
	get("/debug/pods", &pending)
	if len(pending) != 1 || pending[0].Pod != "default/huge" || pending[0].Queue != "unschedulable" {
		t.Errorf("/debug/pods = %+v", pending)
	}
	var health string
	if code := get("/healthz", &health); code != http.StatusOK || health != "ok" {
		t.Errorf("/healthz %d %q", code, health)
	}
	var metrics string
	get("/metrics", &metrics)
	for _, want := range []string{
		`scheduler_schedule_attempts_total{result="scheduled"} 1`,
		`scheduler_schedule_attempts_total{result="unschedulable"}`,
		`scheduler_scheduling_attempt_duration_seconds_bucket{result="scheduled",le=`,
		`scheduler_pod_scheduling_duration_seconds_count 1`,
		`scheduler_pending_pods{queue="unschedulable"} 1`,
		`scheduler_cache_size{type="nodes"} 3`,
		`scheduler_binds_total{result="ok"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestSchedulerNameAndBoundPods: pods for another scheduler are left
// alone, and pods bound before the scheduler starts count against their
// node.
func TestSchedulerNameAndBoundPods(t *testing.T) {
	e := newEnv(t)
	e.createNode(st.Node("n1", "1", "1Gi", 110))
	e.createNode(st.Node("n2", "1", "1Gi", 110))
	pre := st.Pod("default", "pre-bound", st.Container("800m", ""), st.OnNode("n1"))
	e.createPod(pre)
	e.createPod(st.Pod("default", "other", st.SchedulerName("someone-else")))
	e.startScheduler()
	e.createPod(st.Pod("default", "mine", st.Container("500m", "")))
	if p := e.waitBound("default", "mine"); p.Spec.NodeName != "n2" {
		t.Errorf("mine on %s; n1 is full with pre-bound", p.Spec.NodeName)
	}
	e.staysUnbound("default", "other", 300*time.Millisecond)
}

// flakyBinder fails the first fail bindings, then binds for real.
type flakyBinder struct {
	real plugins.BindingClient
	mu   sync.Mutex
	fail int
}

func (f *flakyBinder) Bind(ctx context.Context, b *corev1.Binding, opts metav1.CreateOptions) error {
	f.mu.Lock()
	failNow := f.fail > 0
	if failNow {
		f.fail--
	}
	f.mu.Unlock()
	if failNow {
		return apierrors.NewServiceUnavailable("injected binding failure")
	}
	return f.real.Bind(ctx, b, opts)
}

// TestFailedBindingIsForgottenAndRetried: a node with room for exactly one
// pod; the first binding fails. Unless the scheduler forgets the assumed
// pod, the retry finds the node full and the pod never binds.
func TestFailedBindingIsForgottenAndRetried(t *testing.T) {
	e := newEnv(t)
	binder := &flakyBinder{real: e.cs.Pods, fail: 1}
	fw, err := framework.New(framework.Config{
		Plugins: append(plugins.Default(binder)[:9:9], plugins.DefaultBinder{Client: binder}),
		Weights: plugins.DefaultWeights(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.startScheduler(func(c *scheduler.Config) { c.Framework = fw })
	e.createNode(st.Node("only", "1", "1Gi", 1))
	p := e.createPod(st.Pod("default", "retried", st.Container("1", "1Gi")))
	ev := e.waitEvent(p, "FailedScheduling", "binding rejected: plugin DefaultBinder: bind pod default/retried to node only: injected binding failure")
	if ev.Type != corev1.EventTypeWarning {
		t.Errorf("event type %q", ev.Type)
	}
	if got := e.waitBound("default", "retried"); got.Spec.NodeName != "only" {
		t.Errorf("bound to %s", got.Spec.NodeName)
	}
}

package ctl

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// drainFixture builds nodes and pods bound to them. There is no kubelet:
// a graceful delete leaves a pod Terminating until the test removes it.
type drainFixture struct {
	t  *testing.T
	h  *harness
	ns string
}

func (f *drainFixture) node(name string) {
	f.t.Helper()
	if _, err := f.h.cs.Nodes.Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

type podOpt func(*corev1.Pod)

// managed gives the pod a controller ownerReference, as a ReplicaSet's pods have.
func managed(p *corev1.Pod) {
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-6d4f",
		UID: types.UID("0b6f2a4e-5d1c-4a8e-9f00-000000000001"), Controller: boolp(true)}}
}

func withEmptyDir(p *corev1.Pod) {
	p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
}

func labelled(k, v string) podOpt {
	return func(p *corev1.Pod) { p.Labels = map[string]string{k: v} }
}

func (f *drainFixture) pod(name, node string, opts ...podOpt) *corev1.Pod {
	f.t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{NodeName: node,
		Containers: []corev1.Container{{Name: "app", Image: "minik8s.local/busybox:1.35"}}}}
	for _, o := range opts {
		o(p)
	}
	p, err := f.h.cs.Pods.Namespace(f.ns).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *drainFixture) setPhase(name string, phase corev1.PodPhase) {
	f.t.Helper()
	ctx := context.Background()
	p, err := f.h.cs.Pods.Namespace(f.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	p.Status.Phase = phase
	if _, err := f.h.cs.Pods.Namespace(f.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// get returns the pod, or nil if it is gone.
func (f *drainFixture) get(name string) *corev1.Pod {
	f.t.Helper()
	p, err := f.h.cs.Pods.Namespace(f.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return nil
		}
		f.t.Fatal(err)
	}
	return p
}

// untouched fails unless each pod exists and is not being deleted.
func (f *drainFixture) untouched(names ...string) {
	f.t.Helper()
	for _, n := range names {
		p := f.get(n)
		if p == nil || p.DeletionTimestamp != nil {
			f.t.Errorf("pod %s: %v, want it still there and not deleting", n, p)
		}
	}
}

func (f *drainFixture) unschedulable(node string) bool {
	f.t.Helper()
	n, err := f.h.cs.Nodes.Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return n.Spec.Unschedulable
}

// fakeKubelet removes pods of node as soon as they are Terminating, as a
// kubelet does once their containers stopped; it runs until the test ends.
func (f *drainFixture) fakeKubelet(node string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	f.t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		zero := int64(0)
		for ctx.Err() == nil {
			list, err := f.h.cs.Pods.Namespace(f.ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
			if err == nil {
				for _, p := range list.Items {
					if p.DeletionTimestamp != nil {
						_ = f.h.cs.Pods.Namespace(f.ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
}

func TestCordonUncordon(t *testing.T) {
	s := apiservertest.Start(t)
	h := newHarness(t, s, "")
	f := &drainFixture{t: t, h: h, ns: "default"}
	f.node("node-1")

	if out := h.ok("cordon", "node-1", "--dry-run=client"); out != "node/node-1 cordoned (dry run)\n" {
		t.Errorf("cordon --dry-run=client: %q", out)
	}
	if out := h.ok("cordon", "node-1", "--dry-run=server"); out != "node/node-1 cordoned (server dry run)\n" {
		t.Errorf("cordon --dry-run=server: %q", out)
	}
	if f.unschedulable("node-1") {
		t.Fatal("a dry run cordoned the node")
	}
	if out := h.ok("cordon", "node-1"); out != "node/node-1 cordoned\n" {
		t.Errorf("cordon: %q", out)
	}
	if !f.unschedulable("node-1") {
		t.Fatal("cordon did not set spec.unschedulable")
	}
	if out := h.ok("cordon", "node-1"); out != "node/node-1 already cordoned\n" {
		t.Errorf("second cordon: %q", out)
	}
	if out := h.ok("get", "node", "node-1"); !strings.Contains(out, "SchedulingDisabled") {
		t.Errorf("get node after cordon:\n%s", out)
	}
	if out := h.ok("uncordon", "node-1"); out != "node/node-1 uncordoned\n" {
		t.Errorf("uncordon: %q", out)
	}
	if f.unschedulable("node-1") {
		t.Fatal("uncordon left spec.unschedulable")
	}
	// Uncordon removes the field, as kubectl does.
	if out := h.ok("get", "node", "node-1", "-o", "jsonpath={.spec}"); strings.Contains(out, "unschedulable") {
		t.Errorf("spec after uncordon: %s", out)
	}
	if out := h.ok("uncordon", "node-1"); out != "node/node-1 already uncordoned\n" {
		t.Errorf("second uncordon: %q", out)
	}

	wantContains(t, "cordon of a missing node", h.fails("cordon", "no-such-node"), `Error from server (NotFound): nodes "no-such-node" not found`)
	wantContains(t, "cordon without a node", h.fails("cordon"), "give exactly one NODE")
	wantContains(t, "uncordon of two nodes", h.fails("uncordon", "a", "b"), "give exactly one NODE")
	wantContains(t, "drain without a node", h.fails("drain"), "give exactly one NODE")
	wantContains(t, "drain of a missing node", h.fails("drain", "no-such-node"), `nodes "no-such-node" not found`)
	wantContains(t, "bad --dry-run", h.fails("drain", "node-1", "--dry-run=maybe"), "--dry-run must be none, client or server")

	help := h.ok("drain", "--help")
	wantContains(t, "drain --help", help, "Examples:", "ctl drain node-2 --force --delete-emptydir-data", "PodDisruptionBudgets",
		"--ignore-daemonsets", "--delete-emptydir-data", "--grace-period", "--timeout", "--pod-selector", "--dry-run")
	wantContains(t, "cordon --help", h.ok("cordon", "--help"), "Examples:", "ctl cordon node-2")
	wantContains(t, "uncordon --help", h.ok("uncordon", "--help"), "Examples:", "ctl uncordon node-2")
}

func TestDrain(t *testing.T) {
	s := apiservertest.Start(t)
	h := newHarness(t, s, "")
	f := &drainFixture{t: t, h: h, ns: "default"}
	f.node("node-1")
	f.node("node-2")
	f.pod("web-1", "node-1", managed)
	f.pod("web-2", "node-1", managed)
	f.pod("bare", "node-1")
	f.pod("cache", "node-1", managed, withEmptyDir)
	f.pod("job-done", "node-1") // unmanaged but finished: never blocks
	f.setPhase("job-done", corev1.PodSucceeded)
	f.pod("elsewhere", "node-2")
	all := []string{"web-1", "web-2", "bare", "cache", "job-done", "elsewhere"}

	t.Run("blocked", func(t *testing.T) {
		out, errOut, code := h.run("drain", "node-1")
		if code != 1 {
			t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if out != "node/node-1 cordoned\n" {
			t.Errorf("stdout %q, want only the cordon", out)
		}
		wantContains(t, "drain stderr", errOut, `error: unable to drain node "node-1"`,
			"cannot delete Pods that declare no controller (use --force to override): default/bare\n",
			"cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache")
		if strings.Contains(errOut, "job-done") || strings.Contains(errOut, "elsewhere") {
			t.Errorf("finished or other-node pods named:\n%s", errOut)
		}
		if !f.unschedulable("node-1") {
			t.Error("a blocked drain must still leave the node cordoned")
		}
		f.untouched(all...)

		// --force lets the unmanaged pod go; the emptyDir still blocks.
		errOut = h.fails("drain", "node-1", "--force")
		wantContains(t, "drain --force", errOut, "cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache")
		if strings.Contains(errOut, "no controller") {
			t.Errorf("--force still complains about unmanaged pods:\n%s", errOut)
		}
		// and --delete-emptydir-data alone leaves the unmanaged pod blocking.
		errOut = h.fails("drain", "node-1", "--delete-emptydir-data")
		wantContains(t, "drain --delete-emptydir-data", errOut, "cannot delete Pods that declare no controller (use --force to override): default/bare")
		if strings.Contains(errOut, "local storage") {
			t.Errorf("--delete-emptydir-data still complains about local storage:\n%s", errOut)
		}
		f.untouched(all...)
	})

	flags := []string{"--ignore-daemonsets", "--force", "--delete-emptydir-data"}
	t.Run("dry runs", func(t *testing.T) {
		out, errOut, code := h.run(append([]string{"drain", "node-1", "--dry-run=client"}, flags...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		want := "node/node-1 already cordoned (dry run)\n" +
			"evicting pod default/bare (dry run)\nevicting pod default/cache (dry run)\nevicting pod default/job-done (dry run)\n" +
			"evicting pod default/web-1 (dry run)\nevicting pod default/web-2 (dry run)\nnode/node-1 drained (dry run)\n"
		if out != want {
			t.Errorf("--dry-run=client stdout:\n%s\nwant:\n%s", out, want)
		}
		if errOut != "Warning: deleting Pods that declare no controller: default/bare; deleting Pods with local storage: default/cache\n" {
			t.Errorf("--dry-run=client stderr: %q", errOut)
		}
		out = h.ok(append([]string{"drain", "node-1", "--dry-run=server", "--grace-period=0"}, flags...)...)
		wantContains(t, "--dry-run=server", out, "evicting pod default/web-1 (server dry run)\n", "node/node-1 drained (server dry run)\n")
		if strings.Contains(out, " evicted") {
			t.Errorf("a server dry run reported evictions:\n%s", out)
		}
		f.untouched(all...)
	})

	t.Run("timeout", func(t *testing.T) {
		// No kubelet confirms the stop: the pods stay Terminating with
		// their grace period and the drain gives up.
		out, errOut, code := h.run(append([]string{"drain", "node-1", "--timeout=1s", "--pod-selector=app=slow"}, flags...)...)
		if code != 0 || !strings.HasSuffix(out, "node/node-1 drained\n") {
			t.Fatalf("drain of no pods: exit %d\n%s%s", code, out, errOut)
		}
		f.pod("slow", "node-1", managed, labelled("app", "slow"))
		out, errOut, code = h.run(append([]string{"drain", "node-1", "--timeout=1s", "--pod-selector=app=slow"}, flags...)...)
		if code != 1 {
			t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		wantContains(t, "timed-out drain stdout", out, "evicting pod default/slow\n")
		wantContains(t, "timed-out drain stderr", errOut,
			`error: unable to drain node "node-1" (it stays cordoned): timed out after 1s waiting for these pods to terminate: default/slow`)
		p := f.get("slow")
		if p == nil || p.DeletionTimestamp == nil {
			t.Fatalf("slow pod after eviction: %+v, want Terminating", p)
		}
		evicted := false
		for _, c := range p.Status.Conditions {
			evicted = evicted || c.Type == corev1.DisruptionTarget && c.Reason == "EvictionByEvictionAPI"
		}
		if !evicted {
			t.Errorf("slow pod conditions %+v lack DisruptionTarget/EvictionByEvictionAPI: not evicted through the eviction API?", p.Status.Conditions)
		}
		f.untouched("web-1", "web-2", "bare", "cache", "job-done", "elsewhere")
		zero := int64(0) // what the kubelet would do in the end
		if err := h.cs.Pods.Namespace("default").Delete(context.Background(), "slow", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("drained", func(t *testing.T) {
		f.fakeKubelet("node-1")
		out, errOut, code := h.run(append([]string{"drain", "node-1"}, flags...)...)
		if code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if lines[0] != "node/node-1 already cordoned" || lines[len(lines)-1] != "node/node-1 drained" {
			t.Errorf("stdout:\n%s", out)
		}
		evicting, evicted := []string{}, []string{}
		for _, l := range lines {
			if n, ok := strings.CutPrefix(l, "evicting pod "); ok {
				evicting = append(evicting, n)
			}
			if n, ok := strings.CutSuffix(l, " evicted"); ok {
				evicted = append(evicted, n)
			}
		}
		sort.Strings(evicted)
		if strings.Join(evicting, " ") != "default/bare default/cache default/job-done default/web-1 default/web-2" ||
			strings.Join(evicted, " ") != "pod/bare pod/cache pod/job-done pod/web-1 pod/web-2" {
			t.Errorf("evicting %v, evicted %v", evicting, evicted)
		}
		for _, n := range []string{"web-1", "web-2", "bare", "cache", "job-done"} {
			if p := f.get(n); p != nil {
				t.Errorf("pod %s still there after the drain", n)
			}
		}
		f.untouched("elsewhere")
		if !f.unschedulable("node-1") {
			t.Error("a drained node must stay cordoned")
		}
		h.ok("uncordon", "node-1")
	})

	t.Run("pod selector and grace period", func(t *testing.T) {
		f.pod("a-1", "node-2", managed, labelled("app", "a"))
		f.pod("b-1", "node-2", managed, labelled("app", "b"))
		out := h.ok("drain", "node-2", "--pod-selector", "app=a", "--grace-period=0")
		want := "node/node-2 cordoned\nevicting pod default/a-1\npod/a-1 evicted\nnode/node-2 drained\n"
		if out != want {
			t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
		}
		if f.get("a-1") != nil {
			t.Error("a-1 still there: --grace-period=0 should remove it at once")
		}
		f.untouched("b-1", "elsewhere")
	})

	t.Run("disable eviction", func(t *testing.T) {
		f.pod("c-1", "node-2", managed, labelled("app", "c"))
		out := h.ok("drain", "node-2", "--pod-selector", "app=c", "--grace-period=0", "--disable-eviction")
		if want := "node/node-2 already cordoned\npod/c-1 deleted\nnode/node-2 drained\n"; out != want {
			t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
		}
	})
}

// TestKubectlDrainEvicts checks that stock kubectl finds the eviction
// subresource and evicts (it would fall back to deleting and print
// "deleted" without it), and that ctl prints what kubectl prints.
func TestKubectlDrainEvicts(t *testing.T) {
	kubectlPath := findKubectl(t)
	s := apiservertest.Start(t)
	h := newHarness(t, s, "")
	k := &stockKubectl{t: t, path: kubectlPath, kubeconfig: s.Kubeconfig, cacheDir: t.TempDir()}
	f := &drainFixture{t: t, h: h, ns: "default"}
	f.node("by-ctl")
	f.node("by-kubectl")
	f.pod("web-ctl", "by-ctl", managed)
	f.pod("web-kubectl", "by-kubectl", managed)

	norm := func(out, node, pod string) string {
		return strings.NewReplacer(node, "NODE", pod, "POD").Replace(out)
	}
	for _, args := range [][]string{{"cordon"}, {"cordon"}, {"uncordon"}, {"uncordon"}, {"cordon", "--dry-run=client"}} {
		c := h.ok(append([]string{args[0], "by-ctl"}, args[1:]...)...)
		kc := k.ok(append([]string{args[0], "by-kubectl"}, args[1:]...)...)
		if norm(c, "by-ctl", "") != norm(kc, "by-kubectl", "") {
			t.Errorf("%v: ctl %q, kubectl %q", args, c, kc)
		}
	}

	drain := []string{"--ignore-daemonsets", "--delete-emptydir-data", "--grace-period=0", "--timeout=60s"}
	kOut := k.ok(append([]string{"drain", "by-kubectl"}, drain...)...)
	wantContains(t, "kubectl drain", kOut, "evicting pod default/web-kubectl\n", "pod/web-kubectl evicted\n", "node/by-kubectl drained\n")
	if f.get("web-kubectl") != nil {
		t.Error("kubectl drain left the pod")
	}
	cOut := h.ok(append([]string{"drain", "by-ctl"}, drain...)...)
	if norm(cOut, "by-ctl", "web-ctl") != norm(kOut, "by-kubectl", "web-kubectl") {
		t.Errorf("drain output differs\nctl:\n%s\nkubectl:\n%s", cOut, kOut)
	}
}

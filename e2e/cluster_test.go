//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// TestCluster runs the cluster scenarios of issue #8 in order on one real
// 3-node local cluster (hack/local-cluster: the server as node-0 plus two
// netns nodes, each with its own containerd, kubelet, proxy and pod
// routes). Each scenario is a subtest, so `go test -v` prints its
// duration; the disruptive ones (node loss, control-plane crash) run last.
func TestCluster(t *testing.T) {
	c := startLocalCluster(t)
	steps := []struct {
		name string
		run  func(*testing.T, *localCluster)
	}{
		{"1-DeploymentAndServiceAcrossNodes", scenarioDeployAndServe},
		{"2-RollingUpdateZeroFailedRequestsAndUndo", scenarioRollingUpdate},
		{"4-ConfigMapAndSecretAsEnvAndFiles", scenarioConfig},
		{"5-Scale3To20To2", scenarioScale},
		{"7-StockKubectl", scenarioKubectl},
		{"3-SelfHealing", scenarioSelfHealing},
		{"8-DrainNode", scenarioDrain},
		{"6-ControlPlaneCrashDuringRollout", scenarioControlPlaneCrash},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { c.t = t; s.run(t, c) }) {
			c.t = t
			t.Fatalf("scenario %s failed; later scenarios need a healthy cluster", s.name)
		}
		c.t = t
	}
}

func (c *localCluster) namespace(name string) string {
	c.t.Helper()
	if _, err := c.cs.Namespaces.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
	return name
}

// serviceURLs are the web Service's cluster IP URL and its node port on
// every node.
func (c *localCluster) serviceURLs(ns string) (string, []string) {
	s := c.service(ns, "web")
	var nodePorts []string
	for _, ip := range nodeIPs {
		nodePorts = append(nodePorts, fmt.Sprintf("http://%s:%d", ip, s.Spec.Ports[0].NodePort))
	}
	return fmt.Sprintf("http://%s:%d", s.Spec.ClusterIP, s.Spec.Ports[0].Port), nodePorts
}

// 1. Deployment + Service from examples/: every replica Running, spread
// over the nodes; the ClusterIP reaches every backend from the host and
// from a pod network namespace of another node; the NodePort answers on
// every node's address.
func scenarioDeployAndServe(t *testing.T, c *localCluster) {
	ns := c.namespace("s1")
	c.mustCtl("apply", "-n", ns, "-f", "examples/deployment.yaml")
	took := c.waitReplicas(ns, "web", 3, 3*time.Minute)
	t.Logf("3 replicas ready %v after apply", took.Round(100*time.Millisecond))
	nodes := map[string]bool{}
	for _, p := range c.readyPods(ns, "app=web") {
		nodes[p.Spec.NodeName] = true
	}
	if len(nodes) < 2 {
		t.Errorf("3 replicas all on %v: the scheduler did not spread them", nodes)
	}
	t.Logf("replicas on nodes %v", keys(nodes))
	clusterIP, nodePorts := c.serviceURLs(ns)
	eventually(t, 30*time.Second, "endpoints for 3 backends", func() string {
		if n := c.endpointsCount(ns, "web"); n != 3 {
			return fmt.Sprintf("%d addresses", n)
		}
		return ""
	})
	// Every backend answers through the cluster IP, wherever it runs.
	seen := allBackends(t, clusterIP, 3, 60)
	t.Logf("60 requests to %s from node-0: %v", clusterIP, seen)
	// From node-1's network namespace (another node's proxy) too.
	out, err := c.script("exec", "node-1", "--", "curl", "-sS", "-m", "3", clusterIP+"/version")
	if err != nil || strings.TrimSpace(out) != "v1" {
		t.Errorf("curl from node-1 to %s: %v %q", clusterIP, err, out)
	}
	for _, u := range nodePorts {
		if v, err := httpGet(u + "/version"); err != nil || v != "v1" {
			t.Errorf("node port %s: %q %v", u, v, err)
		}
	}
	// Pod to pod across nodes, by pod IP: the answer comes back, and the
	// server sees the client pod's own IP (pod routes, no masquerade).
	pods := c.readyPods(ns, "app=web")
	var from, to *corev1.Pod
	for i := range pods {
		for j := range pods {
			if pods[i].Spec.NodeName != pods[j].Spec.NodeName {
				from, to = &pods[i], &pods[j]
			}
		}
	}
	if from == nil {
		t.Fatal("no two web pods on different nodes")
	}
	out, err = c.ctl("exec", "-n", ns, from.Name, "--", "wget", "-qO-", "http://"+to.Status.PodIP+":8080/hostname")
	if err != nil || strings.TrimSpace(out) != to.Name {
		t.Fatalf("%s (%s) -> %s (%s) by pod IP: %q %v", from.Name, from.Spec.NodeName, to.Name, to.Spec.NodeName, out, err)
	}
	eventually(t, 10*time.Second, "the server's log shows the client pod's IP", func() string {
		logs, _ := c.ctl("logs", "-n", ns, to.Name)
		if !strings.Contains(logs, from.Status.PodIP) {
			return fmt.Sprintf("%s's log has no %s:\n%s", to.Name, from.Status.PodIP, tail(logs, 5))
		}
		return ""
	})
}

// load sends one request (new connection) every 20 ms to url until stop,
// counting answers by body and failures.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	bodies     map[string]int
	errs       []string
	stop       chan struct{}
	done       sync.WaitGroup
}

func startLoad(url string) *load {
	l := &load{bodies: map[string]int{}, stop: make(chan struct{})}
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			body, err := httpGet(url)
			l.mu.Lock()
			if err != nil {
				l.failed.Add(1)
				if len(l.errs) < 10 {
					l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
				}
			} else {
				l.ok.Add(1)
				l.bodies[body]++
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *load) finish() (ok, failed int64, bodies map[string]int, errs []string) {
	close(l.stop)
	l.done.Wait()
	return l.ok.Load(), l.failed.Load(), l.bodies, l.errs
}

// 2. Rolling update v1 -> v2 under continuous requests through the cluster
// IP: no request fails, the end state serves v2; then rollout undo brings
// v1 back, again without a failed request.
func scenarioRollingUpdate(t *testing.T, c *localCluster) {
	ns := "s1"
	clusterIP, _ := c.serviceURLs(ns)
	for _, step := range []struct {
		what string
		args []string
		want string
	}{
		{"set image v2", []string{"set", "image", "-n", ns, "deployment/web", "web=minik8s.local/web:v2"}, "v2"},
		{"rollout undo", []string{"rollout", "undo", "-n", ns, "deployment/web"}, "v1"},
	} {
		l := startLoad(clusterIP + "/version")
		start := time.Now()
		c.mustCtl(step.args...)
		c.mustCtl("rollout", "status", "-n", ns, "deployment/web", "--timeout", "180s")
		took := time.Since(start)
		// Let the old pods finish terminating under load too.
		eventually(t, 90*time.Second, "old pods gone", func() string {
			if n := len(c.pods(ns, "app=web")); n != 3 {
				return fmt.Sprintf("%d pods", n)
			}
			return ""
		})
		ok, failed, bodies, errs := l.finish()
		t.Logf("%s: rolled out in %v; %d requests ok %v, %d failed %v", step.what, took.Round(100*time.Millisecond), ok, bodies, failed, errs)
		if failed > 0 {
			t.Errorf("%s: %d of %d requests failed during the rollout", step.what, failed, ok+failed)
		}
		if ok < 100 {
			t.Errorf("%s: only %d requests ran; the load did not cover the rollout", step.what, ok)
		}
		for i := range 20 {
			if v, err := httpGet(clusterIP + "/version"); err != nil || v != step.want {
				t.Fatalf("%s: request %d after the rollout answered %q (%v), want %s", step.what, i, v, err, step.want)
			}
		}
	}
	if out := c.mustCtl("rollout", "history", "-n", ns, "deployment/web"); !strings.Contains(out, "REVISION") {
		t.Errorf("rollout history: %s", out)
	}
}

// 4. A ConfigMap and a Secret consumed as env and as files; changing the
// ConfigMap changes the file in the running container.
func scenarioConfig(t *testing.T, c *localCluster) {
	ns := c.namespace("s4")
	manifest := `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  greeting: hello
  app.properties: |
    mode=blue
---
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
stringData:
  password: s3cr3t
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: minik8s.local/busybox:1.35
        command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
        env:
        - name: GREETING
          valueFrom: {configMapKeyRef: {name: app-config, key: greeting}}
        - name: PASSWORD
          valueFrom: {secretKeyRef: {name: app-secret, key: password}}
        volumeMounts:
        - {name: config, mountPath: /etc/app}
        - {name: secret, mountPath: /etc/secret, readOnly: true}
      volumes:
      - name: config
        configMap: {name: app-config}
      - name: secret
        secret: {secretName: app-secret}
`
	f := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	c.mustCtl("apply", "-n", ns, "-f", f)
	c.waitReplicas(ns, "app", 1, 2*time.Minute)
	pod := c.readyPods(ns, "app=app")[0].Name
	out := c.mustCtl("exec", "-n", ns, pod, "--", "sh", "-c", "echo $GREETING $PASSWORD; cat /etc/app/app.properties /etc/secret/password")
	if want := "hello s3cr3t\nmode=blue\ns3cr3t"; strings.TrimSpace(out) != want {
		t.Fatalf("env and files: %q, want %q", out, want)
	}
	c.mustCtl("patch", "-n", ns, "configmap", "app-config", "--type", "merge", "-p", `{"data":{"app.properties":"mode=green\n"}}`)
	took := eventually(t, 90*time.Second, "the mounted file follows the ConfigMap", func() string {
		out, _ := c.ctl("exec", "-n", ns, pod, "--", "cat", "/etc/app/app.properties")
		if strings.TrimSpace(out) != "mode=green" {
			return fmt.Sprintf("file says %q", out)
		}
		return ""
	})
	t.Logf("ConfigMap change visible in the container's file after %v", took.Round(100*time.Millisecond))
}

// 5. ctl scale 3 -> 20 -> 2; the Service's endpoints follow.
func scenarioScale(t *testing.T, c *localCluster) {
	ns := "s1"
	for _, n := range []int{20, 2} {
		start := time.Now()
		c.mustCtl("scale", "-n", ns, "deployment/web", fmt.Sprintf("--replicas=%d", n))
		c.waitReplicas(ns, "web", n, 4*time.Minute)
		ready := time.Since(start)
		eventually(t, 30*time.Second, fmt.Sprintf("endpoints at %d", n), func() string {
			if got := c.endpointsCount(ns, "web"); got != n {
				return fmt.Sprintf("%d addresses", got)
			}
			return ""
		})
		nodes := map[string]int{}
		for _, p := range c.readyPods(ns, "app=web") {
			nodes[p.Spec.NodeName]++
		}
		t.Logf("scaled to %d: ready in %v, endpoints %d after %v; pods per node %v", n, ready.Round(100*time.Millisecond),
			n, time.Since(start).Round(100*time.Millisecond), nodes)
	}
}

// 7. A stock kubectl drives scenario 1 in its own namespace.
func scenarioKubectl(t *testing.T, c *localCluster) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl is not installed; hack/install-deps --test installs it")
	}
	ver, _ := c.run(kubectl, "version", "--client")
	t.Logf("%s", strings.TrimSpace(ver))
	for _, args := range [][]string{
		{"create", "namespace", "s7"},
		{"apply", "-n", "s7", "-f", "examples/deployment.yaml"},
		{"rollout", "status", "-n", "s7", "deployment/web", "--timeout=180s"},
		{"get", "-n", "s7", "pods,svc,endpoints", "-o", "wide"},
	} {
		out, err := c.run(kubectl, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[0] == "get" {
			t.Logf("kubectl get:\n%s", out)
		}
	}
	eventually(t, 30*time.Second, "endpoints for 3 backends", func() string {
		if n := c.endpointsCount("s7", "web"); n != 3 {
			return fmt.Sprintf("%d addresses", n)
		}
		return ""
	})
	clusterIP, nodePorts := c.serviceURLs("s7")
	t.Logf("45 requests to %s: %v", clusterIP, allBackends(t, clusterIP, 3, 45))
	for _, u := range nodePorts {
		if v, err := httpGet(u + "/version"); err != nil || v != "v1" {
			t.Errorf("node port %s: %q %v", u, v, err)
		}
	}
	if out, err := c.run(kubectl, "delete", "namespace", "s7", "--wait=false"); err != nil {
		t.Errorf("kubectl delete namespace: %v\n%s", err, out)
	}
}

// 3. Self-healing: a deleted pod is replaced; a killed container is
// restarted in place; a node that goes silent loses its pods to the
// others (its kubelet is stopped; the node-monitor grace period is 20 s
// and pods tolerate an unreachable node for 10 s in this cluster); once
// its Node is deleted, pod GC removes the pods it left Terminating, and
// the node joins again when its agent comes back.
func scenarioSelfHealing(t *testing.T, c *localCluster) {
	ns := "s1"
	c.mustCtl("scale", "-n", ns, "deployment/web", "--replicas=3")
	c.waitReplicas(ns, "web", 3, 3*time.Minute)

	victim := c.readyPods(ns, "app=web")[0]
	c.mustCtl("delete", "-n", ns, "pod", victim.Name, "--wait=false")
	took := eventually(t, 2*time.Minute, "a replacement for the deleted pod", func() string {
		ready := c.readyPods(ns, "app=web")
		for _, p := range ready {
			if p.Name == victim.Name {
				return "the deleted pod is still ready"
			}
		}
		if len(ready) != 3 {
			return fmt.Sprintf("%d ready", len(ready))
		}
		return ""
	})
	t.Logf("deleted pod %s replaced in %v", victim.Name, took.Round(100*time.Millisecond))

	// Kill the container's server process from the host: the container
	// exits and the kubelet restarts it (restartCount goes up).
	target := c.readyPods(ns, "app=web")[0]
	pid := findProcess(t, string(target.UID), "httpd")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, 2*time.Minute, "the killed container restarted", func() string {
		p, err := c.cs.Pods.Namespace(ns).Get(context.Background(), target.Name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].RestartCount < 1 || !podIsReady(p) {
			return fmt.Sprintf("statuses %+v", p.Status.ContainerStatuses)
		}
		return ""
	})
	t.Logf("killed container of %s (pid %d) restarted and ready in %v", target.Name, pid, took.Round(100*time.Millisecond))

	// Lose a node that runs pods: not node-0, which hosts the control plane.
	lost := ""
	for _, p := range c.readyPods(ns, "app=web") {
		if p.Spec.NodeName != "node-0" {
			lost = p.Spec.NodeName
			break
		}
	}
	if lost == "" {
		t.Fatal("no web pod outside node-0 to lose")
	}
	if out, err := c.script("stop-node", lost); err != nil {
		t.Fatalf("stop-node %s: %v\n%s", lost, err, out)
	}
	took = eventually(t, 3*time.Minute, "3 ready replicas off the lost node", func() string {
		n := 0
		for _, p := range c.readyPods(ns, "app=web") {
			if p.Spec.NodeName != lost {
				n++
			}
		}
		if n != 3 {
			return fmt.Sprintf("%d ready elsewhere", n)
		}
		return ""
	})
	t.Logf("node %s stopped: its pods ran elsewhere after %v (grace 20 s + toleration 10 s + start)", lost, took.Round(100*time.Millisecond))
	clusterIP, _ := c.serviceURLs(ns)
	for i := range 20 {
		if _, err := httpGet(clusterIP + "/version"); err != nil {
			t.Errorf("request %d after the node loss: %v", i, err)
		}
	}
	// The lost node's pods stay Terminating: no kubelet confirms their
	// end. Deleting the Node (the machine is gone for good) lets pod GC
	// force-delete them after its quarantine (10 s in this cluster).
	if n := len(c.pods(ns, "app=web")); n <= 3 {
		t.Errorf("%d web pods while %s is down, want its old ones still listed as Terminating", n, lost)
	}
	c.mustCtl("delete", "node", lost)
	took = eventually(t, 2*time.Minute, "the lost node's pods removed by pod GC", func() string {
		for _, p := range c.pods(ns, "app=web") {
			if p.Spec.NodeName == lost {
				return "pod " + p.Name + " still on " + lost
			}
		}
		return ""
	})
	t.Logf("node %s deleted: pod GC removed its pods after %v (quarantine 10 s)", lost, took.Round(100*time.Millisecond))
	if out, err := c.script("start-node", lost); err != nil {
		t.Fatalf("start-node %s: %v\n%s", lost, err, out)
	}
	eventually(t, 2*time.Minute, lost+" Ready again and its old pods gone", func() string {
		n, err := c.cs.Nodes.Get(context.Background(), lost, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		ready := false
		for _, cond := range n.Status.Conditions {
			ready = ready || (cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue)
		}
		if !ready {
			return "not Ready"
		}
		if n := len(c.pods(ns, "app=web")); n != 3 {
			return fmt.Sprintf("%d pods (terminating ones not yet removed)", n)
		}
		return ""
	})
}

// 8. Node maintenance: `ctl drain` cordons a node and evicts its web
// pods through the eviction subresource while requests keep coming
// through the ClusterIP; the ReplicaSet replaces them on the other nodes,
// nothing new lands on the cordoned node, and `ctl uncordon` opens it
// again.
func scenarioDrain(t *testing.T, c *localCluster) {
	ns := "s1"
	c.waitReplicas(ns, "web", 3, 3*time.Minute)
	node := ""
	for _, p := range c.readyPods(ns, "app=web") {
		if node == "" || node == "node-0" {
			node = p.Spec.NodeName
		}
	}
	clusterIP, _ := c.serviceURLs(ns)
	l := startLoad(clusterIP + "/version")
	start := time.Now()
	out := c.mustCtl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--pod-selector", "app=web", "--timeout", "120s")
	drained := time.Since(start)
	if !strings.Contains(out, "evicted") || !strings.Contains(out, "node/"+node+" drained") {
		t.Errorf("ctl drain %s printed:\n%s", node, out)
	}
	took := eventually(t, 2*time.Minute, "3 ready replicas off the drained node", func() string {
		n := 0
		for _, p := range c.pods(ns, "app=web") {
			if p.Spec.NodeName == node {
				return "a web pod is still on " + node
			}
			if podIsReady(&p) {
				n++
			}
		}
		if n != 3 {
			return fmt.Sprintf("%d ready", n)
		}
		return ""
	})
	ok, failed, _, errs := l.finish()
	t.Logf("drained %s in %v, 3 ready elsewhere after %v; %d requests ok, %d failed %v", node, drained.Round(100*time.Millisecond),
		took.Round(100*time.Millisecond), ok, failed, errs)
	if failed > 0 {
		t.Errorf("%d of %d requests failed during the drain", failed, ok+failed)
	}
	n, err := c.cs.Nodes.Get(context.Background(), node, metav1.GetOptions{})
	if err != nil || !n.Spec.Unschedulable {
		t.Fatalf("node %s after the drain: unschedulable=%v, err %v", node, n != nil && n.Spec.Unschedulable, err)
	}
	c.mustCtl("uncordon", node)
	n, err = c.cs.Nodes.Get(context.Background(), node, metav1.GetOptions{})
	if err != nil || n.Spec.Unschedulable {
		t.Fatalf("node %s after uncordon: unschedulable=%v, err %v", node, n != nil && n.Spec.Unschedulable, err)
	}
}

// findProcess returns the pid of the process whose command line starts
// with name inside the pod with uid (its cgroup path names the pod).
func findProcess(t *testing.T, uid, name string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cg, err := os.ReadFile(p + "/cgroup")
		if err != nil || !strings.Contains(string(cg), "pod"+uid) {
			continue
		}
		cmd, _ := os.ReadFile(p + "/cmdline")
		if strings.HasPrefix(string(cmd), name) {
			var pid int
			fmt.Sscanf(filepath.Base(p), "%d", &pid)
			return pid
		}
	}
	t.Fatalf("no %s process in pod %s", name, uid)
	return 0
}

// 6. The control plane (API server, controller-manager and scheduler, one
// process here) is SIGKILLed in the middle of a rollout and started again
// on the same data: the rollout completes and no object is lost.
func scenarioControlPlaneCrash(t *testing.T, c *localCluster) {
	ns := c.namespace("s6")
	ctx := context.Background()
	var before []string
	for i := range 30 {
		name := fmt.Sprintf("keep-%02d", i)
		if _, err := c.cs.ConfigMaps.Namespace(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name},
			Data: map[string]string{"i": fmt.Sprint(i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		before = append(before, name)
	}
	c.mustCtl("apply", "-n", ns, "-f", "examples/deployment.yaml")
	c.mustCtl("scale", "-n", ns, "deployment/web", "--replicas=6")
	c.waitReplicas(ns, "web", 6, 3*time.Minute)

	c.mustCtl("set", "image", "-n", ns, "deployment/web", "web=minik8s.local/web:v2")
	eventually(t, time.Minute, "the rollout under way", func() string {
		d := c.deployment(ns, "web")
		if d.Status.UpdatedReplicas < 1 {
			return "no updated replica yet"
		}
		return ""
	})
	if out, err := c.script("kill-server"); err != nil {
		t.Fatalf("kill-server: %v\n%s", err, out)
	}
	time.Sleep(2 * time.Second)
	start := time.Now()
	if out, err := c.script("start-server"); err != nil {
		t.Fatalf("start-server: %v\n%s", err, out)
	}
	t.Logf("control plane back %v after restart", time.Since(start).Round(100*time.Millisecond))
	took := c.waitReplicas(ns, "web", 6, 4*time.Minute)
	t.Logf("rollout finished %v after the restart", took.Round(100*time.Millisecond))

	d := c.deployment(ns, "web")
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "minik8s.local/web:v2" {
		t.Errorf("deployment image %s after the crash", img)
	}
	eventually(t, 2*time.Minute, "exactly 6 pods, all v2", func() string {
		pods := c.pods(ns, "app=web")
		var bad []string
		for _, p := range pods {
			if p.Spec.Containers[0].Image != "minik8s.local/web:v2" || !podIsReady(&p) {
				bad = append(bad, p.Name)
			}
		}
		if len(pods) != 6 || len(bad) > 0 {
			return fmt.Sprintf("%d pods, not ready v2: %v", len(pods), bad)
		}
		return ""
	})
	rs, err := c.cs.ReplicaSets.Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Items) != 2 {
		t.Errorf("%d ReplicaSets after the rollout, want 2 (old and new)", len(rs.Items))
	}
	cms, err := c.cs.ConfigMaps.Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var after []string
	for _, cm := range cms.Items {
		if strings.HasPrefix(cm.Name, "keep-") {
			after = append(after, cm.Name)
		}
	}
	sort.Strings(after)
	if strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("ConfigMaps after the crash: %v, want %v", after, before)
	}
	// Objects of the earlier scenarios survived too.
	if _, err := c.cs.Secrets.Namespace("s4").Get(ctx, "app-secret", metav1.GetOptions{}); err != nil {
		t.Errorf("the s4 Secret after the crash: %v", err)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

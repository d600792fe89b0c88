//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/hack/images/imagebuild"
	"github.com/minik8s/minik8s/proxy"
	"github.com/minik8s/minik8s/proxy/proxytest"
)

// ppFollowDeadline is how long the proxy may take to make the node's
// rules match an Endpoints change (a functional bound, polled; the
// measured latencies are printed).
const ppFollowDeadline = 2 * time.Second

// TestProxyPodsSingleNode runs Services over real pods: a single-node
// cluster from the binaries (see startPPCluster), a Deployment of
// minik8s.local/web behind a ClusterIP and a NodePort Service, and checks
// that the proxy's iptables rules carry real traffic — from the node,
// from another pod, through the node port — to every backend, follow the
// Deployment as it scales, refuse connections to a Service without
// endpoints at once, and that `minik8s proxy --cleanup` leaves no KUBE-*
// chain behind.
func TestProxyPodsSingleNode(t *testing.T) {
	c := startPPCluster(t)
	proxyProc := c.startProxy()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ns := "default"

	// The web image serves static files (/version, /healthz, /index.html)
	// but not its host name; the container writes it next to them before
	// starting the same httpd, so each answer names the pod behind it.
	labels := map[string]string{"app": "web"}
	grace := int64(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ppInt32(3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{
						Name: "web", Image: imagebuild.WebV1Image, ImagePullPolicy: corev1.PullNever,
						Command: []string{"/bin/sh", "-c", `trap 'exit 0' TERM INT; hostname > /www/hostname; httpd -f -p 8080 -h /www & wait $!`},
						Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/hostname", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
	if _, err := c.cs.Deployments.Namespace(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svcPort := corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http")}
	mkSvc := func(name string, typ corev1.ServiceType, selector map[string]string) *corev1.Service {
		s, err := c.cs.Services.Namespace(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       corev1.ServiceSpec{Type: typ, Selector: selector, Ports: []corev1.ServicePort{svcPort}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cip := mkSvc("web", corev1.ServiceTypeClusterIP, labels)
	np := mkSvc("web-np", corev1.ServiceTypeNodePort, labels)
	empty := mkSvc("nobody", corev1.ServiceTypeClusterIP, map[string]string{"app": "nobody"})
	cipAddr := net.JoinHostPort(cip.Spec.ClusterIP, "80")
	nodePort := np.Spec.Ports[0].NodePort
	t.Logf("services: web %s, web-np %s node port %d, nobody %s", cipAddr, np.Spec.ClusterIP, nodePort, empty.Spec.ClusterIP)

	// A client pod that is not a backend.
	if _, err := c.cs.Pods.Namespace(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: ns},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{
			Name: "sh", Image: imagebuild.BusyboxImage, ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"},
		}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// readyBackends returns the ready web pods (name -> IP) once the
	// Endpoints of "web" list exactly them, n of them, and the proxy's
	// rules send traffic to exactly those IPs.
	readyBackends := func(n int) map[string]string {
		t.Helper()
		var byIP map[string]string
		c.eventually(fmt.Sprintf("%d ready web backends in Endpoints and iptables", n), 4*time.Minute, func() string {
			pods, err := c.cs.Pods.Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return err.Error()
			}
			byIP = map[string]string{}
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil && ready(&p) {
					byIP[p.Status.PodIP] = p.Name
				}
			}
			if len(byIP) != n {
				return fmt.Sprintf("%d ready pods", len(byIP))
			}
			eps, err := c.cs.Endpoints.Namespace(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if got, want := ppReadyIPs(eps), ppSortedKeys(byIP); !slices.Equal(got, want) {
				return fmt.Sprintf("endpoints %v, ready pods %v", got, want)
			}
			rules, err := c.serviceTargets(ns + "/web:http")
			if err != nil {
				return err.Error()
			}
			if want := ppSortedKeys(byIP); !slices.Equal(rules, want) {
				return fmt.Sprintf("iptables sends to %v, ready pods %v", rules, want)
			}
			return ""
		})
		return byIP
	}
	backends := readyBackends(3)
	c.eventually("client pod running", 3*time.Minute, func() string {
		p, err := c.cs.Pods.Namespace(ns).Get(ctx, "client", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if !running(p) {
			return string(p.Status.Phase)
		}
		return ""
	})

	hc := c.nodeHTTP()
	get := func(client *http.Client, u string) (string, error) {
		resp, err := client.Get(u)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: HTTP %d: %s", u, resp.StatusCode, b)
		}
		return strings.TrimSpace(string(b)), err
	}
	// spread sends n requests (a connection each) and counts the pods
	// that answered; every answer must come from a pod in want.
	spread := func(what string, client *http.Client, u string, n int, want map[string]string) map[string]int {
		t.Helper()
		counts := map[string]int{}
		for i := 0; i < n; i++ {
			host, err := get(client, u)
			if err != nil {
				t.Fatalf("%s: request %d/%d: %v", what, i+1, n, err)
			}
			counts[host]++
		}
		ppCheckSpread(t, what, counts, n, want)
		return counts
	}

	// 1. From the node itself to the cluster IP (OUTPUT chain).
	if v, err := get(hc, "http://"+cipAddr+"/version"); err != nil || v != "v1" {
		t.Fatalf("GET /version through the cluster IP: %q, %v", v, err)
	}
	spread("node -> cluster IP", hc, "http://"+cipAddr+"/hostname", 100, backends)

	// 2. From another pod (PREROUTING on the pod bridge; replies come back
	// through the node's conntrack): 100 wgets in one exec. No wget -T:
	// Debian 12's busybox-static 1.35 segfaults with it; the kubelet's exec
	// timeout (60 s) bounds these instead.
	out, code, err := c.exec("client", "sh", "sh", "-c",
		fmt.Sprintf("for i in $(seq 100); do wget -q -O- http://%s/hostname || echo FAILED; done", cipAddr))
	if err != nil || (code != "" && code != "0") {
		t.Fatalf("exec wget in client pod: exit %q, %v: %s", code, err, out)
	}
	podCounts := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		podCounts[strings.TrimSpace(l)]++
	}
	ppCheckSpread(t, "pod -> cluster IP", podCounts, 100, backends)

	// 3. The node port on the node's address, from outside the node (the
	// test's own namespace, over the veth).
	outside := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	spread("outside -> node IP:node port", outside, fmt.Sprintf("http://%s:%d/hostname", ppNodeIP, nodePort), 100, backends)

	// 4. A Service without endpoints is refused at once, not left to time
	// out: from the node (filter OUTPUT) and from a pod (filter FORWARD).
	start := time.Now()
	conn, err := c.nodeDial(net.JoinHostPort(empty.Spec.ClusterIP, "80"), 5*time.Second)
	took := time.Since(start)
	if err == nil {
		conn.Close()
		t.Fatalf("connected to %s, a service without endpoints", empty.Spec.ClusterIP)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("node -> service without endpoints: %v after %s, want connection refused", err, took)
	}
	t.Logf("node -> service without endpoints: refused after %s", took.Round(time.Microsecond))
	// Timed inside the pod (by /proc/uptime, 10 ms steps), so the exec
	// round trip does not count.
	out, code, err = c.exec("client", "sh", "sh", "-c", fmt.Sprintf(
		`read a _ </proc/uptime; wget -q -O- http://%s/ 2>&1; rc=$?; read b _ </proc/uptime; echo "exit=$rc uptime_before=$a after=$b"`,
		net.JoinHostPort(empty.Spec.ClusterIP, "80")))
	if err != nil || !strings.Contains(out, "Connection refused") || strings.Contains(out, "exit=0") {
		t.Fatalf("pod -> service without endpoints: exit %q, %v: %q; want connection refused", code, err, out)
	}
	var before, after float64
	if i := strings.Index(out, "uptime_before="); i < 0 {
		t.Fatalf("pod -> service without endpoints: no timing in %q", out)
	} else if _, err := fmt.Sscanf(out[i:], "uptime_before=%g after=%g", &before, &after); err != nil {
		t.Fatalf("pod -> service without endpoints: timing in %q: %v", out, err)
	}
	t.Logf("pod -> service without endpoints: %q after %.0f ms (pod's /proc/uptime, 10 ms steps)",
		strings.TrimSpace(out[:strings.Index(out, "exit=")]), (after-before)*1000)

	// 5. Scaling 3 -> 5 -> 2: each Endpoints change reaches the rules
	// within ppFollowDeadline, and traffic follows.
	for _, replicas := range []int{5, 2} {
		lat := c.scaleAndFollow(ctx, ns, "web", replicas)
		t.Logf("scale to %d: the rules matched each Endpoints change within [%s] of the test seeing it", replicas, strings.Join(lat, ", "))
		backends = readyBackends(replicas)
		spread(fmt.Sprintf("node -> cluster IP after scaling to %d", replicas), hc, "http://"+cipAddr+"/hostname", 25*replicas, backends)
	}
	if resp, err := hc.Get("http://127.0.0.1:10249/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var sum, count string
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "kubeproxy_sync_proxy_rules_duration_seconds_sum "); ok {
				sum = v
			}
			if v, ok := strings.CutPrefix(l, "kubeproxy_sync_proxy_rules_duration_seconds_count "); ok {
				count = v
			}
		}
		t.Logf("proxy: %s syncs took %s s in all (kubeproxy_sync_proxy_rules_duration_seconds)", count, sum)
	}

	// 6. --cleanup after the proxy stopped leaves no KUBE-* chain or rule
	// in any table.
	c.stop(proxyProc)
	// Stopping leaves the rules in place (as kube-proxy does: a restart
	// must not interrupt traffic), so there is something to clean up.
	if before := proxytest.Exec(t, c.netns, "iptables-save", "-t", "nat"); !strings.Contains(before, ":KUBE-SERVICES") {
		t.Fatalf("no KUBE-SERVICES chain after the proxy stopped:\n%s", before)
	}
	if out, err := exec.Command("nsenter", "--net="+filepath.Join(proxy.NetnsDir, c.netns), "--",
		filepath.Join(c.bin, "minik8s"), "proxy", "--cleanup").CombinedOutput(); err != nil {
		t.Fatalf("minik8s proxy --cleanup: %v: %s", err, out)
	}
	for _, save := range []string{"iptables-save", "iptables-legacy-save"} {
		if _, err := exec.LookPath(save); err != nil {
			continue
		}
		out := proxytest.Exec(t, c.netns, save)
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "KUBE-") {
				t.Errorf("%s after --cleanup still has: %s", save, l)
			}
		}
	}
	// Without the rules the cluster IP is just an unrouted address.
	if conn, err := c.nodeDial(cipAddr, time.Second); err == nil {
		conn.Close()
		t.Errorf("cluster IP %s still answers after --cleanup", cipAddr)
	}
}

// scaleAndFollow scales a Deployment and follows the Endpoints of the
// Service of the same name through every change until it lists replicas
// ready addresses. For each change it polls the node's rules until they
// send traffic to exactly the listed addresses; a change superseded by the
// next one before the rules caught up is not counted. It fails if the
// rules lag an Endpoints change by more than ppFollowDeadline and returns
// the measured lags. Changes superseded before the rules caught up are
// not listed.
func (c *ppCluster) scaleAndFollow(ctx context.Context, ns, name string, replicas int) []string {
	t := c.t
	t.Helper()
	eps, err := c.cs.Endpoints.Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.cs.Endpoints.Namespace(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + name, ResourceVersion: eps.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := c.cs.Deployments.Namespace(ns).Patch(ctx, name, types.MergePatchType,
		[]byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var lags []string
	prev := ppReadyIPs(eps)
	deadline := time.After(4 * time.Minute)
	var next *corev1.Endpoints
	for {
		var e *corev1.Endpoints
		if next != nil {
			e, next = next, nil
		} else {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					t.Fatalf("endpoints watch closed")
				}
				if ev.Type != watch.Modified && ev.Type != watch.Added {
					continue
				}
				e = ev.Object.(*corev1.Endpoints)
			case <-deadline:
				t.Fatalf("scaling %s to %d: Endpoints never listed %d ready addresses", name, replicas, replicas)
			}
		}
		seen := time.Now()
		want := ppReadyIPs(e)
		if slices.Equal(want, prev) {
			continue // e.g. a new pod listed as not ready yet: nothing for the proxy to do
		}
		prev = want
		for {
			got, err := c.serviceTargets(ns + "/" + name + ":http")
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(got, want) {
				lags = append(lags, fmt.Sprintf("%d addresses: %s", len(want), time.Since(seen).Round(time.Millisecond)))
				break
			}
			select {
			case ev := <-w.ResultChan():
				if o, ok := ev.Object.(*corev1.Endpoints); ok {
					next = o // superseded: follow the newer state
				}
			default:
			}
			if next != nil {
				break
			}
			if time.Since(seen) > ppFollowDeadline {
				t.Fatalf("rules still send to %v %s after Endpoints changed to %v", got, time.Since(seen).Round(time.Millisecond), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if next == nil && len(want) == replicas {
			return lags
		}
	}
}

// ppCheckSpread fails unless n answers came back, every one from a pod in
// want (IP -> name) and every pod in want answered.
func ppCheckSpread(t *testing.T, what string, counts map[string]int, n int, want map[string]string) {
	t.Helper()
	t.Logf("%s: %d requests: %s", what, n, ppDistribution(counts))
	names := map[string]bool{}
	for _, pod := range want {
		names[pod] = true
	}
	total := 0
	for host, k := range counts {
		total += k
		if !names[host] {
			t.Errorf("%s: %d answers from %q, not a ready backend %v", what, k, host, ppSortedValues(want))
		}
	}
	if total != n {
		t.Errorf("%s: %d answers for %d requests", what, total, n)
	}
	for pod := range names {
		if counts[pod] == 0 {
			t.Errorf("%s: backend %s never answered", what, pod)
		}
	}
}

func ppReadyIPs(e *corev1.Endpoints) []string {
	var ips []string
	for _, s := range e.Subsets {
		for _, a := range s.Addresses {
			ips = append(ips, a.IP)
		}
	}
	sort.Strings(ips)
	return ips
}

func ppSortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func ppSortedValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func ppInt32(v int32) *int32 { return &v }

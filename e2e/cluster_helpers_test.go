//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/kubeconfig"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
)

// localCluster is a 3-node cluster started with hack/local-cluster: the
// server (node-0) in this network namespace, node-1 and node-2 in their
// own, all on a private bridge. Its settings differ from the script's
// defaults so a developer's own local cluster is left alone.
type localCluster struct {
	t          *testing.T
	root       string // repository root
	dir        string
	kubeconfig string
	env        []string
	cs         *typed.Clientset
}

const (
	lcNet    = "10.198.0" // outside the Service range 10.96.0.0/12
	lcPort   = "7643"
	lcNodes  = 3
	lcPrefix = "e2e-"
)

// nodeIPs are the InternalIPs of node-0..2 on the cluster's bridge.
var nodeIPs = []string{lcNet + ".1", lcNet + ".11", lcNet + ".12"}

// startLocalCluster brings the cluster up and registers its teardown,
// which must leave no process, netns, mount, bridge or KUBE-* rule.
func startLocalCluster(t *testing.T) *localCluster {
	t.Helper()
	needKubeletDeps(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("/tmp", "mk8s-lc-")
	if err != nil {
		t.Fatal(err)
	}
	c := &localCluster{t: t, root: root, dir: dir, kubeconfig: filepath.Join(dir, "server", "admin.kubeconfig")}
	c.env = append(os.Environ(),
		"MINIK8S_LOCAL_DIR="+dir, "MINIK8S_LOCAL_PORT="+lcPort, "MINIK8S_LOCAL_NET="+lcNet,
		"MINIK8S_LOCAL_BRIDGE=mk8sbre2e", "MINIK8S_LOCAL_NETNS_PREFIX="+lcPrefix,
		// Not 10.244/16: a cluster started by make up may be running.
		"MINIK8S_LOCAL_CLUSTER_CIDR=10.246.0.0/16",
		"KUBECONFIG="+c.kubeconfig)
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"server/server.log", "node-1/agent.log", "node-2/agent.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					t.Logf("--- last of %s:\n%s", f, tail(string(b), 40))
				}
			}
		}
		out, err := c.script("down")
		if err != nil {
			t.Errorf("local-cluster down: %v\n%s", err, out)
		}
		c.checkNothingLeft()
		_ = os.RemoveAll(dir)
	})
	start := time.Now()
	if out, err := c.script("up", strconv.Itoa(lcNodes)); err != nil {
		t.Fatalf("local-cluster up: %v\n%s", err, out)
	}
	t.Logf("3-node cluster up in %v", time.Since(start).Round(100*time.Millisecond))
	kc, err := kubeconfig.Load(c.kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rest.ConfigFromKubeconfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 30 * time.Second
	if c.cs, err = typed.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return c
}

// script runs hack/local-cluster with the cluster's settings.
func (c *localCluster) script(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.root, "hack", "local-cluster"), args...)
	cmd.Dir, cmd.Env = c.root, c.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// checkNothingLeft looks for what a torn-down cluster must not leave.
func (c *localCluster) checkNothingLeft() {
	t := c.t
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), lcPrefix+"node-") {
		t.Errorf("network namespaces left: %s", out)
	}
	if out, _ := exec.Command("ip", "link", "show", "mk8sbre2e").CombinedOutput(); !strings.Contains(string(out), "does not exist") {
		t.Errorf("bridge left: %s", out)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), c.dir) {
		t.Errorf("mounts left under %s", c.dir)
	}
	if out, _ := exec.Command("pgrep", "-af", c.dir).Output(); len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("processes left: %s", out)
	}
	if out, _ := exec.Command("ip", "route", "show", "proto", "77").Output(); len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("pod routes left: %s", out)
	}
}

// ctl runs bin/ctl against the cluster and returns its combined output.
func (c *localCluster) ctl(args ...string) (string, error) {
	return c.run(filepath.Join(c.root, "bin", "ctl"), args...)
}

func (c *localCluster) mustCtl(args ...string) string {
	c.t.Helper()
	out, err := c.ctl(args...)
	if err != nil {
		c.t.Fatalf("ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *localCluster) run(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = c.root, c.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// eventually polls cond every 250 ms until it returns "" (done) or the
// timeout passes; the last non-empty answer says what was missing.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() string) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		if last = cond(); last == "" {
			return time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not done after %v: %s", what, timeout, last)
	return 0
}

func (c *localCluster) pods(ns, selector string) []corev1.Pod {
	c.t.Helper()
	l, err := c.cs.Pods.Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		c.t.Logf("list pods: %v", err)
		return nil
	}
	return l.Items
}

// podIsReady: running, Ready and not being deleted.
func podIsReady(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && ready(p)
}

// readyPods returns the live, ready pods matching selector.
func (c *localCluster) readyPods(ns, selector string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range c.pods(ns, selector) {
		if podIsReady(&p) {
			out = append(out, p)
		}
	}
	return out
}

// waitReplicas waits until deployment name has n updated, ready replicas
// and no other pods, and returns how long it took.
func (c *localCluster) waitReplicas(ns, name string, n int, timeout time.Duration) time.Duration {
	c.t.Helper()
	return eventually(c.t, timeout, fmt.Sprintf("%s/%s at %d ready replicas", ns, name, n), func() string {
		d, err := c.cs.Deployments.Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		st := d.Status
		if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != int32(n) || st.ReadyReplicas != int32(n) ||
			st.AvailableReplicas != int32(n) || st.Replicas != int32(n) {
			return fmt.Sprintf("status %+v", st)
		}
		return ""
	})
}

// endpointsCount is the number of ready addresses of Service ns/name.
func (c *localCluster) endpointsCount(ns, name string) int {
	ep, err := c.cs.Endpoints.Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return -1
	}
	n := 0
	for _, s := range ep.Subsets {
		n += len(s.Addresses)
	}
	return n
}

func (c *localCluster) service(ns, name string) *corev1.Service {
	c.t.Helper()
	s, err := c.cs.Services.Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

func (c *localCluster) deployment(ns, name string) *appsv1.Deployment {
	c.t.Helper()
	d, err := c.cs.Deployments.Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	return d
}

// httpClient opens a new connection per request, so every request goes
// through the proxy's rules as they are at that moment.
var httpClient = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func httpGet(url string) (string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

// backends asks url/hostname n times and counts the answers.
func backends(t *testing.T, base string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		host, err := httpGet(base + "/hostname")
		if err != nil {
			t.Fatalf("GET %s/hostname: %v", base, err)
		}
		seen[host]++
	}
	return seen
}

// allBackends waits until requests to base reach want distinct backends
// (each proxy applies an Endpoints change up to its --min-sync-period
// later) and returns the answers of one round of n requests that did.
func allBackends(t *testing.T, base string, want, n int) map[string]int {
	t.Helper()
	var seen map[string]int
	eventually(t, 30*time.Second, fmt.Sprintf("%s reaching %d backends", base, want), func() string {
		if seen = backends(t, base, n); len(seen) != want {
			return fmt.Sprintf("%d requests reached %v", n, seen)
		}
		return ""
	})
	return seen
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

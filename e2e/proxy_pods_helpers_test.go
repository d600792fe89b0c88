//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik8s/minik8s/client/kubeconfig"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/kubelet/runtime"
	"github.com/minik8s/minik8s/proxy"
	"github.com/minik8s/minik8s/proxy/proxytest"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A whole single-node cluster inside one network namespace, started from
// the real binaries: `minik8s server` (etcd, API server, controllers,
// scheduler), `kubelet` with its own containerd (CNI bridge for the pod
// CIDR, so pods hang off the node namespace) and `minik8s proxy`. Every
// process joins the namespace with `nsenter --net` only, so the mounts
// containerd makes stay visible to the test for cleanup, while their
// ports, routes and iptables are the node's alone: nothing touches the
// machine's own rules, and deleting the namespace removes whatever is
// left. A veth links the namespace to the test:
//
//	test (host ns) 192.168.213.1 ──veth── node ns 192.168.213.2
//	                                      ├── API server :6443, kubelet :10250, proxy /metrics 127.0.0.1:10249
//	                                      └── CNI bridge 10.244.213.1/24 ── pods
const (
	ppHostIP  = "192.168.213.1"
	ppNodeIP  = "192.168.213.2"
	ppPodCIDR = "10.244.213.0/24"
	ppNode    = "pp-node"
	ppCgroup  = "/minik8s-ppx"
)

// ppCluster is the running single-node cluster.
type ppCluster struct {
	t       *testing.T
	netns   string
	dataDir string // the server's --data-dir
	root    string // the kubelet's --root-dir
	bin     string // directory of the built binaries
	kc      *kubeconfig.Config
	cs      *typed.Clientset
	api     *http.Client // kc's client, for raw calls (exec)

	mu    sync.Mutex
	procs map[string]*ppProc
}

// ppProc is one started binary.
type ppProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// ppBuild builds the binaries once into a temp dir (not bin/, which other
// people's builds may be rewriting at the same moment).
func ppBuild(t *testing.T) string {
	t.Helper()
	dir := shortDir(t, "ppbin")
	out, err := exec.Command("go", "build", "-o", dir+"/",
		"github.com/minik8s/minik8s/cmd/minik8s", "github.com/minik8s/minik8s/cmd/kubelet").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/minik8s ./cmd/kubelet: %v\n%s", err, out)
	}
	return dir
}

// startPPCluster starts the cluster and registers its teardown.
func startPPCluster(t *testing.T) *ppCluster {
	t.Helper()
	needKubeletDeps(t)
	proxytest.Need(t, "iptables", "iptables-save", "nsenter")
	imgs := testImages(t)
	c := &ppCluster{t: t, procs: map[string]*ppProc{}}
	c.bin = ppBuild(t)
	// Registered first, so deleted last: everything below lives in it.
	c.netns = proxytest.Netns(t)
	host := fmt.Sprintf("mk8spp%d", os.Getpid()%100000)
	if out, err := exec.Command("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", c.netns).CombinedOutput(); err != nil {
		t.Fatalf("veth: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() }) // gone with the namespace anyway
	for _, args := range [][]string{
		{"ip", "addr", "add", ppHostIP + "/24", "dev", host},
		{"ip", "link", "set", host, "up"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	proxytest.Exec(t, c.netns, "ip", "addr", "add", ppNodeIP+"/24", "dev", "eth0")
	proxytest.Exec(t, c.netns, "ip", "link", "set", "eth0", "up")
	proxytest.Exec(t, c.netns, "ip", "route", "add", "default", "via", ppHostIP)

	c.dataDir = shortDir(t, "ppsrv")
	c.root = shortDir(t, "ppk") + "/r"
	t.Cleanup(func() {
		// After the kubelet and its containerd stopped: what they
		// mounted and the pods' cgroups.
		_ = runtime.UnmountUnder(c.root)
		removeCgroups(ppCgroup, ppNode)
	})

	// The control plane. A server that can also run this machine as a
	// node is told not to: the kubelet and proxy under test run apart.
	args := []string{"server", "--data-dir", c.dataDir, "--advertise-address", ppNodeIP, "--tls-san", ppNodeIP}
	if help, _ := exec.Command(filepath.Join(c.bin, "minik8s"), "server", "--help").CombinedOutput(); strings.Contains(string(help), "--disable-agent") {
		args = append(args, "--disable-agent")
	}
	c.start("server", filepath.Join(c.bin, "minik8s"), args...)
	admin := filepath.Join(c.dataDir, "admin.kubeconfig")
	c.eventually("the admin kubeconfig", 2*time.Minute, func() string {
		if _, err := os.Stat(admin); err != nil {
			return err.Error()
		}
		return ""
	})
	kc, err := kubeconfig.Load(admin, "")
	if err != nil {
		t.Fatal(err)
	}
	// The file names the server as the node sees it; the test reaches it
	// over the veth.
	u, err := url.Parse(kc.Server)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = net.JoinHostPort(ppNodeIP, u.Port())
	kc.Server = u.String()
	c.kc = kc
	rc, err := rest.ConfigFromKubeconfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	if c.cs, err = typed.NewForConfig(rc); err != nil {
		t.Fatal(err)
	}
	if c.api, err = kc.HTTPClient(); err != nil {
		t.Fatal(err)
	}
	c.eventually("the API server", 2*time.Minute, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.cs.Namespaces.Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return err.Error()
		}
		return ""
	})

	// The node: kubelet with its own containerd and the local images.
	c.start("kubelet", filepath.Join(c.bin, "kubelet"), "--kubeconfig", admin, "--node-name", ppNode,
		"--root-dir", c.root, "--pod-cidr", ppPodCIDR, "--node-ip", ppNodeIP, "--cgroup-root", ppCgroup,
		"--import-images", filepath.Dir(imgs[0]), "--client-ca-file", filepath.Join(c.dataDir, "pki", "ca.crt"))
	// Registered after the kubelet's stop, so it runs before it: remove
	// the pods while the kubelet and containerd can still do it.
	t.Cleanup(c.drainPods)
	c.eventually("node Ready", 3*time.Minute, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := c.cs.Nodes.Get(ctx, ppNode, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == "Ready" && cond.Status == "True" {
				return ""
			}
		}
		return fmt.Sprintf("conditions %+v", n.Status.Conditions)
	})
	return c
}

// startProxy runs `minik8s proxy` in the node namespace and waits until it
// has synced once (/healthz reports a sync).
func (c *ppCluster) startProxy() *ppProc {
	c.t.Helper()
	p := c.start("proxy", filepath.Join(c.bin, "minik8s"), "proxy",
		"--kubeconfig", filepath.Join(c.dataDir, "admin.kubeconfig"), "--hostname-override", ppNode,
		"--cluster-cidr", "10.244.0.0/16", "--metrics-bind-address", "127.0.0.1:10249")
	hc := c.nodeHTTP()
	c.eventually("the proxy's first sync", time.Minute, func() string {
		resp, err := hc.Get("http://127.0.0.1:10249/healthz")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK && !strings.Contains(string(b), `"syncs":0`) {
			return ""
		}
		return fmt.Sprintf("%d %s", resp.StatusCode, b)
	})
	return p
}

// start runs a binary inside the node namespace (network only) until
// stopped or the test ends; its output goes to a log file printed when
// the test fails.
func (c *ppCluster) start(name, bin string, args ...string) *ppProc {
	c.t.Helper()
	t := c.t
	logPath := filepath.Join(c.dataDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", append([]string{"--net=" + filepath.Join(proxy.NetnsDir, c.netns), "--", bin}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &ppProc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
	t.Cleanup(func() {
		c.stop(p)
		if t.Failed() || os.Getenv("MINIK8S_TEST_LOG") != "" {
			data, _ := os.ReadFile(logPath)
			if len(data) > 20000 {
				data = data[len(data)-20000:]
			}
			t.Logf("%s log (tail):\n%s", name, data)
		}
	})
	return p
}

// stop ends a process with SIGTERM (graceful stop is part of every
// binary's contract), killing it after 45 s.
func (c *ppCluster) stop(p *ppProc) {
	select {
	case <-p.done:
		return
	default:
	}
	// nsenter execs the binary, so the pid is the binary's.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(45 * time.Second):
		c.t.Errorf("%s did not exit within 45s of SIGTERM", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited fails the test if a process the cluster needs has died.
func (c *ppCluster) exited() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		select {
		case <-p.done:
			return p.name + " exited (see its log)"
		default:
		}
	}
	return ""
}

// eventually polls cond until it returns "" or the timeout passes; a dead
// component ends the wait at once.
func (c *ppCluster) eventually(what string, timeout time.Duration, cond func() string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if dead := c.exited(); dead != "" {
			c.t.Fatalf("waiting for %s: %s (last: %s)", what, dead, msg)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// drainPods deletes every pod and waits (a minute at most) for the kubelet
// to remove their sandboxes; sandboxes still there are then removed
// through CRI directly, so no container outlives the test.
func (c *ppCluster) drainPods() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	zero := int64(0)
	_ = c.cs.Deployments.Namespace("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	_ = c.cs.ReplicaSets.Namespace("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	_ = c.cs.Pods.Namespace("default").DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	cri, err := runtime.DialCRI(ctx, filepath.Join(c.root, "containerd", "containerd.sock"))
	if err != nil {
		c.t.Logf("drain: dial containerd: %v", err)
		return
	}
	defer cri.Close()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		sbs, err := cri.ListPodSandbox(ctx, nil)
		if err == nil && len(sbs) == 0 {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	sbs, _ := cri.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{})
	for _, sb := range sbs {
		_ = cri.StopPodSandbox(ctx, sb.Id)
		if err := cri.RemovePodSandbox(ctx, sb.Id); err != nil {
			c.t.Errorf("drain: remove sandbox %s (%s): %v", sb.Id, sb.Metadata.GetName(), err)
		}
	}
}

// nodeHTTP is an HTTP client whose connections start inside the node
// namespace: what a program on the node itself sees. Every request is a
// new connection, so each one goes through the service rules afresh.
func (c *ppCluster) nodeHTTP() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var conn net.Conn
			err := proxy.InNetns(c.netns, func() (err error) {
				conn, err = d.DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
	}}
}

// nodeDial opens a TCP connection from inside the node namespace.
func (c *ppCluster) nodeDial(addr string, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	err := proxy.InNetns(c.netns, func() (err error) {
		conn, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	return conn, err
}

// exec runs a command in a pod through the API server and the kubelet
// (POST pods/{name}/exec, non-interactive) and returns its output and
// exit code.
func (c *ppCluster) exec(pod, container string, command ...string) (string, string, error) {
	q := url.Values{"container": {container}, "stdout": {"true"}, "stderr": {"true"}, "command": command}
	u := c.kc.Server + "/api/v1/namespaces/default/pods/" + pod + "/exec?" + q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return "", "", err
	}
	resp, err := c.api.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(body), "", fmt.Errorf("exec in %s: HTTP %d: %s", pod, resp.StatusCode, body)
	}
	return string(body), resp.Header.Get("X-Minik8s-Exit-Code"), err
}

// serviceTargets reads the node's nat table and returns the pod IPs the
// KUBE-SVC chain of servicePort ("namespace/name:port") sends traffic to,
// sorted; nil if there is no such chain.
func (c *ppCluster) serviceTargets(servicePort string) ([]string, error) {
	out, err := proxytest.ExecErr(c.netns, "iptables-save", "-t", "nat")
	if err != nil {
		return nil, fmt.Errorf("iptables-save: %v: %s", err, out)
	}
	svc := proxy.ServiceChainName(servicePort, "tcp")
	seps := map[string]bool{}
	dnat := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		for i := 2; i+1 < len(f); i++ {
			if f[1] == svc && f[i] == "-j" && strings.HasPrefix(f[i+1], "KUBE-SEP-") {
				seps[f[i+1]] = true
			}
			if f[i] == "--to-destination" {
				host, _, _ := strings.Cut(f[i+1], ":")
				dnat[f[1]] = host
			}
		}
	}
	var ips []string
	for sep := range seps {
		ips = append(ips, dnat[sep])
	}
	sort.Strings(ips)
	return ips, nil
}

// ppDistribution formats hit counts as "name=n" sorted by name.
func ppDistribution(counts map[string]int) string {
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	return strings.Join(parts, " ")
}

//go:build e2e

package e2e

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/proxy"
	"github.com/minik8s/minik8s/proxy/proxytest"
)

// pxWait bounds every wait in the proxy e2e tests; nothing asserts speed.
const pxWait = 90 * time.Second

// pxNode is one simulated node: a network namespace whose iptables the
// proxy programs, a bridge cbr0 with "pods" (namespaces behind veths,
// each running real servers), and an uplink to an off-cluster client
// namespace that also acts as the node's default gateway.
//
//	client ns (192.168.77.2) ──veth── node ns (ext0 192.168.77.1, cbr0 10.244.1.1/24)
//	                                         ├── pod ns 10.244.1.2
//	                                         └── pod ns 10.244.1.3
type pxNode struct {
	t      *testing.T
	node   string            // node namespace
	client string            // off-cluster client namespace
	pods   map[string]string // pod IP -> namespace
}

const (
	pxNodeIP   = "192.168.77.1"
	pxClientIP = "192.168.77.2"
	pxPodCIDR  = "10.244.1.0/24"
)

func pxIP(t *testing.T, netns string, args ...string) {
	t.Helper()
	proxytest.Exec(t, netns, append([]string{"ip"}, args...)...)
}

func newPxNode(t *testing.T) *pxNode {
	t.Helper()
	proxytest.Need(t, "iptables", "iptables-restore", "iptables-save", "conntrack", "curl")
	n := &pxNode{t: t, node: proxytest.Netns(t), client: proxytest.Netns(t), pods: map[string]string{}}
	// Uplink: node <-> client.
	pxIP(t, n.node, "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", n.client)
	pxIP(t, n.node, "addr", "add", pxNodeIP+"/24", "dev", "ext0")
	pxIP(t, n.node, "link", "set", "ext0", "up")
	pxIP(t, n.client, "addr", "add", pxClientIP+"/24", "dev", "eth0")
	pxIP(t, n.client, "link", "set", "eth0", "up")
	pxIP(t, n.client, "route", "add", "default", "via", pxNodeIP)
	pxIP(t, n.node, "route", "add", "default", "via", pxClientIP)
	// Pod bridge.
	pxIP(t, n.node, "link", "add", "cbr0", "type", "bridge")
	pxIP(t, n.node, "addr", "add", "10.244.1.1/24", "dev", "cbr0")
	pxIP(t, n.node, "link", "set", "cbr0", "up")
	return n
}

// addPod creates a pod namespace with ip on the node's bridge.
func (n *pxNode) addPod(ip string) string {
	t := n.t
	t.Helper()
	pod := proxytest.Netns(t)
	host := fmt.Sprintf("vp%d", len(n.pods)+1)
	pxIP(t, n.node, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", pod)
	pxIP(t, n.node, "link", "set", host, "master", "cbr0", "up")
	pxIP(t, pod, "addr", "add", ip+"/24", "dev", "eth0")
	pxIP(t, pod, "link", "set", "eth0", "up")
	pxIP(t, pod, "route", "add", "default", "via", "10.244.1.1")
	n.pods[ip] = pod
	return pod
}

// pxServeHTTP serves body on addr from inside netns until the test ends:
// the listening socket is created in the namespace, so the server is
// reachable only through it.
func pxServeHTTP(t *testing.T, netns, addr, body string) {
	t.Helper()
	var ln net.Listener
	if err := proxy.InNetns(netns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, body)
	}), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// pxServeUDP answers every datagram on addr inside netns with body.
func pxServeUDP(t *testing.T, netns, addr, body string) {
	t.Helper()
	var pc net.PacketConn
	if err := proxy.InNetns(netns, func() (err error) {
		pc, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed at cleanup
			}
			_, _ = pc.WriteTo([]byte(body), from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
}

// pxUDPAsk sends one datagram to dst from localPort inside netns and
// returns the reply. A fixed source port makes every ask the same flow
// for conntrack.
func pxUDPAsk(netns string, localPort int, dst string) (string, error) {
	var reply string
	err := proxy.InNetns(netns, func() error {
		raddr, err := net.ResolveUDPAddr("udp4", dst)
		if err != nil {
			return err
		}
		c, err := net.DialUDP("udp4", &net.UDPAddr{Port: localPort}, raddr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("who?")); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		reply = string(buf[:n])
		return nil
	})
	return reply, err
}

// curlResult is one curl run inside a namespace.
type curlResult struct {
	body   string
	stderr string
	exit   int // curl's exit code: 7 = could not connect, 28 = timeout
}

func pxCurl(netns, url string) curlResult {
	cmd := exec.Command("ip", "netns", "exec", netns, "curl", "-sS", "--max-time", "10", url)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := curlResult{body: out.String(), stderr: strings.TrimSpace(errb.String())}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.exit = ee.ExitCode()
	} else if err != nil {
		r.exit = -1
		r.stderr = err.Error()
	}
	return r
}

// pxDistribution curls url n times from netns (a new connection each
// time) and counts the bodies; any failure fails the test.
func pxDistribution(t *testing.T, netns, url string, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		r := pxCurl(netns, url)
		if r.exit != 0 {
			t.Fatalf("request %d/%d to %s from %s failed (curl exit %d): %s", i+1, n, url, netns, r.exit, r.stderr)
		}
		counts[r.body]++
	}
	return counts
}

func pxEventually(t *testing.T, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(pxWait)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	pxBinOnce sync.Once
	pxBinPath string
	pxBinErr  error
)

// pxBinary builds cmd/proxy once per test binary.
func pxBinary(t *testing.T) string {
	t.Helper()
	pxBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "minik8s-e2e-proxy-")
		if err != nil {
			pxBinErr = err
			return
		}
		pxBinPath = filepath.Join(dir, "proxy")
		out, err := exec.Command("go", "build", "-o", pxBinPath, "github.com/minik8s/minik8s/cmd/proxy").CombinedOutput()
		if err != nil {
			pxBinErr = fmt.Errorf("go build ./cmd/proxy: %v: %s", err, out)
		}
	})
	if pxBinErr != nil {
		t.Fatal(pxBinErr)
	}
	return pxBinPath
}

// pxCluster is an API server plus the proxy binary for one pxNode.
type pxCluster struct {
	api         *apiservertest.Server
	cs          *typed.Clientset
	kubeconfig  string // the proxy's own (system:kube-proxy) kubeconfig
	metricsAddr string
}

func newPxCluster(t *testing.T) *pxCluster {
	t.Helper()
	c := &pxCluster{api: apiservertest.Start(t)}
	c.cs = c.api.Clientset(t)
	ca, err := os.ReadFile(filepath.Join(c.api.DataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	c.kubeconfig = filepath.Join(t.TempDir(), "kube-proxy.kubeconfig")
	data := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: %s\n    certificate-authority-data: %s\nusers:\n- name: u\n  user:\n    token: %s\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
		c.api.URL, base64.StdEncoding.EncodeToString(ca), c.api.Token("system:kube-proxy"))
	if err := os.WriteFile(c.kubeconfig, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// startProxy runs the proxy binary for node n until the test ends; the
// binary stays in the host namespace (to reach the API server) and
// programs iptables in the node's namespace (--netns).
func (c *pxCluster) startProxy(t *testing.T, n *pxNode) (stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.metricsAddr = ln.Addr().String()
	ln.Close()
	cmd := exec.Command(pxBinary(t),
		"--kubeconfig="+c.kubeconfig,
		"--hostname-override=node-1",
		"--cluster-cidr=10.244.0.0/16",
		"--min-sync-period=200ms",
		"--sync-period=10s",
		"--metrics-bind-address="+c.metricsAddr,
		"--netns="+n.node,
		"--log-level=info")
	logs := &pxLogBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			// Graceful stop: SIGTERM must end the proxy cleanly.
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("proxy exited with %v after SIGTERM", err)
				}
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("proxy did not exit within 30s of SIGTERM")
			}
			if t.Failed() || os.Getenv("MINIK8S_TEST_LOG") != "" {
				t.Logf("proxy log:\n%s", logs.String())
			}
		})
	}
	t.Cleanup(stop)
	pxEventually(t, "the proxy's /healthz", func() string {
		resp, err := http.Get("http://" + c.metricsAddr + "/healthz")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), `"syncs":0`) && resp.StatusCode == http.StatusOK {
			return ""
		}
		return fmt.Sprintf("%d %s", resp.StatusCode, b)
	})
	return stop
}

// pxLogBuffer collects a child's output safely.
type pxLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *pxLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *pxLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runProxyCleanup runs `proxy --cleanup` against the node namespace.
func runProxyCleanup(t *testing.T, netns string) (string, error) {
	t.Helper()
	out, err := exec.Command(pxBinary(t), "--cleanup", "--netns="+netns).CombinedOutput()
	return string(out), err
}

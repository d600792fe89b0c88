package ctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/internal/syncbuf"
)

// fakeKubelet serves the kubelet API the API server proxies to (paths and
// semantics of kubelet/server.go): container logs, and exec, attach and
// port-forward streams (stream_fake_test.go), where a pod's port P is
// served by the address podPorts[P]. It only trusts the cluster CA's client certificates, as a kubelet
// does for the API server.
func fakeKubelet(t *testing.T, s *apiservertest.Server, podPorts map[string]string) (string, int) {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(s.DataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	log := []string{"starting web", "listening on :8080", "GET / 200", "GET /healthz 200", "GET /missing 404"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		c := r.PathValue("container")
		if c == "sleeper" {
			http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start", c, r.PathValue("pod")), http.StatusBadRequest)
			return
		}
		lines := log
		if q.Get("previous") == "true" {
			lines = []string{"panic: the previous instance crashed"}
		}
		if n, err := strconv.Atoi(q.Get("tail")); err == nil && n < len(lines) {
			lines = lines[len(lines)-n:]
		}
		for _, l := range lines {
			if q.Get("timestamps") == "true" {
				l = "2024-05-01T12:00:00Z " + l
			}
			fmt.Fprintf(w, "%s/%s: %s\n", r.PathValue("pod"), c, l)
		}
		if q.Get("follow") == "true" {
			w.(http.Flusher).Flush()
			fmt.Fprintf(w, "%s/%s: %s\n", r.PathValue("pod"), c, "FOLLOWED")
			w.(http.Flusher).Flush()
			<-r.Context().Done() // a followed log never ends by itself
		}
	})
	mux.HandleFunc("POST /exec/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		cmd := r.URL.Query()["command"]
		if len(cmd) == 0 || r.Header.Get("Upgrade") == "" {
			http.Error(w, "exec needs a command and an upgrade", http.StatusBadRequest)
			return
		}
		serveRemoteCommand(w, r, func(tty bool, sizes <-chan string) fakeProcess {
			return fakeCommand(r.PathValue("pod"), r.PathValue("container"), cmd, tty, sizes)
		})
	})
	mux.HandleFunc("POST /attach/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		serveRemoteCommand(w, r, func(bool, <-chan string) fakeProcess { return fakeAttach(r.PathValue("pod"), r.PathValue("container")) })
	})
	mux.HandleFunc("POST /portForward/{ns}/{pod}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("pod") == "closed" {
			http.Error(w, "pod dbg/closed has no running sandbox", http.StatusBadRequest)
			return
		}
		servePortForward(w, r, podPorts)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port
}

func TestLogsExecPortForward(t *testing.T) {
	s := apiservertest.Start(t)
	h := newHarness(t, s, "dbg")
	ctx := context.Background()
	// what the fake pods serve on their port 8080
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "minik8s web v1 %s\n", r.URL.Path)
	}))
	defer web.Close()
	host, port := fakeKubelet(t, s, map[string]string{"8080": web.Listener.Addr().String()})
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	node, err := h.cs.Nodes.Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: host}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	if _, err := h.cs.Nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mkPod := func(name string, labels map[string]string, nodeName string, containers ...string) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.PodSpec{NodeName: nodeName}}
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "minik8s.local/busybox:1.35"})
		}
		p, err := h.cs.Pods.Namespace("dbg").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if nodeName != "" {
			p.Status.Phase = corev1.PodRunning
			if _, err := h.cs.Pods.Namespace("dbg").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	mkPod("web-1", map[string]string{"app": "web"}, "node-1", "web")
	mkPod("web-2", map[string]string{"app": "web"}, "node-1", "web", "log", "sleeper")
	mkPod("pending", nil, "", "main")
	if _, err := h.cs.Deployments.Namespace("dbg").Create(ctx, testDeployment("web", 2, "x"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("logs", func(t *testing.T) {
		h := h.at(t)
		out := h.ok("logs", "web-1")
		if !strings.HasPrefix(out, "web-1/web: starting web\n") || strings.Count(out, "\n") != 5 {
			t.Errorf("logs: %q", out)
		}
		if out := h.ok("logs", "pod/web-1", "--tail=2", "--timestamps"); out != "web-1/web: 2024-05-01T12:00:00Z GET /healthz 200\nweb-1/web: 2024-05-01T12:00:00Z GET /missing 404\n" {
			t.Errorf("--tail --timestamps: %q", out)
		}
		if out := h.ok("logs", "web-1", "-p"); out != "web-1/web: panic: the previous instance crashed\n" {
			t.Errorf("-p: %q", out)
		}
		out, errOut, code := h.run("logs", "web-2")
		if code != 0 || !strings.HasPrefix(out, "web-2/web: ") || !strings.Contains(errOut, `Defaulted container "web" out of: web, log, sleeper`) {
			t.Errorf("default container: %d %q %q", code, out, errOut)
		}
		if out := h.ok("logs", "web-2", "-c", "log", "--tail=1"); out != "web-2/log: GET /missing 404\n" {
			t.Errorf("-c log: %q", out)
		}
		if out := h.ok("logs", "web-2", "log", "--tail=1"); out != "web-2/log: GET /missing 404\n" {
			t.Errorf("POD CONTAINER form: %q", out)
		}
		// one container cannot be read: the others still are, and the exit
		// code says something failed
		out, errOut, code = h.run("logs", "-l", "app=web", "--all-containers", "--prefix", "--tail=1")
		if code != 1 || !strings.Contains(errOut, `cannot read the log of pod web-2 (container sleeper): the kubelet answered 400: container "sleeper" in pod "web-2" is waiting to start`) {
			t.Errorf("-l --all-containers: exit %d, stderr %q", code, errOut)
		}
		for _, w := range []string{"[pod/web-1/web] web-1/web: GET /missing 404\n", "[pod/web-2/log] web-2/log: GET /missing 404\n"} {
			if !strings.Contains(out, w) {
				t.Errorf("-l --all-containers --prefix: missing %q in\n%s", w, out)
			}
		}
		out, errOut, _ = h.run("logs", "deploy/web", "--tail=1")
		if !strings.Contains(errOut, "Found 2 pods, using pod/web-") || !strings.Contains(out, "GET /missing 404") {
			t.Errorf("deploy/web: %q %q", out, errOut)
		}
		// the server's and the kubelet's errors, clearly
		wantContains(t, "waiting container", h.fails("logs", "web-2", "-c", "sleeper"), `container "sleeper" in pod "web-2" is waiting to start`)
		wantContains(t, "bad container", h.fails("logs", "web-2", "-c", "nope"), "container nope is not valid for pod web-2")
		wantContains(t, "unscheduled", h.fails("logs", "pending"), "pod dbg/pending is not scheduled to a node yet")
		wantContains(t, "missing pod", h.fails("logs", "ghost"), `pods "ghost" not found`)
	})

	t.Run("logs -f streams until interrupted", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var out, errOut syncbuf.Buffer
		done := make(chan int, 1)
		go func() {
			done <- Main(cctx, []string{"--kubeconfig", s.Kubeconfig, "-n", "dbg", "logs", "-f", "web-1", "--tail=1"},
				Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		}()
		waitFor(t, "followed line", func() bool { return strings.Contains(out.String(), "FOLLOWED") })
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("logs -f exit %d: %s", code, errOut.String())
		}
	})

	t.Run("exec", func(t *testing.T) { testExec(h.at(t)) })
	t.Run("exec -it on a terminal", func(t *testing.T) { testExecTerminal(h.at(t)) })
	t.Run("attach", func(t *testing.T) { testAttach(h.at(t)) })
	t.Run("port-forward", func(t *testing.T) { testPortForward(h.at(t)) })

	t.Run("unreachable kubelet", func(t *testing.T) {
		h := h.at(t)
		n2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-2"}}
		n2, err := h.cs.Nodes.Create(ctx, n2, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n2.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
		n2.Status.DaemonEndpoints.KubeletEndpoint.Port = 1
		if _, err := h.cs.Nodes.UpdateStatus(ctx, n2, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		mkPod("far", nil, "node-2", "main")
		wantContains(t, "503", h.fails("logs", "far"), "the API server could not reach the pod's kubelet", "node-2")
	})
}

package kubelet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

// streamingFake is the fake runtime plus what a CRI runtime's streaming
// side does: Exec/Attach/PortForward return a URL of a "streaming server"
// (here: one that switches protocols, names the session it was given and
// echoes lines) and the requests are recorded.
type streamingFake struct {
	*runtime.Fake
	url string

	mu       sync.Mutex
	attaches []*runtimeapi.AttachRequest
	forwards []*runtimeapi.PortForwardRequest
	execs    []*runtimeapi.ExecRequest
}

func (f *streamingFake) Exec(_ context.Context, req *runtimeapi.ExecRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs = append(f.execs, req)
	return f.url + "/exec/tok-exec", nil
}

func (f *streamingFake) Attach(_ context.Context, req *runtimeapi.AttachRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attaches = append(f.attaches, req)
	return f.url + "/attach/tok-attach", nil
}

func (f *streamingFake) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forwards = append(f.forwards, req)
	return f.url + "/portforward/tok-pf", nil
}

// fakeStreamingServer switches to whatever protocol was asked for, says
// which path it serves and whether credentials reached it, then echoes.
func fakeStreamingServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := r.Header.Get("Upgrade")
		if up == "" {
			http.Error(w, "no upgrade", http.StatusBadRequest)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", up)
		fmt.Fprintf(buf, "runtime serves %s auth=%q\n", r.URL.Path, r.Header.Get("Authorization"))
		_ = buf.Flush()
		for {
			line, err := buf.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprintf(buf, "echo %s", line)
			_ = buf.Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// upgrade sends an upgrade request to the kubelet server and returns the
// response and, after a 101, the connection's reader and the connection.
func upgrade(t *testing.T, base, method, path string, hdr map[string]string) (*http.Response, *bufio.Reader, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: kubelet\r\nAuthorization: Bearer secret\r\n", method, path)
	for k, v := range hdr {
		req += k + ": " + v + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, br, conn
}

var spdyHeaders = map[string]string{"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v4.channel.k8s.io"}

func TestAttachAndPortForwardProxyToRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := testClientset(t, s)
	rt := &streamingFake{Fake: runtime.NewFake(), url: fakeStreamingServer(t).URL}
	k, err := New(Config{NodeName: "node-s", RootDir: t.TempDir(), NodeIP: "10.1.2.3", PodCIDR: "10.244.9.0/24",
		SyncInterval: 100 * time.Millisecond, LeaseRenewInterval: time.Second}, Deps{Client: cs, Runtime: rt, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	defer func() { cancel(); <-done }()

	pods := cs.Pods.Namespace("default")
	if _, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: "node-s", Containers: []corev1.Container{
			{Name: "term", Image: "minik8s.local/busybox:1.35", TTY: true, Stdin: true},
			{Name: "plain", Image: "minik8s.local/busybox:1.35"},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod running", func() (bool, error) {
		p, err := pods.Get(ctx, "p", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 2, err
	})
	p, _ := pods.Get(ctx, "p", metav1.GetOptions{})
	ids := map[string]string{}
	for _, c := range p.Status.ContainerStatuses {
		_, id, _ := strings.Cut(c.ContainerID, "://")
		ids[c.Name] = id
	}
	sbs, err := rt.ListPodSandbox(ctx, nil)
	if err != nil || len(sbs) != 1 {
		t.Fatalf("sandboxes %v %v", sbs, err)
	}
	srv := httptest.NewServer(NewServer(k, ServerOptions{Anonymous: true}).Handler())
	defer srv.Close()

	// roundTrip checks the proxied session: the runtime's URL is reached
	// without our credentials, and bytes flow both ways.
	roundTrip := func(what string, br *bufio.Reader, conn net.Conn, wantPath string) {
		t.Helper()
		line, err := br.ReadString('\n')
		if want := fmt.Sprintf("runtime serves %s auth=\"\"\n", wantPath); err != nil || line != want {
			t.Errorf("%s: runtime said %q (%v), want %q", what, line, err, want)
		}
		fmt.Fprintf(conn, "ping\n")
		if line, err := br.ReadString('\n'); err != nil || line != "echo ping\n" {
			t.Errorf("%s: echo %q %v", what, line, err)
		}
	}

	t.Run("attach", func(t *testing.T) {
		resp, br, conn := upgrade(t, srv.URL, "POST", "/attach/default/p/term?stdin=true&stdout=true&stderr=true&tty=false", spdyHeaders)
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("attach: %s", resp.Status)
		}
		roundTrip("attach", br, conn, "/attach/tok-attach")
		rt.mu.Lock()
		got := rt.attaches[len(rt.attaches)-1]
		rt.mu.Unlock()
		// tty comes from the container spec, and a terminal has no stderr
		if got.ContainerId != ids["term"] || !got.Stdin || !got.Stdout || got.Stderr || !got.Tty {
			t.Errorf("CRI attach request %+v, want container %s stdin stdout tty", got, ids["term"])
		}
		resp, br, conn = upgrade(t, srv.URL, "GET", "/attach/default/p/plain?stdout=true&stderr=true&tty=true", spdyHeaders)
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("attach plain: %s", resp.Status)
		}
		roundTrip("attach plain", br, conn, "/attach/tok-attach")
		rt.mu.Lock()
		got = rt.attaches[len(rt.attaches)-1]
		rt.mu.Unlock()
		if got.ContainerId != ids["plain"] || got.Stdin || !got.Stdout || !got.Stderr || got.Tty {
			t.Errorf("CRI attach request %+v, want container %s stdout stderr, no tty", got, ids["plain"])
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		resp, br, conn := upgrade(t, srv.URL, "POST", "/portForward/default/p?port=8080&port=9090,53",
			map[string]string{"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "portforward.k8s.io"})
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("port-forward: %s", resp.Status)
		}
		roundTrip("port-forward", br, conn, "/portforward/tok-pf")
		rt.mu.Lock()
		got := rt.forwards[len(rt.forwards)-1]
		rt.mu.Unlock()
		if got.PodSandboxId != sbs[0].Id || fmt.Sprint(got.Port) != "[8080 9090 53]" {
			t.Errorf("CRI port-forward request %+v, want sandbox %s ports [8080 9090 53]", got, sbs[0].Id)
		}
	})

	t.Run("exec goes the same way", func(t *testing.T) {
		resp, br, conn := upgrade(t, srv.URL, "POST", "/exec/default/p/plain?command=sh&stdin=true&stdout=true", spdyHeaders)
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("exec: %s", resp.Status)
		}
		roundTrip("exec", br, conn, "/exec/tok-exec")
	})

	t.Run("websocket subprotocols", func(t *testing.T) {
		ws := func(proto string) map[string]string {
			return map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
				"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": proto}
		}
		// what kubectl 1.32 tries first: refused here, so it falls back
		// to SPDY instead of reaching a runtime that cannot speak it
		for path, proto := range map[string]string{
			"/exec/default/p/plain?command=sh&stdout=true": "v5.channel.k8s.io",
			"/attach/default/p/plain?stdout=true":          "v5.channel.k8s.io",
			"/portForward/default/p":                       "SPDY/3.1+portforward.k8s.io",
		} {
			resp, _, _ := upgrade(t, srv.URL, "GET", path, ws(proto))
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "WebSocket subprotocol(s) "+proto+" not supported") {
				t.Errorf("%s with %s: %s %q", path, proto, resp.Status, body)
			}
		}
		// the older protocols pass through to the runtime
		resp, br, conn := upgrade(t, srv.URL, "GET", "/attach/default/p/plain?stdout=true", ws("v5.channel.k8s.io, v4.channel.k8s.io"))
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("attach with v4.channel.k8s.io: %s", resp.Status)
		}
		roundTrip("websocket attach", br, conn, "/attach/tok-attach")
	})

	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			hdr          map[string]string
			code         int
			want         string
		}{
			{"POST", "/attach/default/p/plain?stdout=true", nil, 400, "attach is a streaming call"},
			{"POST", "/portForward/default/p", nil, 400, "port forwarding is a streaming call"},
			{"POST", "/attach/default/ghost/plain?stdout=true", spdyHeaders, 404, "pod default/ghost not found on node node-s"},
			{"POST", "/attach/default/p/nope?stdout=true", spdyHeaders, 400, "container nope is not valid for pod p"},
			{"POST", "/attach/default/p/plain", spdyHeaders, 400, "at least one of stdin, stdout and stderr"},
			{"POST", "/portForward/default/ghost", spdyHeaders, 404, "pod default/ghost not found on node node-s"},
			{"POST", "/portForward/default/p?port=http", spdyHeaders, 400, `port "http" is not a number in 1-65535`},
			{"POST", "/portForward/default/p?port=0", spdyHeaders, 400, `port "0" is not a number in 1-65535`},
		} {
			resp, _, _ := upgrade(t, srv.URL, c.method, c.path, c.hdr)
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != c.code || !strings.Contains(string(body), c.want) {
				t.Errorf("%s %s: %s %q, want %d %q", c.method, c.path, resp.Status, body, c.code, c.want)
			}
		}
	})

	t.Run("a runtime without a streaming server", func(t *testing.T) {
		plain, err := New(Config{NodeName: "node-h", RootDir: t.TempDir(), NodeIP: "10.1.2.4"},
			Deps{Client: cs, Runtime: runtime.NewFake(), Log: testLog()})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(NewServer(plain, ServerOptions{Anonymous: true}).Handler())
		defer hs.Close()
		for _, path := range []string{"/attach/default/p/plain?stdout=true", "/portForward/default/p"} {
			resp, _, _ := upgrade(t, hs.URL, "POST", path, spdyHeaders)
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(body), "runtime has no streaming server") {
				t.Errorf("%s on the fake runtime: %s %q", path, resp.Status, body)
			}
		}
	})
}

package kubelet

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Interactive streams (exec, attach, port-forward) are not served by the
// kubelet itself: it asks the runtime (CRI Exec/Attach/PortForward) to
// prepare a session, gets back a one-time URL of the runtime's streaming
// server, and proxies the client's upgraded connection there. The runtime's
// streaming server speaks the Kubernetes protocols (remotecommand over
// SPDY/3.1, channel.k8s.io v1-v4; portforward.k8s.io over SPDY/3.1).

// streamingRuntime is what attach and port-forward need beyond
// runtime.Runtime; runtime.CRI has it, the fake runtime of hollow nodes
// does not (it has no streaming server).
type streamingRuntime interface {
	Attach(ctx context.Context, req *runtimeapi.AttachRequest) (string, error)
	PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (string, error)
}

// legacyWebSocketProtocols are the WebSocket subprotocols the streaming
// server of CRI runtimes (Kubernetes' pre-1.29 streaming library, vendored
// by containerd 1.6/1.7 and CRI-O) accepts for exec, attach and
// port-forward. Newer clients ask for v5.channel.k8s.io (remotecommand) or
// SPDY/3.1+portforward.k8s.io (port-forward tunnelled in a WebSocket,
// which in Kubernetes only the API server terminates); such a request is
// refused here with 400, so that the client's upgrade fails cleanly and it
// falls back to SPDY, as kubectl does, instead of reaching a runtime that
// cannot answer it.
var legacyWebSocketProtocols = []string{
	"", "channel.k8s.io", "base64.channel.k8s.io",
	"v4.channel.k8s.io", "v4.base64.channel.k8s.io",
}

// isUpgrade reports whether r asks to switch protocols (SPDY or WebSocket).
func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != ""
}

// checkWebSocket refuses a WebSocket upgrade none of whose subprotocols
// the runtime's streaming server speaks. It returns false after answering.
func checkWebSocket(w http.ResponseWriter, r *http.Request, what string) bool {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return true
	}
	var asked []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			asked = append(asked, strings.TrimSpace(p))
		}
	}
	if len(asked) == 0 {
		return true // a legacy client; the runtime defaults to channel.k8s.io
	}
	for _, p := range asked {
		if slices.Contains(legacyWebSocketProtocols, p) {
			return true
		}
	}
	http.Error(w, fmt.Sprintf("%s: WebSocket subprotocol(s) %s not supported by this kubelet's runtime (it speaks %s over WebSocket, or SPDY/3.1); retry with SPDY",
		what, strings.Join(asked, ", "), strings.Join(legacyWebSocketProtocols[1:], ", ")), http.StatusBadRequest)
	return false
}

// proxyStream hands the client's upgrade request to the runtime's
// streaming server at rawURL and splices the two connections once the
// runtime switches protocols.
func (s *Server) proxyStream(w http.ResponseWriter, r *http.Request, rawURL, what string) {
	target, err := url.Parse(rawURL)
	if err != nil {
		http.Error(w, fmt.Sprintf("%s: the runtime returned a bad streaming URL %q: %v", what, rawURL, err), http.StatusInternalServerError)
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = target.Host
			// The runtime's URL is a one-time capability; the client's
			// credentials are for us, not for it.
			pr.Out.Header.Del("Authorization")
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, fmt.Sprintf("%s: the stream to the runtime failed: %v", what, err), http.StatusBadGateway)
		},
	}
	proxy.ServeHTTP(w, r)
}

// queryFlag reads a boolean query parameter the way the API server's
// option conversion writes it ("true"/"1").
func queryFlag(q url.Values, k string) bool {
	v := q.Get(k)
	return v == "1" || v == "true"
}

// handleAttach serves /attach/{ns}/{pod}/{container}: the client is
// connected to the running container's stdio (stdin only when the
// container was created with stdin: true) through CRI Attach.
func (s *Server) handleAttach(w http.ResponseWriter, r *http.Request) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	what := fmt.Sprintf("attach to pod %s/%s container %q", ns, name, container)
	if !isUpgrade(r) {
		http.Error(w, what+": attach is a streaming call; send it with Upgrade: SPDY/3.1 (remotecommand, channel.k8s.io)", http.StatusBadRequest)
		return
	}
	if !checkWebSocket(w, r, what) {
		return
	}
	srt, ok := s.k.rt.(streamingRuntime)
	if !ok {
		http.Error(w, what+": this kubelet's runtime has no streaming server", http.StatusNotImplemented)
		return
	}
	c, ok := s.runningContainer(w, r, ns, name, container)
	if !ok {
		return
	}
	q := r.URL.Query()
	req := &runtimeapi.AttachRequest{ContainerId: c.Id, Stdin: queryFlag(q, "stdin"),
		Stdout: queryFlag(q, "stdout"), Stderr: queryFlag(q, "stderr")}
	// Whether the process runs on a terminal was fixed when it started:
	// the container spec decides, not the request (as in Kubernetes).
	if pod, err := s.k.pods.Get(ns, name); err == nil {
		for _, spec := range pod.Spec.Containers {
			if spec.Name == container {
				req.Tty = spec.TTY
			}
		}
	}
	if !req.Stdin && !req.Stdout && !req.Stderr {
		http.Error(w, what+": at least one of stdin, stdout and stderr must be true", http.StatusBadRequest)
		return
	}
	if req.Tty {
		req.Stderr = false // a terminal merges stderr into stdout
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	raw, err := srt.Attach(ctx, req)
	cancel()
	if err != nil {
		http.Error(w, fmt.Sprintf("%s: %v", what, err), http.StatusInternalServerError)
		return
	}
	s.proxyStream(w, r, raw, what)
}

// handlePortForward serves /portForward/{ns}/{pod}: TCP connections into
// the pod's network namespace through CRI PortForward. With SPDY the ports
// travel in each stream's "port" header; ?port= (or ?ports=, repeated or
// comma-separated) names them up front, as WebSocket clients must.
func (s *Server) handlePortForward(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("pod")
	what := fmt.Sprintf("port-forward to pod %s/%s", ns, name)
	if !isUpgrade(r) {
		http.Error(w, what+": port forwarding is a streaming call; send it with Upgrade: SPDY/3.1 (portforward.k8s.io)", http.StatusBadRequest)
		return
	}
	var ports []int32
	q := r.URL.Query()
	for _, v := range append(q["port"], q["ports"]...) {
		for _, p := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
			if err != nil || n == 0 {
				http.Error(w, fmt.Sprintf("%s: port %q is not a number in 1-65535", what, p), http.StatusBadRequest)
				return
			}
			ports = append(ports, int32(n))
		}
	}
	if !checkWebSocket(w, r, what) {
		return
	}
	srt, ok := s.k.rt.(streamingRuntime)
	if !ok {
		http.Error(w, what+": this kubelet's runtime has no streaming server", http.StatusNotImplemented)
		return
	}
	pod, err := s.k.pods.Get(ns, name)
	if err != nil {
		http.Error(w, fmt.Sprintf("pod %s/%s not found on node %s", ns, name, s.k.cfg.NodeName), http.StatusNotFound)
		return
	}
	st, err := s.k.podRuntimeState(r.Context(), pod.UID)
	if err != nil {
		http.Error(w, fmt.Sprintf("%s: %v", what, err), http.StatusInternalServerError)
		return
	}
	sb := st.current()
	if sb == nil || sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		http.Error(w, fmt.Sprintf("%s: the pod has no running sandbox (network namespace) on node %s", what, s.k.cfg.NodeName), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	raw, err := srt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: sb.Id, Port: ports})
	cancel()
	if err != nil {
		http.Error(w, fmt.Sprintf("%s: %v", what, err), http.StatusInternalServerError)
		return
	}
	s.proxyStream(w, r, raw, what)
}

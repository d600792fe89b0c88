package kubelet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
)

// ServerOptions configure the kubelet's HTTPS endpoint.
type ServerOptions struct {
	// Address to listen on, e.g. ":10250".
	Address string
	// CertFile/KeyFile serve TLS; empty = a self-signed certificate kept
	// in <root>/pki.
	CertFile, KeyFile string
	// ClientCAFile, if set, lets clients authenticate with a certificate
	// signed by this CA (the API server's proxy, say).
	ClientCAFile string
	// APIServer is used to check bearer tokens: a token is accepted when
	// the API server accepts it for a GET of this node. Nil disables
	// token authentication.
	APIServer *rest.Config
	// Anonymous disables authentication (tests on loopback only).
	Anonymous bool
}

// Server serves container logs, exec, attach and port-forward for one
// kubelet:
//
//	GET  /healthz
//	GET  /metrics                                     Prometheus metrics
//	GET  /pods                                        PodList of this node's pods
//	GET  /containerLogs/{namespace}/{pod}/{container} ?follow=&tailLines=&previous=&timestamps=&sinceSeconds=&limitBytes=
//	POST /exec/{namespace}/{pod}/{container}          ?command=...&command=...&stdin=&stdout=&stderr=&tty=
//	     With "Upgrade: SPDY/3.1" (or a WebSocket asking for v1-v4
//	     channel.k8s.io), the stream is proxied to the runtime's streaming
//	     server, which speaks Kubernetes' remotecommand protocols; kubectl's
//	     first attempt (WebSocket v5.channel.k8s.io) gets 400 and it falls
//	     back to SPDY (stream.go). Without an upgrade it runs to completion (ExecSync,
//	     &timeoutSeconds=, default 60): body = stdout then stderr, header
//	     X-Minik8s-Exit-Code = the exit code.
//	POST /attach/{namespace}/{pod}/{container}        ?stdin=&stdout=&stderr=&tty=  (upgrade only)
//	POST /portForward/{namespace}/{pod}               ?port=  (upgrade only; SPDY portforward.k8s.io)
//	     Attach and port-forward are proxied to the runtime's streaming
//	     server like exec (CRI Attach, PortForward; stream.go).
type Server struct {
	k    *Kubelet
	opts ServerOptions

	mu     sync.Mutex
	tokens map[string]time.Time // accepted tokens -> expiry
}

// NewServer returns the kubelet's HTTPS server.
func NewServer(k *Kubelet, opts ServerOptions) *Server {
	return &Server{k: k, opts: opts, tokens: map[string]time.Time{}}
}

// Handler is the server's routes, with authentication.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.Handle("GET /metrics", s.auth(promhttp.HandlerFor(Registry, promhttp.HandlerOpts{})))
	mux.Handle("GET /pods", s.auth(http.HandlerFunc(s.handlePods)))
	mux.Handle("GET /containerLogs/{namespace}/{pod}/{container}", s.auth(http.HandlerFunc(s.handleLogs)))
	mux.Handle("POST /exec/{namespace}/{pod}/{container}", s.auth(http.HandlerFunc(s.handleExec)))
	mux.Handle("GET /exec/{namespace}/{pod}/{container}", s.auth(http.HandlerFunc(s.handleExec)))
	mux.Handle("POST /attach/{namespace}/{pod}/{container}", s.auth(http.HandlerFunc(s.handleAttach)))
	mux.Handle("GET /attach/{namespace}/{pod}/{container}", s.auth(http.HandlerFunc(s.handleAttach)))
	mux.Handle("POST /portForward/{namespace}/{pod}", s.auth(http.HandlerFunc(s.handlePortForward)))
	mux.Handle("GET /portForward/{namespace}/{pod}", s.auth(http.HandlerFunc(s.handlePortForward)))
	return mux
}

// Serve listens and serves until ctx ends; ready gets the bound address.
func (s *Server) Serve(ctx context.Context, ready func(addr string)) error {
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.opts.Address)
	if err != nil {
		return fmt.Errorf("kubelet server: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
		<-errc
		return nil
	case err := <-errc:
		return fmt.Errorf("kubelet server: %w", err)
	}
}

func (s *Server) tlsConfig() (*tls.Config, error) {
	certFile, keyFile := s.opts.CertFile, s.opts.KeyFile
	if certFile == "" {
		dir := filepath.Join(s.k.cfg.RootDir, "pki")
		certFile, keyFile = filepath.Join(dir, "kubelet.crt"), filepath.Join(dir, "kubelet.key")
		if _, err := os.Stat(certFile); err != nil {
			if err := selfSigned(certFile, keyFile, s.k.cfg.NodeName, s.k.nodeIP); err != nil {
				return nil, fmt.Errorf("kubelet server certificate: %w", err)
			}
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("kubelet server certificate: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if s.opts.ClientCAFile != "" {
		pem, err := os.ReadFile(s.opts.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s holds no certificate", s.opts.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

func selfSigned(certFile, keyFile, node, ip string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node + "@kubelet"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{node, "localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	if p := net.ParseIP(ip); p != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, p)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// auth accepts a verified client certificate, or a bearer token the API
// server accepts.
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Anonymous || (r.TLS != nil && len(r.TLS.VerifiedChains) > 0) {
			next.ServeHTTP(w, r)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" || s.opts.APIServer == nil {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		if err := s.checkToken(r.Context(), tok); err != nil {
			s.k.log.Info("kubelet server: rejected token", "err", err)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) checkToken(ctx context.Context, tok string) error {
	s.mu.Lock()
	exp, ok := s.tokens[tok]
	s.mu.Unlock()
	if ok && time.Now().Before(exp) {
		return nil
	}
	cfg := *s.opts.APIServer
	cfg.BearerToken = tok
	cfg.CertData, cfg.KeyData = nil, nil
	cfg.Timeout = 10 * time.Second
	cfg.MaxRetries = -1
	cs, err := typed.NewForConfig(&cfg)
	if err != nil {
		return err
	}
	if _, err := cs.Nodes.Get(ctx, s.k.cfg.NodeName, metav1.GetOptions{}); err != nil {
		return err
	}
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(time.Minute)
	s.mu.Unlock()
	return nil
}

func (s *Server) handlePods(w http.ResponseWriter, _ *http.Request) {
	pods, err := s.k.pods.List(nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	list := &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	for _, p := range pods {
		list.Items = append(list.Items, *p)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// runningContainer finds a running container of a pod for exec, attach
// and the like, or answers the request with why there is none.
func (s *Server) runningContainer(w http.ResponseWriter, r *http.Request, ns, name, container string) (*runtimeapi.ContainerStatus, bool) {
	c, code, err := s.findContainer(r.Context(), ns, name, container, false)
	if err != nil {
		http.Error(w, err.Error(), code)
		return nil, false
	}
	if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		http.Error(w, fmt.Sprintf("container %q in pod %q is not running", container, name), http.StatusBadRequest)
		return nil, false
	}
	return c, true
}

// findContainer returns the runtime status of a pod's container: the
// newest instance, or the one before it when previous.
func (s *Server) findContainer(ctx context.Context, ns, name, container string, previous bool) (*runtimeapi.ContainerStatus, int, error) {
	pod, err := s.k.pods.Get(ns, name)
	if err != nil {
		return nil, http.StatusNotFound, fmt.Errorf("pod %s/%s not found on node %s", ns, name, s.k.cfg.NodeName)
	}
	known := false
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		known = known || c.Name == container
	}
	if !known {
		return nil, http.StatusBadRequest, fmt.Errorf("container %s is not valid for pod %s", container, name)
	}
	st, err := s.k.podRuntimeState(ctx, pod.UID)
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	cur := st.latest(container, "")
	if cur == nil {
		return nil, http.StatusBadRequest, fmt.Errorf("container %q in pod %q is waiting to start", container, name)
	}
	if previous {
		prev := st.previous(cur)
		if prev == nil {
			return nil, http.StatusBadRequest, fmt.Errorf("previous terminated container %q in pod %q not found", container, name)
		}
		return prev, 0, nil
	}
	return cur, 0, nil
}

func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts := LogOptions{TailLines: -1, Follow: q.Get("follow") == "true", Timestamps: q.Get("timestamps") == "true"}
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "tailLines must be a non-negative integer", http.StatusBadRequest)
			return
		}
		opts.TailLines = n
	}
	if v := q.Get("limitBytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, "limitBytes must be a positive integer", http.StatusBadRequest)
			return
		}
		opts.LimitBytes = n
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, "sinceSeconds must be a positive integer", http.StatusBadRequest)
			return
		}
		opts.SinceTime = time.Now().Add(-time.Duration(n) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, "sinceTime must be RFC3339", http.StatusBadRequest)
			return
		}
		opts.SinceTime = t
	}
	c, code, err := s.findContainer(r.Context(), ns, name, container, q.Get("previous") == "true")
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	if c.LogPath == "" {
		http.Error(w, "container has no log file", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	running := func() bool {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		st, err := s.k.rt.ContainerStatus(ctx, c.Id)
		return err == nil && st.State == runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	fw := &flushWriter{w: w}
	if f, ok := w.(http.Flusher); ok {
		fw.f = f
	}
	if err := ReadLogs(r.Context(), c.LogPath, opts, fw, running); err != nil && !errors.Is(err, context.Canceled) {
		s.k.log.Warn("reading logs failed", "pod", ns+"/"+name, "container", container, "err", err)
	}
}

// streamExec serves an interactive exec (kubectl exec's SPDY or WebSocket
// remotecommand protocol): it asks the runtime to prepare the exec and
// proxies the upgraded connection to the runtime's streaming server, which
// speaks the protocol.
func (s *Server) streamExec(w http.ResponseWriter, r *http.Request, ns, name, container string, cmd []string) {
	q := r.URL.Query()
	what := fmt.Sprintf("exec in pod %s/%s container %q", ns, name, container)
	if !checkWebSocket(w, r, what) {
		return
	}
	c, ok := s.runningContainer(w, r, ns, name, container)
	if !ok {
		return
	}
	req := &runtimeapi.ExecRequest{ContainerId: c.Id, Cmd: cmd, Tty: queryFlag(q, "tty"), Stdin: queryFlag(q, "stdin"),
		Stdout: queryFlag(q, "stdout"), Stderr: queryFlag(q, "stderr")}
	if !req.Stdout && !req.Stderr && !req.Stdin {
		req.Stdout, req.Stderr = true, true
	}
	if req.Tty {
		req.Stderr = false // a terminal merges stderr into stdout
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	raw, err := s.k.rt.Exec(ctx, req)
	cancel()
	if err != nil {
		http.Error(w, fmt.Sprintf("%s: %v", what, err), http.StatusInternalServerError)
		return
	}
	s.proxyStream(w, r, raw, what)
}

type flushWriter struct {
	w io.Writer
	f http.Flusher
}

func (fw *flushWriter) Write(p []byte) (int, error) { return fw.w.Write(p) }
func (fw *flushWriter) Flush() {
	if fw.f != nil {
		fw.f.Flush()
	}
}

func (s *Server) handleExec(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	cmd := q["command"]
	if len(cmd) == 0 {
		http.Error(w, "at least one command parameter is required", http.StatusBadRequest)
		return
	}
	if r.Header.Get("Upgrade") != "" {
		s.streamExec(w, r, ns, name, container, cmd)
		return
	}
	timeout := time.Minute
	if v := q.Get("timeoutSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 3600 {
			http.Error(w, "timeoutSeconds must be 1..3600", http.StatusBadRequest)
			return
		}
		timeout = time.Duration(n) * time.Second
	}
	c, ok := s.runningContainer(w, r, ns, name, container)
	if !ok {
		return
	}
	res, err := s.k.rt.ExecSync(r.Context(), c.Id, cmd, timeout)
	if err != nil {
		http.Error(w, fmt.Sprintf("exec in pod %s/%s container %q: %v", ns, name, container, err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Minik8s-Exit-Code", strconv.Itoa(int(res.ExitCode)))
	_, _ = w.Write(res.Stdout)
	_, _ = w.Write(res.Stderr)
}

// Package apiservertest starts a real API server on a real embedded etcd
// for integration tests: random ports, a temporary data dir, and cleanup
// when the test ends.
package apiservertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minik8s/minik8s/apiserver"
	"github.com/minik8s/minik8s/client/kubeconfig"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
)

// Server is a running test API server.
type Server struct {
	*apiserver.Server
	// URL is the HTTPS base URL (https://127.0.0.1:PORT).
	URL string
	// DataDir holds the PKI, tokens and admin.kubeconfig.
	DataDir string
	// AdminToken authenticates as the cluster admin.
	AdminToken string
	// Kubeconfig is the path of the admin kubeconfig for this server.
	Kubeconfig string

	stop context.CancelFunc
	done chan struct{}
}

// Option adjusts the server options before start.
type Option func(*apiserver.Options)

// Start runs an API server until the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return StartIn(t, t.TempDir(), opts...)
}

// StartIn runs an API server on dataDir (reuse a dir to test restarts).
func StartIn(t testing.TB, dataDir string, opts ...Option) *Server {
	t.Helper()
	o := apiserver.DefaultOptions()
	o.DataDir = dataDir
	o.BindAddress = "127.0.0.1"
	o.SecurePort = 0
	o.AdvertiseAddress = "127.0.0.1"
	o.EtcdClientURL = "http://127.0.0.1:0"
	o.UnsafeNoFsync = true
	o.CompactionInterval = 0
	for _, f := range opts {
		f(&o)
	}
	level := slog.LevelWarn
	if os.Getenv("MINIK8S_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := apiserver.New(ctx, o, log)
	if err != nil {
		t.Fatalf("starting apiserver: %v", err)
	}
	s := &Server{Server: srv, DataDir: dataDir, AdminToken: srv.Token("admin"), done: make(chan struct{})}
	runCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	addrc := make(chan string, 1)
	go func() {
		defer close(s.done)
		if err := srv.Serve(runCtx, func(addr string) { addrc <- addr }); err != nil {
			t.Errorf("apiserver stopped: %v", err)
			addrc <- ""
		}
	}()
	addr := <-addrc
	if addr == "" {
		t.FailNow()
	}
	s.URL = "https://" + addr
	s.Kubeconfig = filepath.Join(dataDir, "test-admin.kubeconfig")
	if err := writeKubeconfig(s); err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down (idempotent); the data dir stays.
func (s *Server) Stop() {
	if s.stop == nil {
		return
	}
	s.stop()
	<-s.done
	s.Close()
	s.stop = nil
}

func writeKubeconfig(s *Server) error {
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: admin, namespace: default}
current-context: test
`, s.URL, filepath.Join(s.DataDir, "pki", "ca.crt"), s.AdminToken)
	return os.WriteFile(s.Kubeconfig, []byte(data), 0o600)
}

// RESTConfig is a client config for this server's admin, read from its
// kubeconfig like a component would, with a 30 s bound on each non-watch
// request (watches are never cut).
func (s *Server) RESTConfig(t testing.TB) *rest.Config {
	t.Helper()
	kc, err := kubeconfig.Load(s.Kubeconfig, "")
	if err != nil {
		t.Fatalf("kubeconfig of the test server: %v", err)
	}
	cfg, err := rest.ConfigFromKubeconfig(kc)
	if err != nil {
		t.Fatalf("client config of the test server: %v", err)
	}
	cfg.Timeout = 30 * time.Second
	return cfg
}

// Clientset returns typed clients for this server's admin.
func (s *Server) Clientset(t testing.TB) *typed.Clientset {
	t.Helper()
	cs, err := typed.NewForConfig(s.RESTConfig(t))
	if err != nil {
		t.Fatalf("clientset for the test server: %v", err)
	}
	return cs
}

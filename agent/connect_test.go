package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minik8s/minik8s/apiserver/certs"
	"github.com/minik8s/minik8s/client/join"
	"github.com/minik8s/minik8s/internal/syncbuf"
)

// apiServer is an HTTPS server with a minik8s PKI (so joining works)
// whose answers the test chooses.
type apiServer struct {
	url     string
	caPEM   []byte
	apiHits atomic.Int32
}

func startAPIServer(t *testing.T, answer func(hit int32, w http.ResponseWriter)) *apiServer {
	t.Helper()
	pki, err := certs.EnsurePKI(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", pki.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := &apiServer{url: "https://" + ln.Addr().String(), caPEM: pki.CAPEM}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api" {
			http.NotFound(w, r)
			return
		}
		answer(s.apiHits.Add(1), w)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *apiServer) token(t *testing.T, bearer string) string {
	t.Helper()
	tok, err := join.Format(s.caPEM, bearer)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func unauthorized(_ int32, w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`))
}

func apiVersions(_ int32, w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1:6443"}]}`))
}

func testLogger() (*slog.Logger, *syncbuf.Buffer) {
	var buf syncbuf.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func fastRetries(t *testing.T, lo, hi, every time.Duration) {
	oldMin, oldMax, oldEvery := retryMin, retryMax, logEvery
	retryMin, retryMax, logEvery = lo, hi, every
	t.Cleanup(func() { retryMin, retryMax, logEvery = oldMin, oldMax, oldEvery })
}

// nodeOptions keeps the node away from iptables and routes: only the
// kubelet would start, and it must not.
func nodeOptions(t *testing.T) Options {
	return Options{DataDir: t.TempDir(), NodeName: "n1", ClusterCIDR: "10.244.0.0/16", DisableProxy: true}
}

// TestRunStopsOnARefusedToken: a token the API server refuses (401) is
// not a condition that passes. The agent used to start its kubelet anyway,
// which logged "waiting for the API server" every half second forever; it
// now asks once, says which server refused the token and where the right
// one is, and fails.
func TestRunStopsOnARefusedToken(t *testing.T) {
	s := startAPIServer(t, unauthorized)
	o := nodeOptions(t)
	o.Server, o.Token = s.url, s.token(t, "deleted-token")
	log, logs := testLogger()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := Run(ctx, o, log)
	if err == nil {
		t.Fatal("Run with a refused token returned nil")
	}
	if ctx.Err() != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("Run took %v to give up (err %v)", time.Since(start), err)
	}
	for _, want := range []string{s.url, "refused the join token", "401", "deleted", "node-token", "--token"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if n := s.apiHits.Load(); n != 1 {
		t.Errorf("asked the server %d times, want once", n)
	}
	if strings.Contains(logs.String(), "waiting for the API server") {
		t.Errorf("a refused token was waited on:\n%s", logs)
	}

	// The same with a kubeconfig holding a refused token.
	o = nodeOptions(t)
	o.Kubeconfig = writeKubeconfig(t, s, "deleted-token")
	err = Run(ctx, o, log)
	if err == nil || !strings.Contains(err.Error(), "refused the credentials of --kubeconfig "+o.Kubeconfig) ||
		!strings.Contains(err.Error(), "node-token") {
		t.Errorf("Run --kubeconfig with a refused token: %v", err)
	}
}

func writeKubeconfig(t *testing.T, s *apiServer, bearer string) string {
	t.Helper()
	o := Options{DataDir: t.TempDir(), Server: s.url, Token: s.token(t, bearer)}
	tok, _ := join.Parse(o.Token)
	path, err := o.tryConnect(context.Background(), tok)
	if err != nil && path == "" {
		t.Fatal(err)
	}
	return path
}

// TestConnectWaitsQuietly: a server that is not ready (503) or not there
// (connection refused) is retried, but the wait is logged once per
// logEvery, not once per attempt; a 401 afterwards still ends it.
func TestConnectWaitsQuietly(t *testing.T) {
	fastRetries(t, 5*time.Millisecond, 20*time.Millisecond, time.Hour)
	s := startAPIServer(t, func(hit int32, w http.ResponseWriter) {
		if hit <= 5 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		unauthorized(hit, w)
	})
	o := nodeOptions(t)
	o.Server, o.Token = s.url, s.token(t, "tok")
	log, logs := testLogger()
	_, err := o.connect(context.Background(), log)
	if err == nil || !strings.Contains(err.Error(), "refused the join token") {
		t.Fatalf("connect: %v", err)
	}
	if n := s.apiHits.Load(); n != 6 {
		t.Errorf("%d requests, want 5 retried 503s and the 401", n)
	}
	if n := strings.Count(logs.String(), "waiting for the API server"); n != 1 {
		t.Errorf("logged the wait %d times, want once:\n%s", n, logs)
	}

	// Nobody listening: retried until the context ends, logged once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o.Server = "https://" + addr
	log, logs = testLogger()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = o.connect(ctx, log)
	if err == nil || ctx.Err() == nil || !strings.Contains(err.Error(), "waiting for the API server") {
		t.Fatalf("connect to a closed port: %v (want to wait until the context ends)", err)
	}
	if n := strings.Count(logs.String(), "waiting for the API server"); n != 1 {
		t.Errorf("logged the wait %d times, want once:\n%s", n, logs)
	}

	// With a short logEvery the wait is logged again, with how long.
	fastRetries(t, 5*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond)
	log, logs = testLogger()
	ctx, cancel = context.WithTimeout(context.Background(), 350*time.Millisecond)
	defer cancel()
	_, _ = o.connect(ctx, log)
	if n := strings.Count(logs.String(), "waiting for the API server"); n < 2 || n > 4 {
		t.Errorf("logged the wait %d times in 350ms at most every 100ms:\n%s", n, logs)
	}
}

// TestConnect: an accepted token gives the kubeconfig; a server whose CA
// is not the token's is refused at once, not waited for.
func TestConnect(t *testing.T) {
	s := startAPIServer(t, apiVersions)
	o := nodeOptions(t)
	o.Server, o.Token = s.url, s.token(t, "tok")
	log, logs := testLogger()
	path, err := o.connect(context.Background(), log)
	if err != nil || !strings.HasSuffix(path, "kubelet.kubeconfig") {
		t.Fatalf("connect = %q, %v", path, err)
	}
	if strings.Contains(logs.String(), "waiting") {
		t.Errorf("logged a wait:\n%s", logs)
	}

	other := startAPIServer(t, apiVersions)
	o.Token = other.token(t, "tok")
	start := time.Now()
	if _, err := o.connect(context.Background(), log); err == nil || !strings.Contains(err.Error(), "no CA with the token's hash") {
		t.Errorf("connect with another cluster's token: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("a CA mismatch was retried for %v", time.Since(start))
	}
}

// TestUnreachable: a refused connection is worth waiting for; a server
// certificate the agent does not trust is not, though net/http reports
// both as a *url.Error.
func TestUnreachable(t *testing.T) {
	s := startAPIServer(t, apiVersions)
	other := startAPIServer(t, apiVersions)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(other.caPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	_, err := c.Get(s.url + "/api")
	if err == nil || unreachable(err) {
		t.Errorf("a server certificate from another CA: %v, unreachable=%v; want an error that is not retried", err, unreachable(err))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	if _, err := c.Get("https://" + addr + "/api"); err == nil || !unreachable(err) {
		t.Errorf("a closed port: %v, unreachable=%v; want a retried error", err, unreachable(err))
	}
}

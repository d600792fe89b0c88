package apiserver_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minik8s/minik8s/apiserver"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/apiserver/certs"
)

// freePort asks the kernel for a free TCP port on loopback.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startExternalEtcd runs Debian's etcd-server binary as a separate process,
// the way a lab cluster runs its etcd, and returns its client URL.
func startExternalEtcd(t *testing.T) string {
	t.Helper()
	return startEtcdProcess(t, "http")
}

// startEtcdProcess runs /usr/bin/etcd serving clients on scheme (http or
// https; extra carries the TLS flags for https) and returns its client URL.
func startEtcdProcess(t *testing.T, scheme string, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("etcd binary not found; .ci/run installs Debian's etcd-server: %v", err)
		}
		t.Skip("etcd not installed (apt-get install etcd-server); CI installs it")
	}
	host := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	client := scheme + "://" + host
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	args := append([]string{"--name", "test", "--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test=" + peer, "--log-level", "error"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH=")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err == nil {
			c.Close()
			return client
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd at %s did not start: %v", client, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestExternalEtcd runs the API server against a separate etcd process
// (--etcd-servers) and checks that objects land there and survive an API
// server restart.
func TestExternalEtcd(t *testing.T) {
	url := startExternalEtcd(t)
	dir := t.TempDir()
	useExternal := func(o *apiserver.Options) { o.EtcdServers = []string{url} }
	s := apiservertest.StartIn(t, dir, useExternal)
	c := newClient(t, s)
	code, body := c.do("POST", "/api/v1/namespaces/default/configmaps", "application/json",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ext"},"data":{"k":"v"}}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	resp, err := s.EtcdClient().Get(t.Context(), "/registry/configmaps/default/ext")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("object not in external etcd: %v %v", resp, err)
	}
	s.Stop()

	s2 := apiservertest.StartIn(t, dir, useExternal)
	c2 := newClient(t, s2)
	code, body = c2.do("GET", "/api/v1/namespaces/default/configmaps/ext", "", "")
	if code != 200 || body["data"].(map[string]any)["k"] != "v" {
		t.Fatalf("after restart: %d %v", code, body)
	}
}

// etcdTLSFiles are the PEM files of an etcd cluster's own PKI: its CA, the
// serving certificate etcd presents (it covers 127.0.0.1) and a client
// certificate the API server presents to it.
type etcdTLSFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

// newEtcdPKI makes a CA separate from the cluster's, with the repo's own
// PKI code: EnsurePKI gives the CA and a serving certificate for the
// loopback addresses, IssueClientCert a client certificate from that CA.
func newEtcdPKI(t *testing.T) etcdTLSFiles {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "etcd-pki")
	p, err := certs.EnsurePKI(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := p.IssueClientCert("kube-apiserver-etcd-client", nil)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cc.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	f := etcdTLSFiles{
		CA:         p.CAFile(),
		ServerCert: filepath.Join(dir, certs.ServerCertFile),
		ServerKey:  filepath.Join(dir, certs.ServerKeyFile),
		ClientCert: filepath.Join(dir, "apiserver-etcd-client.crt"),
		ClientKey:  filepath.Join(dir, "apiserver-etcd-client.key"),
	}
	if err := os.WriteFile(f.ClientCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cc.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.ClientKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestExternalEtcdTLS runs the API server against an etcd process that
// serves clients over TLS and requires a client certificate
// (--client-cert-auth), the way kubeadm runs etcd; then checks that a CA
// other than etcd's is refused with an error saying so.
func TestExternalEtcdTLS(t *testing.T) {
	pki := newEtcdPKI(t)
	url := startEtcdProcess(t, "https",
		"--cert-file", pki.ServerCert, "--key-file", pki.ServerKey,
		"--trusted-ca-file", pki.CA, "--client-cert-auth")

	s := apiservertest.Start(t, func(o *apiserver.Options) {
		o.EtcdServers = []string{url}
		o.EtcdCAFile, o.EtcdCertFile, o.EtcdKeyFile = pki.CA, pki.ClientCert, pki.ClientKey
	})
	c := newClient(t, s)
	code, body := c.do("POST", "/api/v1/namespaces/default/configmaps", "application/json",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"tls"},"data":{"k":"v"}}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	code, body = c.do("GET", "/api/v1/namespaces/default/configmaps/tls", "", "")
	if code != 200 || body["data"].(map[string]any)["k"] != "v" {
		t.Fatalf("get: %d %v", code, body)
	}
	resp, err := s.EtcdClient().Get(t.Context(), "/registry/configmaps/default/tls")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("object not in external etcd: %v %v", resp, err)
	}

	other := newEtcdPKI(t) // a CA that did not sign etcd's certificate
	start := func(mod func(*apiserver.Options)) error {
		o := apiserver.DefaultOptions()
		o.DataDir, o.BindAddress, o.SecurePort, o.AdvertiseAddress = t.TempDir(), "127.0.0.1", 0, "127.0.0.1"
		o.EtcdServers = []string{url}
		o.EtcdCAFile, o.EtcdCertFile, o.EtcdKeyFile = pki.CA, pki.ClientCert, pki.ClientKey
		mod(&o)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		srv, err := apiserver.New(ctx, o, slog.New(slog.DiscardHandler))
		if err == nil {
			srv.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name string
		mod  func(*apiserver.Options)
		want []string
	}{
		{"wrong CA", func(o *apiserver.Options) { o.EtcdCAFile = other.CA },
			[]string{"--etcd-cafile", "certificate signed by unknown authority"}},
		{"no client certificate", func(o *apiserver.Options) { o.EtcdCertFile, o.EtcdKeyFile = "", "" },
			[]string{"--etcd-certfile", "--etcd-keyfile"}},
		{"client certificate from another CA", func(o *apiserver.Options) {
			o.EtcdCertFile, o.EtcdKeyFile = other.ClientCert, other.ClientKey
		}, []string{"refused our client certificate", "--etcd-certfile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			begin := time.Now()
			err := start(tc.mod)
			if err == nil {
				t.Fatal("the API server started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			t.Logf("after %v: %v", time.Since(begin).Round(time.Millisecond), err)
		})
	}
}

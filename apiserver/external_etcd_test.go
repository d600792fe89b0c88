package apiserver_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/minik8s/minik8s/apiserver"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
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
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("etcd binary not found; .ci/run installs Debian's etcd-server: %v", err)
		}
		t.Skip("etcd not installed (apt-get install etcd-server); CI installs it")
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--name", "test", "--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer, "--log-level", "error")
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
		c, err := net.DialTimeout("tcp", client[len("http://"):], time.Second)
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

package apiserver_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// fakeKubelet stands in for a node's kubelet API: it only accepts client
// certificates from the cluster CA, and answers container logs with the
// path and query it received so the test can check the proxying.
func fakeKubelet(t *testing.T, s *apiservertest.Server) (host string, port int) {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(s.DataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := r.TLS.PeerCertificates[0].Subject.CommonName
		fmt.Fprintf(w, "client=%s path=%s query=%s\n", cn, r.URL.Path, r.URL.RawQuery)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port
}

func TestPodLogsAreProxiedToTheKubelet(t *testing.T) {
	s := apiservertest.Start(t)
	c := newClient(t, s)
	host, port := fakeKubelet(t, s)
	node := fmt.Sprintf(`{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"},
		"status":{"addresses":[{"type":"InternalIP","address":%q}],"daemonEndpoints":{"kubeletEndpoint":{"Port":%d}}}}`, host, port)
	if code, body := c.do("POST", "/api/v1/nodes", "application/json", node); code != 201 {
		t.Fatalf("create node: %d %v", code, body)
	}
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"nodeName":"n1",
		"containers":[{"name":"app","image":"minik8s.local/busybox:1.35"}]}}`
	if code, body := c.do("POST", "/api/v1/namespaces/default/pods", "application/json", pod); code != 201 {
		t.Fatalf("create pod: %d %v", code, body)
	}
	code, body := c.do("GET", "/api/v1/namespaces/default/pods/p/log?tailLines=5&follow=false", "", "")
	raw, _ := body["raw"].(string)
	if code != 200 || !strings.Contains(raw, "client=system:kube-apiserver") ||
		!strings.Contains(raw, "path=/containerLogs/default/p/app") || !strings.Contains(raw, "tail=5") {
		t.Fatalf("log proxy: %d %v", code, body)
	}
	code, body = c.do("GET", "/api/v1/namespaces/default/pods/p/log?container=nope", "", "")
	if code != 400 || !strings.Contains(fmt.Sprint(body["message"]), "container nope is not valid") {
		t.Fatalf("bad container: %d %v", code, body)
	}
	code, body = c.do("GET", "/api/v1/namespaces/default/pods/missing/log", "", "")
	if code != 404 {
		t.Fatalf("missing pod: %d %v", code, body)
	}
}

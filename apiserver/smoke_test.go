package apiserver_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// client is a bare HTTP client for the test server: the tests speak the
// wire protocol directly so they check paths, codes and JSON exactly.
type client struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

func newClient(t *testing.T, s *apiservertest.Server) *client {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(filepath.Join(s.DataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca)
	return &client{t: t, base: s.URL, token: s.AdminToken,
		http: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

// do sends a request and returns the status code and decoded JSON body.
func (c *client) do(method, path, contentType, body string) (int, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 && json.Unmarshal(data, &out) != nil {
		out = map[string]any{"raw": string(data)}
	}
	return resp.StatusCode, out
}

func TestSmokeCRUD(t *testing.T) {
	s := apiservertest.Start(t)
	c := newClient(t, s)
	code, body := c.do("POST", "/api/v1/namespaces/default/configmaps", "application/json",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1"},"data":{"a":"1"}}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	code, body = c.do("GET", "/api/v1/namespaces/default/configmaps/cm1", "", "")
	if code != 200 || body["data"].(map[string]any)["a"] != "1" {
		t.Fatalf("get: %d %v", code, body)
	}
	code, body = c.do("GET", "/api/v1/namespaces/default/configmaps/nope", "", "")
	if code != 404 || body["reason"] != "NotFound" {
		t.Fatalf("get missing: %d %v", code, body)
	}
	anon := *c
	anon.token = ""
	if code, body = anon.do("GET", "/api/v1/namespaces", "", ""); code != 401 {
		t.Fatalf("anonymous list: %d %v", code, body)
	}
}

package join_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/minik8s/minik8s/apiserver/certs"
	"github.com/minik8s/minik8s/client/join"
)

// serveTLS starts an HTTPS listener with a fresh minik8s PKI and returns
// its URL and CA PEM.
func serveTLS(t *testing.T) (string, []byte) {
	t.Helper()
	pki, err := certs.EnsurePKI(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", pki.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String(), pki.CAPEM
}

func TestDiscoverPinsTheCA(t *testing.T) {
	url, caPEM := serveTLS(t)
	s, err := join.Format(caPEM, "secret")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := join.Parse(s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Bearer != "secret" {
		t.Fatalf("bearer = %q", tok.Bearer)
	}
	kc, err := join.Discover(context.Background(), url, tok)
	if err != nil {
		t.Fatal(err)
	}
	if string(kc.CAData) != string(caPEM) || kc.Token != "secret" || kc.Server != url {
		t.Fatalf("kubeconfig = %+v", kc)
	}
	// The CA learned this way verifies the server with a normal client.
	if _, err := kc.TLSConfig(); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoverRefusesAnotherCA(t *testing.T) {
	url, _ := serveTLS(t)
	_, otherCA := serveTLS(t)
	s, _ := join.Format(otherCA, "secret")
	tok, _ := join.Parse(s)
	_, err := join.Discover(context.Background(), url, tok)
	if err == nil || !strings.Contains(err.Error(), "no CA with the token's hash") {
		t.Fatalf("err = %v, want a hash mismatch", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"abc", "must start with"},
		{"K10abcd", "want K10<ca-hash>::<token>"},
		{"K10abcd::tok", "64 hex digits"},
		{"K10" + strings.Repeat("a", 64) + "::", "want K10<ca-hash>::<token>"},
	} {
		if _, err := join.Parse(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
	if _, err := join.Discover(context.Background(), "http://x:1", join.Token{}); err == nil {
		t.Error("http:// server accepted")
	}
}

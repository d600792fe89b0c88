package kubeconfig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/minik8s/minik8s/apiserver/auth"
	"github.com/minik8s/minik8s/apiserver/certs"
)

// selfSigned returns a PEM certificate and key usable as a CA or client cert.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// TestWriteReadByClientGo proves stock kubectl/client-go reads what we write.
func TestWriteReadByClientGo(t *testing.T) {
	ca, _ := selfSigned(t, "ca")
	cert, key := selfSigned(t, "client")
	cases := []struct {
		name string
		cfg  Config
	}{
		{"token and CA", Config{Server: "https://127.0.0.1:6443", CAData: ca, Token: "abc123", Namespace: "team-a"}},
		{"client cert", Config{Server: "https://10.0.0.5:6443", CAData: ca, ClientCertData: cert, ClientKeyData: key}},
		{"insecure, server name", Config{Server: "https://api.example.test:6443", Insecure: true, Token: "t", TLSServerName: "kubernetes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dir", "admin.kubeconfig")
			if err := Write(path, "minik8s", c.cfg); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("stat: %v %v", fi, err)
			}

			kc, err := clientcmd.LoadFromFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if kc.CurrentContext != "minik8s" {
				t.Errorf("current-context %q", kc.CurrentContext)
			}
			cl, ai, cx := kc.Clusters["minik8s"], kc.AuthInfos["minik8s"], kc.Contexts["minik8s"]
			if cl == nil || ai == nil || cx == nil {
				t.Fatalf("entries missing: %+v", kc)
			}
			if cl.Server != c.cfg.Server || !bytes.Equal(cl.CertificateAuthorityData, c.cfg.CAData) ||
				cl.InsecureSkipTLSVerify != c.cfg.Insecure || cl.TLSServerName != c.cfg.TLSServerName {
				t.Errorf("cluster %+v", cl)
			}
			if ai.Token != c.cfg.Token || !bytes.Equal(ai.ClientCertificateData, c.cfg.ClientCertData) ||
				!bytes.Equal(ai.ClientKeyData, c.cfg.ClientKeyData) {
				t.Errorf("user %+v", ai)
			}
			if cx.Namespace != c.cfg.Namespace || cx.Cluster != "minik8s" || cx.AuthInfo != "minik8s" {
				t.Errorf("context %+v", cx)
			}
			rc, err := clientcmd.BuildConfigFromFlags("", path)
			if err != nil {
				t.Fatal(err)
			}
			if rc.Host != c.cfg.Server || rc.BearerToken != c.cfg.Token || !bytes.Equal(rc.CAData, c.cfg.CAData) {
				t.Errorf("rest config host=%q token=%q", rc.Host, rc.BearerToken)
			}

			got, err := Load(path, "")
			if err != nil {
				t.Fatal(err)
			}
			want := c.cfg
			want.ContextName, want.Path = "minik8s", path
			if !equalConfig(*got, want) {
				t.Errorf("Load after Write:\n got %+v\nwant %+v", *got, want)
			}
		})
	}
}

func equalConfig(a, b Config) bool {
	return a.Server == b.Server && bytes.Equal(a.CAData, b.CAData) && a.Token == b.Token &&
		a.Namespace == b.Namespace && a.Insecure == b.Insecure && a.TLSServerName == b.TLSServerName &&
		bytes.Equal(a.ClientCertData, b.ClientCertData) && bytes.Equal(a.ClientKeyData, b.ClientKeyData) &&
		a.ContextName == b.ContextName && a.Path == b.Path
}

// TestLoadClientGoWritten reads a kubeconfig written by client-go with file
// references relative to the kubeconfig's directory.
func TestLoadClientGoWritten(t *testing.T) {
	dir := t.TempDir()
	ca, _ := selfSigned(t, "ca")
	os.MkdirAll(filepath.Join(dir, "pki"), 0o700)
	os.WriteFile(filepath.Join(dir, "pki", "ca.crt"), ca, 0o644)
	os.WriteFile(filepath.Join(dir, "token"), []byte("file-token\n"), 0o600)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c1"] = &clientcmdapi.Cluster{Server: "https://1.2.3.4:6443", CertificateAuthority: "pki/ca.crt"}
	kc.Clusters["c2"] = &clientcmdapi.Cluster{Server: "https://5.6.7.8:6443", InsecureSkipTLSVerify: true}
	kc.AuthInfos["u1"] = &clientcmdapi.AuthInfo{TokenFile: "token"}
	kc.AuthInfos["u2"] = &clientcmdapi.AuthInfo{Token: "inline"}
	kc.Contexts["one"] = &clientcmdapi.Context{Cluster: "c1", AuthInfo: "u1", Namespace: "ns1"}
	kc.Contexts["two"] = &clientcmdapi.Context{Cluster: "c2", AuthInfo: "u2"}
	kc.CurrentContext = "one"
	path := filepath.Join(dir, "config")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		context string
		want    Config
	}{
		{"", Config{Server: "https://1.2.3.4:6443", CAData: ca, Token: "file-token", Namespace: "ns1", ContextName: "one", Path: path}},
		{"two", Config{Server: "https://5.6.7.8:6443", Insecure: true, Token: "inline", ContextName: "two", Path: path}},
	}
	for _, c := range cases {
		got, err := Load(path, c.context)
		if err != nil {
			t.Fatalf("%q: %v", c.context, err)
		}
		if !equalConfig(*got, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.context, *got, c.want)
		}
	}
	if got, _ := Load(path, "two"); got.NamespaceOrDefault() != "default" {
		t.Errorf("NamespaceOrDefault = %q", got.NamespaceOrDefault())
	}
}

// TestWriteMerges keeps other people's entries (including fields minik8s
// does not model) when writing into an existing kubeconfig.
func TestWriteMerges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["prod"] = &clientcmdapi.Cluster{Server: "https://prod:6443", ProxyURL: "http://proxy:3128"}
	kc.AuthInfos["prod"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "get-token", APIVersion: "client.authentication.k8s.io/v1", InteractiveMode: clientcmdapi.NeverExecInteractiveMode}}
	kc.AuthInfos["minik8s"] = &clientcmdapi.AuthInfo{Token: "old", Username: "stale"}
	kc.Contexts["prod"] = &clientcmdapi.Context{Cluster: "prod", AuthInfo: "prod"}
	kc.CurrentContext = "prod"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, "minik8s", Config{Server: "https://127.0.0.1:6443", Token: "new", Insecure: true}); err != nil {
		t.Fatal(err)
	}
	got, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.CurrentContext != "minik8s" {
		t.Errorf("current-context %q", got.CurrentContext)
	}
	if p := got.Clusters["prod"]; p == nil || p.ProxyURL != "http://proxy:3128" {
		t.Errorf("prod cluster lost: %+v", p)
	}
	if p := got.AuthInfos["prod"]; p == nil || p.Exec == nil || p.Exec.Command != "get-token" {
		t.Errorf("prod exec user lost: %+v", p)
	}
	if u := got.AuthInfos["minik8s"]; u == nil || u.Token != "new" || u.Username != "" {
		t.Errorf("minik8s user not replaced wholesale: %+v", u)
	}
	if len(got.Contexts) != 2 || len(got.Clusters) != 2 || len(got.AuthInfos) != 2 {
		t.Errorf("entries: %d contexts %d clusters %d users", len(got.Contexts), len(got.Clusters), len(got.AuthInfos))
	}
	// Our loader refuses the exec user with a pointed message.
	if _, err := Load(path, "prod"); err == nil || !strings.Contains(err.Error(), "users[1].user.exec: credential plugins are not supported") {
		t.Errorf("exec user: %v", err)
	}

	os.WriteFile(path, []byte("clusters: [unclosed"), 0o600)
	if err := Write(path, "x", Config{Server: "https://a"}); err == nil {
		t.Error("overwrote a file that is not YAML")
	}
}

func TestLoadErrors(t *testing.T) {
	ca, _ := selfSigned(t, "ca")
	cert, _ := selfSigned(t, "client")
	caB64 := base64.StdEncoding.EncodeToString(ca)
	doc := func(cluster, user, ctx, current string) string {
		return "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n" + cluster +
			"users:\n- name: u\n  user:\n" + user +
			"contexts:\n- name: x\n  context:\n" + ctx + "current-context: " + current + "\n"
	}
	okCluster := "    server: https://127.0.0.1:6443\n    certificate-authority-data: " + caB64 + "\n"
	okUser := "    token: abc\n"
	okCtx := "    cluster: c\n    user: u\n"
	cases := []struct {
		name, content, context, want string
	}{
		{"no current context", doc(okCluster, okUser, okCtx, `""`), "", "current-context is not set"},
		{"unknown current context", doc(okCluster, okUser, okCtx, "nope"), "", `current-context "nope" not found`},
		{"unknown requested context", doc(okCluster, okUser, okCtx, "x"), "other", `context "other" not found`},
		{"unknown cluster", doc(okCluster, okUser, "    cluster: zz\n    user: u\n", "x"), "", `contexts[0].context.cluster "zz"`},
		{"unknown user", doc(okCluster, okUser, "    cluster: c\n    user: zz\n", "x"), "", `contexts[0].context.user "zz"`},
		{"empty server", doc("    server: \"\"\n", okUser, okCtx, "x"), "", "clusters[0].cluster.server: is empty"},
		{"bad scheme", doc("    server: ftp://x\n", okUser, okCtx, "x"), "", "clusters[0].cluster.server"},
		{"bad base64 CA", doc("    server: https://a\n    certificate-authority-data: '%%%'\n", okUser, okCtx, "x"), "", "clusters[0].cluster.certificate-authority-data: not valid base64"},
		{"CA not PEM", doc("    server: https://a\n    certificate-authority-data: "+base64.StdEncoding.EncodeToString([]byte("hi"))+"\n", okUser, okCtx, "x"), "", "clusters[0].cluster.certificate-authority: no PEM"},
		{"missing CA file", doc("    server: https://a\n    certificate-authority: missing.crt\n", okUser, okCtx, "x"), "", "clusters[0].cluster.certificate-authority: open"},
		{"insecure with CA", doc(okCluster+"    insecure-skip-tls-verify: true\n", okUser, okCtx, "x"), "", "insecure-skip-tls-verify cannot be combined"},
		{"missing token file", doc(okCluster, "    tokenFile: nope\n", okCtx, "x"), "", "users[0].user.tokenFile"},
		{"cert without key", doc(okCluster, "    client-certificate-data: "+base64.StdEncoding.EncodeToString(cert)+"\n", okCtx, "x"), "", "client-certificate and client-key must be given together"},
		{"exec plugin", doc(okCluster, "    exec:\n      command: foo\n", okCtx, "x"), "", "users[0].user.exec"},
		{"basic auth", doc(okCluster, "    username: bob\n    password: pw\n", okCtx, "x"), "", "users[0].user.username"},
		{"wrong kind", "kind: Pod\n", "", "kind is \"Pod\""},
		{"not yaml", "clusters: [", "", "parse"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config")
			os.WriteFile(path, []byte(c.content), 0o600)
			_, err := Load(path, c.context)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q should name %s and contain %q", err, path, c.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent"), ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestDefaultPathPrecedence(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	homeCfg := filepath.Join(home, ".kube", "config")
	envA := filepath.Join(dir, "a")
	envB := filepath.Join(dir, "b")
	explicit := filepath.Join(dir, "explicit")
	for _, p := range []string{homeCfg, envB, explicit} {
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, []byte("kind: Config\n"), 0o600)
	}
	cases := []struct {
		name, explicit, env, home, want, wantErr string
	}{
		{name: "explicit wins", explicit: explicit, env: envB, home: home, want: explicit},
		{name: "explicit missing is an error, no fall-through", explicit: envA, env: envB, home: home, want: envA},
		{name: "KUBECONFIG over home", env: envB, home: home, want: envB},
		{name: "KUBECONFIG list: first existing", env: envA + string(os.PathListSeparator) + envB, home: home, want: envB},
		{name: "KUBECONFIG naming nothing", env: envA, home: home, wantErr: "$KUBECONFIG"},
		{name: "home", home: home, want: homeCfg},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", c.env)
			t.Setenv("HOME", c.home)
			got, err := DefaultPath(c.explicit)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("want error with %q, got %q %v", c.wantErr, got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q %v, want %q", got, err, c.want)
			}
		})
	}
	// No kubeconfig at all: falls back to the admin kubeconfig or says
	// where it looked.
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", filepath.Join(dir, "empty-home"))
	got, err := DefaultPath("")
	if _, statErr := os.Stat(DefaultAdminPath); statErr == nil {
		if got != DefaultAdminPath {
			t.Errorf("got %q, want %s", got, DefaultAdminPath)
		}
	} else if err == nil || !strings.Contains(err.Error(), DefaultAdminPath) {
		t.Errorf("want error listing %s, got %q %v", DefaultAdminPath, got, err)
	}

	// LoadDefault uses the chosen file.
	good := filepath.Join(dir, "good")
	if err := Write(good, "ctx", Config{Server: "https://h:1", Token: "tk", Insecure: true}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", good)
	c, err := LoadDefault("", "")
	if err != nil || c.Token != "tk" || c.Path != good {
		t.Fatalf("LoadDefault: %+v %v", c, err)
	}
}

// TestHTTPClientAgainstSecureServer wires certs, auth and kubeconfig the way
// the API server and its clients do.
func TestHTTPClientAgainstSecureServer(t *testing.T) {
	dir := t.TempDir()
	pki, err := certs.EnsurePKI(filepath.Join(dir, "pki"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.EnsureTokens(filepath.Join(dir, "tokens.csv"), []string{auth.UserAdmin})
	if err != nil {
		t.Fatal(err)
	}
	adminToken, _ := tokens.Token(auth.UserAdmin)
	srv := httptest.NewUnstartedServer(auth.WithAuthentication(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := auth.UserFrom(r.Context())
		io.WriteString(w, u.Name)
	}), tokens, nil, auth.DefaultAnonymousPaths...))
	srv.TLS = pki.TLSConfig()
	srv.StartTLS()
	defer srv.Close()
	server := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)

	path := filepath.Join(dir, "admin.kubeconfig")
	cases := []struct {
		name     string
		cfg      Config
		wantCode int
		wantBody string
		wantErr  string
	}{
		{"admin token", Config{Server: server, CAData: pki.CAPEM, Token: adminToken}, 200, "admin", ""},
		{"wrong token", Config{Server: server, CAData: pki.CAPEM, Token: "wrong"}, 401, "", ""},
		{"no token", Config{Server: srv.URL, CAData: pki.CAPEM}, 401, "", ""},
		{"untrusted CA", Config{Server: server, CAData: mustSelfSigned(t), Token: adminToken}, 0, "", "certificate"},
		{"insecure", Config{Server: server, Insecure: true, Token: adminToken}, 200, "admin", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := Write(path, "minik8s", c.cfg); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path, "")
			if err != nil {
				t.Fatal(err)
			}
			hc, err := cfg.HTTPClient()
			if err != nil {
				t.Fatal(err)
			}
			defer hc.CloseIdleConnections()
			resp, err := hc.Get(cfg.Server + "/api")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("want error with %q, got %v", c.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.wantCode || (c.wantBody != "" && string(body) != c.wantBody) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, c.wantCode, c.wantBody)
			}
		})
	}
}

func mustSelfSigned(t *testing.T) []byte {
	c, _ := selfSigned(t, "other-ca")
	return c
}

func TestTLSConfigClientCert(t *testing.T) {
	cert, key := selfSigned(t, "client")
	c := Config{ClientCertData: cert, ClientKeyData: key}
	tc, err := c.TLSConfig()
	if err != nil || len(tc.Certificates) != 1 || tc.MinVersion != tls.VersionTLS12 {
		t.Fatalf("%+v %v", tc, err)
	}
	_, otherKey := selfSigned(t, "x")
	c.ClientKeyData = otherKey
	if _, err := c.TLSConfig(); err == nil {
		t.Fatal("mismatched key accepted")
	}
}

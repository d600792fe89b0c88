package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var allFiles = []string{CACertFile, CAKeyFile, ServerCertFile, ServerKeyFile}

func readAll(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range allFiles {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		m[f] = string(b)
	}
	return m
}

func leafOf(t *testing.T, p *PKI) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(p.ServingCert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p, err := EnsurePKI(dir, []string{"10.96.0.1", "api.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	for f, mode := range map[string]os.FileMode{CAKeyFile: 0o600, ServerKeyFile: 0o600, CACertFile: 0o644, ServerCertFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", f, fi.Mode().Perm(), mode)
		}
	}
	if !p.CA.IsCA {
		t.Error("CA cert is not a CA")
	}
	if k, ok := p.CA.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", p.CA.PublicKey)
	}
	if life := p.CA.NotAfter.Sub(p.CA.NotBefore); life < 9*365*24*time.Hour {
		t.Errorf("CA lifetime %v, want about 10 years", life)
	}
	caFile, _ := os.ReadFile(p.CAFile())
	if string(caFile) != string(p.CAPEM) {
		t.Error("CAPEM differs from ca.crt")
	}
	leaf := leafOf(t, p)
	if err := leaf.CheckSignatureFrom(p.CA); err != nil {
		t.Errorf("serving cert not signed by CA: %v", err)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("serving ExtKeyUsage %v", leaf.ExtKeyUsage)
	}
	hostname, _ := os.Hostname()
	want := append([]string{"localhost", "127.0.0.1", "::1", "10.96.0.1", "api.example.test", strings.ToLower(hostname)}, ServiceDNSNames...)
	for _, h := range want {
		if !covers(leaf, h) {
			t.Errorf("serving cert does not cover %q (DNS %v IP %v)", h, leaf.DNSNames, leaf.IPAddresses)
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil && !covers(leaf, ipn.IP.String()) {
			t.Errorf("serving cert does not cover host IP %s", ipn.IP)
		}
	}
	if covers(leaf, "other.example.test") {
		t.Error("serving cert covers a host nobody asked for")
	}
}

func TestReloadUnchanged(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"10.96.0.1"}
	p1, err := EnsurePKI(dir, hosts)
	if err != nil {
		t.Fatal(err)
	}
	before := readAll(t, dir)
	p2, err := EnsurePKI(dir, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if after := readAll(t, dir); len(after) != len(before) {
		t.Fatal("file set changed")
	} else {
		for f := range before {
			if before[f] != after[f] {
				t.Errorf("%s changed on reload", f)
			}
		}
	}
	if string(p1.CAPEM) != string(p2.CAPEM) || string(p1.ServingCert.Certificate[0]) != string(p2.ServingCert.Certificate[0]) {
		t.Error("reloaded PKI differs")
	}
	// Requesting a subset of the SANs also reuses the cert.
	if _, err := EnsurePKI(dir, nil); err != nil {
		t.Fatal(err)
	}
	if readAll(t, dir)[ServerCertFile] != before[ServerCertFile] {
		t.Error("serving cert re-issued although it covers every requested host")
	}
}

// TestServingReissued covers every reason to issue a new serving cert; the
// CA must stay the same in all of them.
func TestServingReissued(t *testing.T) {
	cases := []struct {
		name  string
		hosts []string
		spoil func(t *testing.T, p *PKI)
	}{
		{name: "new host", hosts: []string{"10.96.0.1", "new.example.test"}},
		{name: "expires within 30 days", hosts: []string{"10.96.0.1"}, spoil: func(t *testing.T, p *PKI) {
			writeLeaf(t, p, p.CA, p.caKey, time.Now().Add(10*24*time.Hour), p.Hosts)
		}},
		{name: "signed by another CA", hosts: []string{"10.96.0.1"}, spoil: func(t *testing.T, p *PKI) {
			other, err := EnsurePKI(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			writeLeaf(t, p, other.CA, other.caKey, time.Now().Add(300*24*time.Hour), p.Hosts)
		}},
		{name: "corrupt key", hosts: []string{"10.96.0.1"}, spoil: func(t *testing.T, p *PKI) {
			os.WriteFile(filepath.Join(p.Dir, ServerKeyFile), []byte("garbage"), 0o600)
		}},
		{name: "missing cert", hosts: []string{"10.96.0.1"}, spoil: func(t *testing.T, p *PKI) {
			os.Remove(filepath.Join(p.Dir, ServerCertFile))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := EnsurePKI(dir, []string{"10.96.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			if c.spoil != nil {
				c.spoil(t, p)
			}
			before := readFileOrEmpty(filepath.Join(dir, ServerCertFile))
			p2, err := EnsurePKI(dir, c.hosts)
			if err != nil {
				t.Fatal(err)
			}
			if readFileOrEmpty(filepath.Join(dir, ServerCertFile)) == before {
				t.Fatal("serving cert was not re-issued")
			}
			if string(p2.CAPEM) != string(p.CAPEM) {
				t.Fatal("CA changed")
			}
			leaf := leafOf(t, p2)
			if err := leaf.CheckSignatureFrom(p2.CA); err != nil {
				t.Fatal(err)
			}
			if time.Until(leaf.NotAfter) < RenewBefore {
				t.Fatal("new cert expires soon")
			}
			for _, h := range c.hosts {
				if !covers(leaf, h) {
					t.Errorf("new cert does not cover %s", h)
				}
			}
		})
	}
}

func TestCAErrors(t *testing.T) {
	cases := []struct {
		name    string
		spoil   func(dir string)
		wantSub string
	}{
		{"CA key missing", func(dir string) { os.Remove(filepath.Join(dir, CAKeyFile)) }, CACertFile},
		{"CA cert corrupt", func(dir string) { os.WriteFile(filepath.Join(dir, CACertFile), []byte("nope"), 0o644) }, CACertFile},
		{"CA key corrupt", func(dir string) { os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("nope"), 0o600) }, CAKeyFile},
		{"CA key of another CA", func(dir string) {
			other := t.TempDir()
			if _, err := EnsurePKI(other, nil); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(filepath.Join(other, CAKeyFile))
			os.WriteFile(filepath.Join(dir, CAKeyFile), b, 0o600)
		}, "does not match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := EnsurePKI(dir, nil); err != nil {
				t.Fatal(err)
			}
			c.spoil(dir)
			_, err := EnsurePKI(dir, nil)
			if err == nil || !strings.Contains(err.Error(), c.wantSub) {
				t.Fatalf("want error mentioning %q, got %v", c.wantSub, err)
			}
		})
	}
}

func TestBadHost(t *testing.T) {
	if _, err := EnsurePKI(t.TempDir(), []string{"bad host"}); err == nil {
		t.Fatal("want error for a host with a space")
	}
}

// TestHandshake serves TLS with TLSConfig and connects with a client that
// trusts only the bytes of ca.crt, as kubectl would.
func TestHandshake(t *testing.T) {
	dir := t.TempDir()
	p, err := EnsurePKI(dir, []string{"10.96.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if tc, ok := c.(*tls.Conn); ok && tc.Handshake() == nil {
					io.WriteString(c, "ok")
				}
			}()
		}
	}()

	caPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt not PEM")
	}
	cases := []struct {
		serverName string
		maxVersion uint16
		ok         bool
	}{
		{"127.0.0.1", 0, true},
		{"localhost", 0, true},
		{"kubernetes.default.svc", 0, true},
		{"10.96.0.1", 0, true},
		{"localhost", tls.VersionTLS12, true},
		{"not-in-cert.example.test", 0, false},
		{"localhost", tls.VersionTLS11, false},
	}
	for _, c := range cases {
		cfg := &tls.Config{RootCAs: pool, ServerName: c.serverName, MinVersion: tls.VersionTLS10, MaxVersion: c.maxVersion}
		conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err == nil {
			b, _ := io.ReadAll(conn)
			conn.Close()
			if string(b) != "ok" {
				err = io.ErrUnexpectedEOF
			}
		}
		if (err == nil) != c.ok {
			t.Errorf("server name %s, max version %x: ok=%v, err=%v", c.serverName, c.maxVersion, c.ok, err)
		}
	}
}

func readFileOrEmpty(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// writeLeaf overwrites the serving pair with a cert for hosts, signed by
// the given CA, expiring at notAfter.
func writeLeaf(t *testing.T, p *PKI, ca *x509.Certificate, caKey any, notAfter time.Time, hosts []string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big1(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(p.Dir, ServerCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(p.Dir, ServerKeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

func big1() *big.Int { s, _ := randomSerial(); return s }

func TestIssueClientCertVerifiesAgainstCA(t *testing.T) {
	p, err := EnsurePKI(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.IssueClientCert("system:kube-apiserver", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf.Subject.CommonName != "system:kube-apiserver" {
		t.Fatalf("CN = %q", c.Leaf.Subject.CommonName)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: p.CertPool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client cert does not verify against the cluster CA: %v", err)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: p.CertPool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Fatal("a client certificate must not be usable as a server certificate")
	}
}

package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names inside the PKI directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

const (
	caValidity      = 10 * 365 * 24 * time.Hour
	servingValidity = 365 * 24 * time.Hour
	// RenewBefore is how close to expiry a serving certificate may get
	// before a start re-issues it; a month leaves room for an operator to
	// notice a failed renewal.
	RenewBefore = 30 * 24 * time.Hour
	// backdate tolerates clocks on other machines running a little behind.
	backdate = time.Hour
)

// ServiceDNSNames are the in-cluster names of the API server Service; pods
// reach the API through them, so the serving cert must cover them.
var ServiceDNSNames = []string{
	"kubernetes",
	"kubernetes.default",
	"kubernetes.default.svc",
	"kubernetes.default.svc.cluster.local",
}

// PKI is the loaded certificate authority and API server serving identity.
type PKI struct {
	// Dir holds the files named by the *File constants.
	Dir string
	// CAPEM is ca.crt, PEM encoded: embed it in kubeconfigs as
	// certificate-authority-data.
	CAPEM []byte
	// CA is the parsed CA certificate.
	CA *x509.Certificate
	// ServingCert is the API server's certificate chain and key.
	ServingCert tls.Certificate
	// Hosts are the DNS names and IPs the serving certificate covers.
	Hosts []string

	caKey crypto.Signer
}

// CAFile returns the path of ca.crt (for certificate-authority in a kubeconfig).
func (p *PKI) CAFile() string { return filepath.Join(p.Dir, CACertFile) }

// CertPool returns a pool holding only our CA, for clients of the API server.
func (p *PKI) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA)
	return pool
}

// TLSConfig returns a server configuration presenting the serving
// certificate, refusing anything older than TLS 1.2. NextProtos is left
// empty so net/http can advertise HTTP/2 itself.
//
// The chain sent ends with the CA certificate itself: clients that trust
// the CA ignore it, and a joining node (client/join) needs it to learn the
// CA, which it checks against the hash in its join token.
func (p *PKI) TLSConfig() *tls.Config {
	chain := p.ServingCert
	chain.Certificate = append(append([][]byte(nil), p.ServingCert.Certificate...), p.CA.Raw)
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{chain},
	}
}

// EnsurePKI loads or creates the CA and serving certificate in dir.
//
// hosts are extra SAN entries (IPs or DNS names), typically the first IP
// of the service range (10.96.0.1) and any public name of the server; the
// defaults from DefaultHosts are always included. The CA is created only
// when ca.crt is absent; a CA certificate without its key is an error
// rather than a silent replacement, because clients already trust it.
func EnsurePKI(dir string, hosts []string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("certs: create PKI dir %s: %w", dir, err)
	}
	want, err := normalizeHosts(append(DefaultHosts(), hosts...))
	if err != nil {
		return nil, err
	}

	p := &PKI{Dir: dir}
	if err := p.ensureCA(); err != nil {
		return nil, err
	}
	if err := p.ensureServing(want); err != nil {
		return nil, err
	}
	return p, nil
}

// DefaultHosts returns the SANs every serving certificate carries:
// loopback names, the machine hostname, every non-loopback IPv4 address of
// the host, and the in-cluster Service names. Interface enumeration errors
// are ignored: the certificate is still valid for the other names.
func DefaultHosts() []string {
	h := []string{"localhost", "127.0.0.1", "::1"}
	if name, err := os.Hostname(); err == nil && name != "" {
		h = append(h, strings.ToLower(name))
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil {
				continue
			}
			h = append(h, ipn.IP.String())
		}
	}
	return append(h, ServiceDNSNames...)
}

// normalizeHosts canonicalises IPs, lowercases names, drops duplicates and
// rejects names x509 cannot carry, so comparisons with an existing
// certificate are stable.
func normalizeHosts(in []string) ([]string, error) {
	var out []string
	for _, h := range in {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		} else {
			h = strings.ToLower(h)
			for _, r := range h {
				if r > 0x7e || r < 0x21 {
					return nil, fmt.Errorf("certs: host %q is not a valid DNS name for a certificate", h)
				}
			}
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out, nil
}

func (p *PKI) ensureCA() error {
	certPath := filepath.Join(p.Dir, CACertFile)
	keyPath := filepath.Join(p.Dir, CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return p.createCA(certPath, keyPath)
	}
	if err != nil {
		return fmt.Errorf("certs: read %s: %w", certPath, err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return fmt.Errorf("certs: %s: %w", certPath, err)
	}
	if !cert.IsCA {
		return fmt.Errorf("certs: %s is not a CA certificate", certPath)
	}
	if time.Now().After(cert.NotAfter) {
		return fmt.Errorf("certs: CA %s expired on %s; move the PKI dir away to create a new one (clients must then be given the new ca.crt)",
			certPath, cert.NotAfter.Format(time.RFC3339))
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return fmt.Errorf("certs: CA certificate %s exists but its key cannot be read: %w", certPath, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return fmt.Errorf("certs: %s: %w", keyPath, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return fmt.Errorf("certs: %s does not match %s", keyPath, certPath)
	}
	p.CAPEM, p.CA, p.caKey = certPEM, cert, key
	return nil
}

func (p *PKI) createCA(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("certs: generate CA key: %w", err)
	}
	now := time.Now()
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The timestamp makes CAs from different installs distinguishable
		// when an operator has several in a trust store.
		Subject:               pkix.Name{CommonName: fmt.Sprintf("minik8s-ca@%d", now.Unix())},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("certs: self-sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("certs: parse new CA: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Key before certificate: ca.crt is what marks the CA as existing, so a
	// crash in between leaves a state that the next start simply redoes.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return err
	}
	p.CAPEM, p.CA, p.caKey = certPEM, cert, key
	return nil
}

// ensureServing reuses server.crt/server.key when they are a valid pair,
// chain to our CA, cover every wanted host and are not about to expire;
// otherwise it issues a new pair.
func (p *PKI) ensureServing(want []string) error {
	certPath := filepath.Join(p.Dir, ServerCertFile)
	keyPath := filepath.Join(p.Dir, ServerKeyFile)
	if pair, hosts, ok := p.loadServing(certPath, keyPath, want); ok {
		p.ServingCert, p.Hosts = pair, hosts
		return nil
	}
	return p.issueServing(certPath, keyPath, want)
}

// loadServing reports whether the existing serving pair is still usable.
// Any problem (missing, corrupt, foreign CA) means "issue a new one": the
// serving cert is derived data, unlike the CA.
func (p *PKI) loadServing(certPath, keyPath string, want []string) (tls.Certificate, []string, bool) {
	certPEM, err1 := os.ReadFile(certPath)
	keyPEM, err2 := os.ReadFile(keyPath)
	if err1 != nil || err2 != nil {
		return tls.Certificate{}, nil, false
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return tls.Certificate{}, nil, false
	}
	if leaf.CheckSignatureFrom(p.CA) != nil {
		return tls.Certificate{}, nil, false
	}
	if time.Until(leaf.NotAfter) < RenewBefore {
		return tls.Certificate{}, nil, false
	}
	for _, h := range want {
		if !covers(leaf, h) {
			return tls.Certificate{}, nil, false
		}
	}
	pair.Leaf = leaf
	return pair, certHosts(leaf), true
}

func (p *PKI) issueServing(certPath, keyPath string, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("certs: generate serving key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	notAfter := now.Add(servingValidity)
	if notAfter.After(p.CA.NotAfter) {
		// A leaf outliving its CA would fail verification anyway.
		notAfter = p.CA.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-backdate),
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
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, &key.PublicKey, p.caKey)
	if err != nil {
		return fmt.Errorf("certs: sign serving certificate for %v: %w", hosts, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("certs: reload new serving pair: %w", err)
	}
	pair.Leaf, _ = x509.ParseCertificate(der)
	p.ServingCert, p.Hosts = pair, hosts
	return nil
}

// covers reports whether leaf is valid for host (an IP or DNS name).
func covers(leaf *x509.Certificate, host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return slices.ContainsFunc(leaf.IPAddresses, ip.Equal)
	}
	return leaf.VerifyHostname(host) == nil
}

func certHosts(c *x509.Certificate) []string {
	h := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		h = append(h, ip.String())
	}
	return h
}

func randomSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certs: serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return c, nil
}

// parseKeyPEM accepts the key encodings operators are likely to bring
// (SEC1 EC, PKCS#8, PKCS#1 RSA) so a CA made with openssl can be dropped in.
func parseKeyPEM(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse EC key: %w", err)
		}
		return k, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse RSA key: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#8 key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("PKCS#8 key of type %T cannot sign", k)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ae, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ae.Equal(b)
}

// writeFileAtomic replaces path with data via a temporary file and rename,
// so a reader (or a crash) never sees a half-written key or certificate.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(mode)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	return nil
}

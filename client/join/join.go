// Package join turns a cluster join token into a kubeconfig a node can use.
//
// A join token looks like k3s' node token:
//
//	K10<sha256 of the cluster CA certificate, hex>::<bearer token>
//
// The hash lets a new node trust the API server before it has the CA: the
// node dials the server without verification, takes the CA certificate the
// server sends at the end of its TLS chain, accepts it only if its hash is
// the one in the token, and then verifies the server's certificate against
// it. The bearer token then authenticates the node (as system:node-join).
// This package owns only that handshake; the server writes the token file.
package join

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/minik8s/minik8s/client/kubeconfig"
)

const prefix = "K10"

// Format builds the join token for a cluster whose CA certificate is caPEM.
func Format(caPEM []byte, bearer string) (string, error) {
	block, _ := pem.Decode(caPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("join: CA is not a PEM certificate")
	}
	return prefix + hashOf(block.Bytes) + "::" + bearer, nil
}

// Token is a parsed join token.
type Token struct {
	// CAHash is the hex SHA-256 of the CA certificate (DER).
	CAHash string
	// Bearer authenticates the node.
	Bearer string
}

// Parse splits a join token; it says what is wrong with a malformed one.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return Token{}, fmt.Errorf("join token: must start with %q (read it from <data-dir>/node-token on the server)", prefix)
	}
	hash, bearer, ok := strings.Cut(rest, "::")
	if !ok || bearer == "" {
		return Token{}, errors.New("join token: want K10<ca-hash>::<token>")
	}
	if b, err := hex.DecodeString(hash); err != nil || len(b) != sha256.Size {
		return Token{}, errors.New("join token: the CA hash must be 64 hex digits (SHA-256)")
	}
	return Token{CAHash: strings.ToLower(hash), Bearer: bearer}, nil
}

// Discover connects to server (https://host:port), learns the cluster CA as
// described in the package doc and returns a kubeconfig for the node.
func Discover(ctx context.Context, server string, tok Token) (kubeconfig.Config, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return kubeconfig.Config{}, fmt.Errorf("--server %q: want https://HOST:PORT", server)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	var ca *x509.Certificate
	cfg := &tls.Config{
		// Verification happens below against the hash-pinned CA; the
		// handshake itself cannot verify what it does not know yet.
		InsecureSkipVerify: true, //nolint:gosec // pinned by hash in VerifyPeerCertificate
		ServerName:         u.Hostname(),
		MinVersion:         tls.VersionTLS12,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			var err error
			ca, err = verifyPinned(raw, u.Hostname(), tok.CAHash)
			return err
		},
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return kubeconfig.Config{}, fmt.Errorf("join %s: %w", server, err)
	}
	_ = conn.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	return kubeconfig.Config{Server: strings.TrimRight(server, "/"), CAData: caPEM, Token: tok.Bearer, Namespace: "default"}, nil
}

// verifyPinned finds the certificate whose hash is caHash in the server's
// chain and verifies the leaf against it for host.
func verifyPinned(raw [][]byte, host, caHash string) (*x509.Certificate, error) {
	if len(raw) == 0 {
		return nil, errors.New("join: the server sent no certificate")
	}
	var ca *x509.Certificate
	for _, der := range raw[1:] {
		if hashOf(der) == caHash {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("join: CA certificate: %w", err)
			}
			ca = c
		}
	}
	if ca == nil {
		return nil, errors.New("join: the server's certificate chain has no CA with the token's hash (wrong token, or not a minik8s server?)")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return nil, fmt.Errorf("join: server certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
		return nil, fmt.Errorf("join: server certificate: %w", err)
	}
	return ca, nil
}

func hashOf(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

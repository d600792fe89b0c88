package kubeconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
)

// TLSConfig builds the client TLS settings: trust CAData (or the system
// roots when empty), present the client certificate if any, TLS 1.2+.
func (c *Config) TLSConfig() (*tls.Config, error) {
	if c.Insecure && len(c.CAData) > 0 {
		return nil, errors.New("insecure-skip-tls-verify cannot be combined with a certificate authority")
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLSServerName,
		InsecureSkipVerify: c.Insecure, //nolint:gosec // explicit user choice in the kubeconfig
	}
	if len(c.CAData) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(c.CAData) {
			return nil, errors.New("certificate-authority data holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if len(c.ClientCertData) > 0 || len(c.ClientKeyData) > 0 {
		pair, err := tls.X509KeyPair(c.ClientCertData, c.ClientKeyData)
		if err != nil {
			return nil, fmt.Errorf("client certificate/key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// HTTPClient returns a client for the API server: its transport uses
// TLSConfig and adds "Authorization: Bearer <Token>" to requests that carry
// no Authorization header. It sets no overall timeout because watches are
// long-lived; use request contexts for deadlines.
func (c *Config) HTTPClient() (*http.Client, error) {
	tlsCfg, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	var rt http.RoundTripper = tr
	if c.Token != "" {
		rt = &bearerRoundTripper{token: c.Token, next: tr}
	}
	return &http.Client{Transport: rt}, nil
}

type bearerRoundTripper struct {
	token string
	next  http.RoundTripper
}

func (b *bearerRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") != "" {
		return b.next.RoundTrip(r)
	}
	// A RoundTripper must not modify the caller's request.
	r2 := r.Clone(r.Context())
	r2.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r2)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport.
func (b *bearerRoundTripper) CloseIdleConnections() {
	if c, ok := b.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

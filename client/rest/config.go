package rest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config says how to reach and authenticate to an API server.
type Config struct {
	// Host is the server's base URL, e.g. "https://10.0.0.1:6443". A bare
	// "host:port" means https.
	Host string
	// BearerToken is sent as "Authorization: Bearer <token>" when set.
	BearerToken string
	// CAData is the PEM bundle that signs the server's certificate. Empty
	// means the system roots.
	CAData []byte
	// CertData and KeyData are an optional PEM client certificate and key.
	CertData, KeyData []byte
	// TLSServerName overrides the name checked against the server's
	// certificate (when dialing by IP, say).
	TLSServerName string
	// Insecure skips server certificate verification. Only for labs.
	Insecure bool
	// UserAgent identifies the component in server logs; empty means
	// DefaultUserAgent.
	UserAgent string
	// Timeout bounds each non-watch request, retries included. Zero means
	// no bound beyond the caller's context.
	Timeout time.Duration
	// QPS and Burst throttle this client's requests with a token bucket so
	// a hot loop cannot flood the server. QPS <= 0 means unthrottled.
	QPS   float64
	Burst int
	// MaxRetries bounds how often one request is retried after a 429/503
	// with Retry-After or a refused connection. Zero means DefaultMaxRetries;
	// negative means never retry.
	MaxRetries int
	// Transport replaces the HTTP transport built from the TLS fields, e.g.
	// to reuse one from a kubeconfig. The auth header is still added.
	Transport http.RoundTripper
}

// Defaults for Config fields left zero.
const (
	DefaultUserAgent  = "minik8s-client"
	DefaultMaxRetries = 5
)

// baseURL parses Host into a URL with scheme and without a trailing slash.
func (c *Config) baseURL() (*url.URL, error) {
	host := strings.TrimSpace(c.Host)
	if host == "" {
		return nil, errors.New("config: Host is empty")
	}
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("config: Host %q: %w", c.Host, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("config: Host %q: scheme must be http or https", c.Host)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("config: Host %q has no host part", c.Host)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// TLSConfig builds the client TLS configuration from CAData, CertData,
// KeyData and Insecure.
func (c *Config) TLSConfig() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLSServerName,
		InsecureSkipVerify: c.Insecure, //nolint:gosec // opt-in for labs
	}
	if len(c.CAData) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(c.CAData) {
			return nil, errors.New("config: CAData holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if len(c.CertData) > 0 || len(c.KeyData) > 0 {
		cert, err := tls.X509KeyPair(c.CertData, c.KeyData)
		if err != nil {
			return nil, fmt.Errorf("config: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// transport returns Config.Transport or a fresh one with the TLS settings.
func (c *Config) transport() (http.RoundTripper, error) {
	if c.Transport != nil {
		return c.Transport, nil
	}
	tc, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("config: http.DefaultTransport is not an *http.Transport")
	}
	t := base.Clone()
	t.TLSClientConfig = tc
	// Many watches share one server; allow enough idle connections that a
	// component with a dozen informers does not churn TCP handshakes.
	t.MaxIdleConnsPerHost = 32
	return t, nil
}

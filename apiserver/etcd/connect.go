package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TLSFiles names the PEM files used to talk to an external etcd over TLS
// (the apiserver's --etcd-certfile/--etcd-keyfile/--etcd-cafile flags).
type TLSFiles struct {
	CertFile string // client certificate; empty = no client auth
	KeyFile  string
	CAFile   string // CA that signed etcd's serving certificate; empty = system roots
}

// Config loads the files into a *tls.Config. Errors name the flag whose
// file is at fault, since that is what an operator has to fix.
func (f TLSFiles) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CertFile != "" || f.KeyFile != "" {
		if f.CertFile == "" || f.KeyFile == "" {
			return nil, errors.New("etcd: --etcd-certfile and --etcd-keyfile must be given together")
		}
		certPEM, err := os.ReadFile(f.CertFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-certfile: %w", err)
		}
		keyPEM, err := os.ReadFile(f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-keyfile: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("--etcd-certfile %s / --etcd-keyfile %s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-cafile %s: no PEM certificates found", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// probeAttempt bounds one probe read; after each that times out, the TLS
// endpoints are checked for a certificate problem (see tlsProblem).
const probeAttempt = 3 * time.Second

// Connect dials an external etcd cluster. tlsConfig may be nil for plain
// http endpoints. It returns only once a linearizable read succeeded
// (bounded by ctx), so a wrong endpoint fails at startup and not at the
// first request.
//
// The etcd client retries a failed TLS handshake like a refused
// connection, so a wrong CA or a refused client certificate would only
// show as a timeout. Whenever a probe read times out, Connect therefore
// makes a TLS handshake to each endpoint itself and fails at once, with
// the reason, if one is refused for its certificates; an endpoint that is
// merely down is waited for until ctx ends.
func Connect(ctx context.Context, endpoints []string, tlsConfig *tls.Config) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints given")
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsConfig,
		DialTimeout: 10 * time.Second,
		// Keepalives notice a dead member behind an idle watch stream.
		DialKeepAliveTime:    30 * time.Second,
		DialKeepAliveTimeout: 10 * time.Second,
		Logger:               quietLogger(),
		Context:              context.Background(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: connect to %v: %w", endpoints, err)
	}
	lastLog := time.Now()
	for {
		// Any key works: the answer's header proves a quorum is reachable.
		attempt, cancel := context.WithTimeout(ctx, probeAttempt)
		_, err := client.Get(attempt, CompactRevisionKey)
		timedOut := attempt.Err() != nil
		cancel()
		if err == nil {
			return client, nil
		}
		if timedOut && tlsConfig != nil {
			if terr := tlsProblem(ctx, endpoints, tlsConfig); terr != nil {
				_ = client.Close()
				return nil, terr
			}
		}
		if !timedOut || ctx.Err() != nil {
			_ = client.Close()
			return nil, fmt.Errorf("etcd: probe %v: %w", endpoints, err)
		}
		// Waiting for an etcd that is down is right, but not in silence:
		// the API server would look hung.
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			slog.Warn("waiting for etcd", "component", "apiserver", "endpoints", endpoints, "err", err)
		}
	}
}

// tlsProblem handshakes with each https endpoint using cfg and returns the
// first certificate error: etcd's certificate not verifying against the CA
// (or not naming the host), or etcd rejecting our client certificate.
// Endpoints that cannot be reached at all are not its business.
func tlsProblem(ctx context.Context, endpoints []string, cfg *tls.Config) error {
	for _, ep := range endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "https" {
			continue
		}
		c := cfg.Clone()
		c.ServerName = u.Hostname()
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second}, Config: c}
		conn, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			var verr *tls.CertificateVerificationError
			if errors.As(err, &verr) {
				return fmt.Errorf("etcd %s: its certificate does not verify against --etcd-cafile: %w", ep, err)
			}
			if remoteAlert(err) {
				return fmt.Errorf("etcd %s refused the TLS handshake (check --etcd-certfile/--etcd-keyfile): %w", ep, err)
			}
			continue // down, refused, or too slow: the probe keeps waiting
		}
		// In TLS 1.3 the server checks the client certificate after the
		// client's handshake is done, and says so with an alert that
		// arrives on the first read.
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		_, err = conn.Read(make([]byte, 1))
		_ = conn.Close()
		if remoteAlert(err) && len(c.Certificates) == 0 {
			return fmt.Errorf("etcd %s wants a client certificate: set --etcd-certfile and --etcd-keyfile: %w", ep, err)
		}
		if remoteAlert(err) {
			return fmt.Errorf("etcd %s refused our client certificate (--etcd-certfile/--etcd-keyfile; etcd runs with --client-cert-auth and trusts only its --trusted-ca-file): %w", ep, err)
		}
	}
	return nil
}

// remoteAlert reports whether err is a TLS alert the peer sent ("remote
// error: tls: bad certificate"); crypto/tls has no exported type for it.
func remoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
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

// Config loads the files into a *tls.Config.
func (f TLSFiles) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CertFile != "" || f.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd: load client key pair %s/%s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd: read CA %s: %w", f.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd: CA %s: no PEM certificates found", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Connect dials an external etcd cluster. tlsConfig may be nil for plain
// http endpoints. It returns only once a linearizable read succeeded
// (bounded by ctx), so a wrong endpoint fails at startup and not at the
// first request.
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
	// Any key works: the answer's header proves a quorum is reachable.
	if _, err := client.Get(ctx, CompactRevisionKey); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("etcd: probe %v: %w", endpoints, err)
	}
	return client, nil
}

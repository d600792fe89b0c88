package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/minik8s/minik8s/api/scheme"
	"github.com/minik8s/minik8s/client/join"
	"github.com/minik8s/minik8s/client/kubeconfig"
	"github.com/minik8s/minik8s/client/rest"
)

// How the agent waits for an API server it cannot reach yet: retries back
// off from retryMin to retryMax, and the wait is logged at most every
// logEvery. Variables so tests can shorten them.
var (
	retryMin = 500 * time.Millisecond
	retryMax = 5 * time.Second
	logEvery = 10 * time.Second
)

// retryable marks a failure worth retrying: the server is not reachable,
// or not ready, yet.
type retryable struct{ error }

func (r retryable) Unwrap() error { return r.error }

// connect returns the node's kubeconfig path once the API server accepts
// its credentials: it joins with --server/--token first (writing
// <data-dir>/kubelet.kubeconfig), or takes --kubeconfig. A server that is
// down or unreachable is waited for; credentials the server refuses (401)
// end it with an error that says what to do, since asking again cannot
// help, and the node's components would otherwise retry forever.
func (o Options) connect(ctx context.Context, log *slog.Logger) (string, error) {
	var tok join.Token
	server := o.Server
	if o.Kubeconfig == "" {
		if o.Server == "" || o.Token == "" {
			return "", errors.New("give --server and --token (the server's <data-dir>/node-token), or --kubeconfig")
		}
		var err error
		if tok, err = join.Parse(o.Token); err != nil {
			return "", err
		}
	} else {
		kc, err := kubeconfig.Load(o.Kubeconfig, "")
		if err != nil {
			return "", fmt.Errorf("--kubeconfig: %w", err)
		}
		server = kc.Server
	}
	var first, logged time.Time
	wait := retryMin
	for {
		path, err := o.tryConnect(ctx, tok)
		if err == nil {
			if !first.IsZero() {
				log.Info("the API server answers", "server", server, "after", time.Since(first).Round(time.Second))
			}
			return path, nil
		}
		if !errors.As(err, new(retryable)) {
			return "", err
		}
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		if logged.IsZero() || now.Sub(logged) >= logEvery {
			logged = now
			log.Warn("waiting for the API server", "server", server, "for", now.Sub(first).Round(time.Second), "err", err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for the API server %s: %w (last error: %w)", server, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// tryConnect joins (when not given a kubeconfig) and checks the
// credentials once.
func (o Options) tryConnect(ctx context.Context, tok join.Token) (string, error) {
	path := o.Kubeconfig
	if path == "" {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		kc, err := join.Discover(dctx, o.Server, tok)
		cancel()
		if err != nil {
			if unreachable(err) {
				return "", retryable{err}
			}
			return "", err
		}
		path = filepath.Join(o.DataDir, "kubelet.kubeconfig")
		if err := kubeconfig.Write(path, "minik8s", kc); err != nil {
			return "", err
		}
	}
	return path, o.checkCredentials(ctx, path)
}

// unreachable reports whether err is the network failing (refused,
// timed out, cut off, no route, no DNS answer) rather than the server
// answering something wrong. A certificate the agent does not trust is
// not a network failure, although net/http wraps it in a *url.Error (a
// net.Error): waiting would not change it.
func unreachable(err error) bool {
	var (
		ne          net.Error
		verify      *tls.CertificateVerificationError
		unknownCA   x509.UnknownAuthorityError
		wrongHost   x509.HostnameError
		invalidCert x509.CertificateInvalidError
	)
	if errors.As(err, &verify) || errors.As(err, &unknownCA) || errors.As(err, &wrongHost) || errors.As(err, &invalidCert) {
		return false
	}
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// checkCredentials asks the API server for /api with the kubeconfig at
// path. Any answer but 401 (and 5xx or 429, the server not ready) means
// the server took the credentials.
func (o Options) checkCredentials(ctx context.Context, path string) error {
	kc, err := kubeconfig.Load(path, "")
	if err != nil {
		return err
	}
	cfg, err := rest.ConfigFromKubeconfig(kc)
	if err != nil {
		return err
	}
	cfg.UserAgent = "minik8s-agent"
	cfg.Timeout = 10 * time.Second
	cfg.MaxRetries = -1 // connect retries, and logs
	c, err := rest.New(cfg, scheme.Scheme)
	if err != nil {
		return err
	}
	err = c.Get().AbsPath("/api").Do(ctx).Error()
	var se apierrors.APIStatus
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &se):
		if ctx.Err() != nil || !unreachable(err) {
			return err
		}
		return retryable{err}
	case se.Status().Code == http.StatusUnauthorized:
		return o.refused(kc.Server, path)
	case se.Status().Code >= 500 || se.Status().Code == http.StatusTooManyRequests:
		return retryable{err}
	}
	return nil // authenticated; what it may do is not ours to check
}

// refused is the error for credentials the server does not know.
func (o Options) refused(server, path string) error {
	if o.Kubeconfig == "" {
		return fmt.Errorf("the API server %s refused the join token (401 Unauthorized): the token is wrong, or it was deleted on the server. "+
			"Take the current one from the server's <data-dir>/node-token (/var/lib/minik8s/node-token by default), "+
			"or make a new one there with `minik8s token create`, and start the agent again with --token", server)
	}
	return fmt.Errorf("the API server %s refused the credentials of --kubeconfig %s (401 Unauthorized): its token is wrong, or it was deleted on the server. "+
		"Join with --server and the current token from the server's <data-dir>/node-token (/var/lib/minik8s/node-token by default) instead, "+
		"or make a new one there with `minik8s token create`", server, path)
}

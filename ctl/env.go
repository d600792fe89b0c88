package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/api/scheme"
	"github.com/minik8s/minik8s/client/kubeconfig"
	"github.com/minik8s/minik8s/client/rest"
)

// Streams are where a command reads and writes; tests pass buffers.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// env is what every command shares: the global flags, the streams and,
// built on first use, the kubeconfig, the REST client and the discovery
// mapper. One env lives for one invocation.
type env struct {
	streams Streams

	kubeconfigPath string
	context        string
	namespace      string
	requestTimeout time.Duration

	kc     *kubeconfig.Config
	rc     *rest.Client
	mapper *mapper

	// now is the clock for ages and restart stamps; tests may fix it.
	now func() time.Time
}

func newEnv(s Streams) *env {
	return &env{streams: s, now: time.Now}
}

func (e *env) addGlobalFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&e.kubeconfigPath, "kubeconfig", "", "Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then "+kubeconfig.DefaultAdminPath+")")
	f.StringVar(&e.context, "context", "", "The kubeconfig context to use (default: its current-context)")
	f.StringVarP(&e.namespace, "namespace", "n", "", "The namespace for this request (default: the context's namespace, else \"default\")")
	f.DurationVar(&e.requestTimeout, "request-timeout", 0, "How long to wait for a single server request (e.g. 30s); 0 waits as long as it takes. Watches are not bounded by it.")
}

// config loads the kubeconfig once.
func (e *env) config() (*kubeconfig.Config, error) {
	if e.kc != nil {
		return e.kc, nil
	}
	kc, err := kubeconfig.LoadDefault(e.kubeconfigPath, e.context)
	if err != nil {
		return nil, fmt.Errorf("%w\n(start a cluster with `make up`, which writes %s, or pass --kubeconfig)", err, kubeconfig.DefaultAdminPath)
	}
	e.kc = kc
	return kc, nil
}

// client builds the REST client once.
func (e *env) client() (*rest.Client, error) {
	if e.rc != nil {
		return e.rc, nil
	}
	kc, err := e.config()
	if err != nil {
		return nil, err
	}
	cfg, err := rest.ConfigFromKubeconfig(kc)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kc.Path, err)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tlsCfg
	cfg.Transport = &acceptTransport{next: base}
	cfg.UserAgent = "ctl/" + Version
	cfg.Timeout = e.requestTimeout
	// A refused connection is retried once (a restarting server); a user
	// should not wait seconds to learn that no cluster is running.
	cfg.MaxRetries = 1
	rc, err := rest.New(cfg, scheme.Scheme)
	if err != nil {
		return nil, err
	}
	e.rc = rc
	return rc, nil
}

// ns is the namespace a command works in: -n, else the context's, else
// "default".
func (e *env) ns() (string, error) {
	if e.namespace != "" {
		return e.namespace, nil
	}
	kc, err := e.config()
	if err != nil {
		return "", err
	}
	return kc.NamespaceOrDefault(), nil
}

// server is the API server URL for messages ("" if not known yet).
func (e *env) server() string {
	if e.kc == nil {
		return ""
	}
	return e.kc.Server
}

// acceptTransport lets one request ask for another representation (a
// Table) than the JSON client/rest always asks for: the wanted Accept
// header travels in the request's context.
type acceptTransport struct{ next http.RoundTripper }

type acceptKey struct{}

func withAccept(ctx context.Context, accept string) context.Context {
	return context.WithValue(ctx, acceptKey{}, accept)
}

// tableAccept asks for a meta.k8s.io/v1 Table, falling back to JSON.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

func (t *acceptTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if a, ok := r.Context().Value(acceptKey{}).(string); ok && a != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Accept", a)
	}
	return t.next.RoundTrip(r)
}

func (t *acceptTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// errPrinted ends a command with exit code 1 after it already reported
// its errors (per object) on stderr.
var errPrinted = errors.New("errors were reported above")

// exitError ends a command with a given exit code and optional message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.msg
}

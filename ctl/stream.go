package ctl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"golang.org/x/term"
	clientrest "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// Interactive commands (exec, attach, port-forward) upgrade an HTTP
// request to the API server into a multiplexed SPDY/3.1 connection, which
// the API server and the kubelet proxy to the container runtime. The
// protocols are Kubernetes' (remotecommand channel.k8s.io v1-v4,
// portforward.k8s.io); ctl uses client-go's implementations of them.
//
// ctl speaks SPDY directly instead of trying WebSocket first as kubectl
// 1.32 does: minik8s's kubelet hands streams to containerd, whose
// streaming server answers SPDY (and only the older WebSocket protocols),
// and every Kubernetes API server still accepts SPDY, so trying WebSocket
// would only cost a refused round trip.

// restConfig builds client-go's configuration from ctl's kubeconfig: same
// server, trust and credentials as every other ctl request.
func (e *env) restConfig() (*clientrest.Config, error) {
	kc, err := e.config()
	if err != nil {
		return nil, err
	}
	return &clientrest.Config{
		Host:        kc.Server,
		BearerToken: kc.Token,
		UserAgent:   "ctl/" + Version,
		TLSClientConfig: clientrest.TLSClientConfig{
			Insecure:   kc.Insecure,
			ServerName: kc.TLSServerName,
			CAData:     kc.CAData,
			CertData:   kc.ClientCertData,
			KeyData:    kc.ClientKeyData,
		},
	}, nil
}

// podURL is the absolute URL of a pod subresource with query q.
func (e *env) podURL(ns, name, sub string, q url.Values) (*url.URL, error) {
	kc, err := e.config()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(kc.Server + podPath(ns, name, sub))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: server URL %q: %w", kc.Path, kc.Server, err)
	}
	u.RawQuery = q.Encode()
	return u, nil
}

func podPath(ns, name, sub string) string {
	return "/api/v1/namespaces/" + url.PathEscape(ns) + "/pods/" + url.PathEscape(name) + "/" + sub
}

// streamSession is one exec or attach: what to connect and how.
type streamSession struct {
	ns, pod, sub string // sub: "exec" or "attach"
	query        url.Values
	stdin        bool
	tty          bool // a terminal is allocated remotely
	raw          bool // our stdin is a terminal to put in raw mode
}

// stream runs a remotecommand session against pods/{name}/{sub} until the
// remote side ends it or ctx is done. A remote exit code other than 0
// comes back as *exitError with that code.
func (e *env) stream(ctx context.Context, s streamSession) error {
	cfg, err := e.restConfig()
	if err != nil {
		return err
	}
	u, err := e.podURL(s.ns, s.pod, s.sub, s.query)
	if err != nil {
		return err
	}
	ex, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, u)
	if err != nil {
		return fmt.Errorf("%s in pod %s: %w", s.sub, s.pod, err)
	}
	opts := remotecommand.StreamOptions{Stdout: e.streams.Out, Tty: s.tty}
	if !s.tty {
		opts.Stderr = e.streams.ErrOut // a terminal merges stderr into stdout
	}
	if s.stdin {
		opts.Stdin = e.streams.In
	}
	if s.raw {
		f := e.streams.In.(*os.File)
		old, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			return fmt.Errorf("putting the terminal in raw mode: %w", err)
		}
		// Restore on every way out, including an error: a shell left in
		// raw mode is unusable.
		defer func() { _ = term.Restore(int(f.Fd()), old) }()
		sizes := newTerminalSizes(f)
		defer sizes.stop()
		opts.TerminalSizeQueue = sizes
	}
	err = ex.StreamWithContext(ctx, opts)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		// Interrupted (Ctrl-C outside raw mode, SIGTERM): the user asked
		// to stop; the remote process may go on, as with kubectl.
		return nil
	}
	var ee utilexec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return &exitError{code: ee.ExitStatus(), msg: "command terminated with exit code " + strconv.Itoa(ee.ExitStatus())}
	}
	return fmt.Errorf("%s in pod %s: %w", s.sub, s.pod, err)
}

// terminalIn returns stdin as a terminal file, or nil when it is not one
// (a pipe, a file, a test buffer).
func (e *env) terminalIn() *os.File {
	f, ok := e.streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return f
}

// terminalSizes feeds the remote terminal the local one's size: once at
// the start, then on every change (SIGWINCH where there is one).
type terminalSizes struct {
	ch   chan remotecommand.TerminalSize
	done chan struct{}
}

func newTerminalSizes(f *os.File) *terminalSizes {
	t := &terminalSizes{ch: make(chan remotecommand.TerminalSize, 1), done: make(chan struct{})}
	send := func() {
		w, h, err := term.GetSize(int(f.Fd()))
		if err != nil || w <= 0 || h <= 0 {
			return
		}
		select {
		case t.ch <- remotecommand.TerminalSize{Width: uint16(w), Height: uint16(h)}:
		case <-t.done:
		}
	}
	send()
	go watchResize(t.done, send)
	return t
}

// Next implements remotecommand.TerminalSizeQueue; nil ends the queue.
func (t *terminalSizes) Next() *remotecommand.TerminalSize {
	select {
	case s := <-t.ch:
		return &s
	case <-t.done:
		return nil
	}
}

func (t *terminalSizes) stop() { close(t.done) }

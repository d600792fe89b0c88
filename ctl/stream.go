package ctl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"golang.org/x/term"

	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/stream"
)

// Interactive commands (exec, attach, port-forward) upgrade an HTTP
// request to the API server into a multiplexed SPDY/3.1 connection, which
// the API server and the kubelet proxy to the container runtime. The
// protocols are Kubernetes' (remotecommand channel.k8s.io v1-v4,
// portforward.k8s.io); ctl speaks them with client/stream, minik8s's own
// client over k8s.io/streaming's SPDY connection.
//
// ctl speaks SPDY directly instead of trying WebSocket first as kubectl
// 1.32 does: minik8s's kubelet hands streams to containerd, whose
// streaming server answers SPDY (and only the older WebSocket protocols),
// and every Kubernetes API server still accepts SPDY, so trying WebSocket
// would only cost a refused round trip.

// streamDialer opens upgraded connections with ctl's kubeconfig: same
// server, trust and credentials as every other ctl request.
func (e *env) streamDialer() (*stream.Dialer, error) {
	kc, err := e.config()
	if err != nil {
		return nil, err
	}
	cfg, err := rest.ConfigFromKubeconfig(kc)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "ctl/" + Version
	d, err := stream.NewDialer(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kc.Path, err)
	}
	return d, nil
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
	d, err := e.streamDialer()
	if err != nil {
		return err
	}
	u, err := e.podURL(s.ns, s.pod, s.sub, s.query)
	if err != nil {
		return err
	}
	opts := stream.Options{Stdout: e.streams.Out, Tty: s.tty}
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
		opts.Resize = sizes.ch
	}
	err = d.RemoteCommand(ctx, u, opts)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		// Interrupted (Ctrl-C outside raw mode, SIGTERM): the user asked
		// to stop; the remote process may go on, as with kubectl.
		return nil
	}
	var ee *stream.ExitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.Code, msg: "command terminated with exit code " + strconv.Itoa(ee.Code)}
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
	ch   chan stream.TerminalSize
	done chan struct{}
}

func newTerminalSizes(f *os.File) *terminalSizes {
	t := &terminalSizes{ch: make(chan stream.TerminalSize, 1), done: make(chan struct{})}
	send := func() {
		w, h, err := term.GetSize(int(f.Fd()))
		if err != nil || w <= 0 || h <= 0 {
			return
		}
		select {
		case t.ch <- stream.TerminalSize{Width: uint16(w), Height: uint16(h)}:
		case <-t.done:
		}
	}
	send()
	go watchResize(t.done, send)
	return t
}

func (t *terminalSizes) stop() { close(t.done) }

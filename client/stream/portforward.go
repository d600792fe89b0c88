package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/streaming/pkg/httpstream"
)

// PortForwardProtocol is the one port-forward protocol: on one SPDY
// connection, each forwarded TCP connection is a pair of streams, "error"
// and "data", with the same requestID and the pod's port in their
// headers.
const PortForwardProtocol = "portforward.k8s.io"

// ErrLostConnection ends a port forwarding whose connection to the pod
// went away (or reported an error forwarding a connection).
var ErrLostConnection = errors.New("lost connection to pod")

// Port is one forwarded port: Local 0 means any free local port.
type Port struct {
	Local, Remote int
}

// PortForwardOptions says where to listen and where to report.
type PortForwardOptions struct {
	// Addresses to listen on: IP addresses, or "localhost" for 127.0.0.1
	// and ::1 (either is enough). Empty means "localhost".
	Addresses []string
	Ports     []Port
	// Out gets "Forwarding from ADDR -> PORT" once listening and
	// "Handling connection for PORT" per connection; ErrOut gets errors
	// about single connections. Either may be nil.
	Out, ErrOut io.Writer
}

type listenAddr struct {
	ip       string
	network  string
	optional bool // from "localhost": another address may do
}

func parseAddresses(addrs []string) ([]listenAddr, error) {
	if len(addrs) == 0 {
		addrs = []string{"localhost"}
	}
	var out []listenAddr
	seen := map[string]bool{}
	add := func(a listenAddr) {
		if !seen[a.ip] {
			seen[a.ip] = true
			out = append(out, a)
		}
	}
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "localhost" {
			add(listenAddr{"127.0.0.1", "tcp4", true})
			add(listenAddr{"::1", "tcp6", true})
			continue
		}
		ip := net.ParseIP(a)
		if ip == nil {
			return nil, fmt.Errorf("%s is not a valid IP", a)
		}
		network := "tcp6"
		if ip.To4() != nil {
			network = "tcp4"
		}
		add(listenAddr{ip.String(), network, false})
	}
	return out, nil
}

// syncWriter serializes writes from the connections' goroutines.
type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s syncWriter) printf(format string, args ...any) {
	if s.w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}

// PortForward connects to u (a pods/{name}/portforward URL), listens on
// the local ports and forwards each connection to the pod until ctx is
// done (nil) or the connection to the pod is lost (ErrLostConnection).
func (d *Dialer) PortForward(ctx context.Context, u *url.URL, o PortForwardOptions) error {
	addrs, err := parseAddresses(o.Addresses)
	if err != nil {
		return err
	}
	conn, protocol, err := d.Dial(ctx, u, PortForwardProtocol)
	if err != nil {
		return fmt.Errorf("error upgrading connection: %w", err)
	}
	defer conn.Close()
	if protocol != PortForwardProtocol {
		return fmt.Errorf("unable to negotiate protocol: ctl speaks %q, the server chose %q", PortForwardProtocol, protocol)
	}
	var mu sync.Mutex
	f := &forwarder{conn: conn, out: syncWriter{&mu, o.Out}, errOut: syncWriter{&mu, o.ErrOut}}

	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for _, p := range o.Ports {
		ls, err := listen(addrs, p)
		if err != nil {
			f.errOut.printf("Unable to listen on port %d: %v\n", p.Local, err)
			continue
		}
		for _, l := range ls {
			local := l.Addr().(*net.TCPAddr)
			f.out.printf("Forwarding from %s -> %d\n", net.JoinHostPort(local.IP.String(), strconv.Itoa(local.Port)), p.Remote)
			go f.serve(l, Port{Local: local.Port, Remote: p.Remote})
		}
		listeners = append(listeners, ls...)
	}
	if len(listeners) == 0 {
		return errors.New("unable to listen on any of the requested ports")
	}
	select {
	case <-ctx.Done():
		return nil
	case <-conn.CloseChan():
		if ctx.Err() != nil {
			return nil
		}
		return ErrLostConnection
	}
}

// listen opens p.Local on every address; with Local 0 the first listener
// picks the port and the others take the same number. An address given
// explicitly must work; of localhost's two, one is enough.
func listen(addrs []listenAddr, p Port) ([]net.Listener, error) {
	var ls []net.Listener
	var errs []error
	local := p.Local
	for _, a := range addrs {
		l, err := net.Listen(a.network, net.JoinHostPort(a.ip, strconv.Itoa(local)))
		if err != nil {
			if !a.optional {
				for _, l := range ls {
					_ = l.Close()
				}
				return nil, err
			}
			errs = append(errs, err)
			continue
		}
		local = l.Addr().(*net.TCPAddr).Port
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		return nil, errors.Join(errs...)
	}
	return ls, nil
}

type forwarder struct {
	conn        httpstream.Connection
	out, errOut syncWriter
	requestID   atomic.Int64
}

// serve accepts connections on l until it is closed.
func (f *forwarder) serve(l net.Listener, p Port) {
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				f.errOut.printf("error accepting connection on port %d: %v\n", p.Local, err)
			}
			return
		}
		go f.handle(c, p)
	}
}

// handle forwards one local connection over a new pair of streams.
func (f *forwarder) handle(c net.Conn, p Port) {
	defer c.Close()
	f.out.printf("Handling connection for %d\n", p.Local)

	h := http.Header{}
	h.Set("streamType", StreamTypeError)
	h.Set("port", strconv.Itoa(p.Remote))
	h.Set("requestID", strconv.FormatInt(f.requestID.Add(1)-1, 10))
	errStream, err := f.conn.CreateStream(h)
	if err != nil {
		f.errOut.printf("error creating error stream for port %d -> %d: %v\n", p.Local, p.Remote, err)
		return
	}
	// Nothing is written to the error stream; the pod side answers on it.
	_ = errStream.Close()
	result := make(chan error, 1)
	go func() {
		msg, err := io.ReadAll(errStream)
		switch {
		case err != nil:
			result <- fmt.Errorf("error reading from error stream for port %d -> %d: %w", p.Local, p.Remote, err)
		case len(msg) > 0:
			result <- fmt.Errorf("an error occurred forwarding %d -> %d: %s", p.Local, p.Remote, msg)
		default:
			result <- nil
		}
	}()

	h.Set("streamType", StreamTypeData)
	data, err := f.conn.CreateStream(h)
	if err != nil {
		f.errOut.printf("error creating forwarding stream for port %d -> %d: %v\n", p.Local, p.Remote, err)
		f.conn.RemoveStreams(errStream)
		return
	}
	defer f.conn.RemoveStreams(errStream, data)

	remoteDone := make(chan struct{})
	localFailed := make(chan struct{})
	go func() {
		// pod -> local; ends when the pod side closes its half
		if _, err := io.Copy(c, data); err != nil && !errors.Is(err, net.ErrClosed) {
			f.errOut.printf("error copying from remote stream to local connection: %v\n", err)
		}
		close(remoteDone)
	}()
	go func() {
		// local -> pod; at the local end of file, half-close the stream
		_, err := io.Copy(data, c)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			f.errOut.printf("error copying from local connection to remote stream: %v\n", err)
			_ = data.Reset()
			close(localFailed)
			return
		}
		_ = data.Close()
	}()
	select {
	case <-remoteDone:
	case <-localFailed:
	}
	// The pod side always closes the error stream, with a message when
	// forwarding failed; as kubectl does, a failure ends the forwarding.
	if err := <-result; err != nil {
		f.errOut.printf("error: %v\n", err)
		_ = f.conn.Close()
	}
}

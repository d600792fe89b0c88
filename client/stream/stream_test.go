package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// serveSession is a remotecommand server speaking only protocol: it takes
// want streams, echoes stdin to stdout (upper-cased), reports the resize
// messages on stdout, and writes errMsg on the error stream.
func serveSession(t *testing.T, protocol string, want int, errMsg string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"kind":"Status","message":"no token"}`, http.StatusUnauthorized)
			return
		}
		if _, err := httpstream.Handshake(r, w, []string{protocol}); err != nil {
			return
		}
		ch := make(chan httpstream.Stream, 8)
		conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, reply <-chan struct{}) error {
			go func() { <-reply; ch <- s }()
			return nil
		})
		if conn == nil {
			return
		}
		defer conn.Close()
		streams := map[string]httpstream.Stream{}
		for len(streams) < want {
			s := <-ch
			streams[s.Headers().Get("streamType")] = s
		}
		out := streams[StreamTypeStdout]
		if rs, ok := streams[StreamTypeResize]; ok {
			var sz TerminalSize
			if err := json.NewDecoder(rs).Decode(&sz); err == nil {
				fmt.Fprintf(out, "size %dx%d\n", sz.Width, sz.Height)
			}
		}
		if in, ok := streams[StreamTypeStdin]; ok {
			b, _ := io.ReadAll(in)
			_, _ = out.Write(bytes.ToUpper(b))
		}
		out.Close()
		if e, ok := streams[StreamTypeStderr]; ok {
			e.Close()
		}
		_, _ = io.WriteString(streams[StreamTypeError], errMsg)
		streams[StreamTypeError].Close()
		select {
		case <-conn.CloseChan():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestRemoteCommandProtocols(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := &Dialer{BearerToken: "tok"}

	// v4: exit code from the Status
	status := `{"kind":"Status","status":"Failure","reason":"NonZeroExitCode","message":"command terminated with non-zero exit code: exit status 3","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}`
	srv := serveSession(t, RemoteCommandV4, 4, status)
	var out, errOut bytes.Buffer
	err := d.RemoteCommand(ctx, mustURL(t, srv.URL), Options{Stdin: strings.NewReader("hi\n"), Stdout: &out, Stderr: &errOut})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || out.String() != "HI\n" {
		t.Errorf("v4: err %v, stdout %q", err, out.String())
	}

	// v4 success
	srv = serveSession(t, RemoteCommandV4, 2, `{"kind":"Status","status":"Success"}`)
	out.Reset()
	if err := d.RemoteCommand(ctx, mustURL(t, srv.URL), Options{Stdout: &out}); err != nil {
		t.Errorf("v4 success: %v", err)
	}

	// v3: a terminal with a resize stream; plain-text error
	srv = serveSession(t, RemoteCommandV3, 4, "boom")
	out.Reset()
	sizes := make(chan TerminalSize, 1)
	sizes <- TerminalSize{Width: 80, Height: 24}
	err = d.RemoteCommand(ctx, mustURL(t, srv.URL), Options{Stdin: strings.NewReader("x"), Stdout: &out, Stderr: &errOut, Tty: true, Resize: sizes})
	if err == nil || !strings.Contains(err.Error(), "boom") || out.String() != "size 80x24\nX" {
		t.Errorf("v3 tty: err %v, stdout %q", err, out.String())
	}

	// v2: no resize stream even with a terminal
	srv = serveSession(t, RemoteCommandV2, 3, "")
	out.Reset()
	if err := d.RemoteCommand(ctx, mustURL(t, srv.URL), Options{Stdin: strings.NewReader("y"), Stdout: &out, Tty: true, Resize: sizes}); err != nil || out.String() != "Y" {
		t.Errorf("v2: err %v, stdout %q", err, out.String())
	}

	// a refused upgrade carries the server's message
	err = (&Dialer{}).RemoteCommand(ctx, mustURL(t, srv.URL), Options{Stdout: &out})
	var ue *UpgradeError
	if !errors.As(err, &ue) || ue.StatusCode != http.StatusUnauthorized || ue.Message != "no token" {
		t.Errorf("refused upgrade: %v", err)
	}
}

func TestPortForward(t *testing.T) {
	// the "pod": an echo server
	echo, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := httpstream.Handshake(r, w, []string{PortForwardProtocol}); err != nil {
			return
		}
		// The two streams of a connection may arrive in either order (each
		// is handed over by its own goroutine), so pair them up by
		// requestID without blocking the loop.
		errStreams, dataStreams := map[string]httpstream.Stream{}, map[string]httpstream.Stream{}
		ch := make(chan httpstream.Stream, 8)
		conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, reply <-chan struct{}) error {
			go func() { <-reply; ch <- s }()
			return nil
		})
		if conn == nil {
			return
		}
		defer conn.Close()
		for {
			select {
			case s := <-ch:
				id := s.Headers().Get("requestID")
				if s.Headers().Get("streamType") == StreamTypeError {
					errStreams[id] = s
				} else {
					dataStreams[id] = s
				}
				es, s := errStreams[id], dataStreams[id]
				if es == nil || s == nil {
					continue
				}
				delete(errStreams, id)
				delete(dataStreams, id)
				go func() {
					defer es.Close()
					if s.Headers().Get("port") != "7" {
						fmt.Fprintf(es, "port %s refused", s.Headers().Get("port"))
						_ = s.Reset()
						return
					}
					c, err := net.Dial("tcp4", echo.Addr().String())
					if err != nil {
						t.Error(err)
						return
					}
					defer c.Close()
					go func() { _, _ = io.Copy(c, s); c.(*net.TCPConn).CloseWrite() }()
					_, _ = io.Copy(s, c)
					s.Close()
				}()
			case <-conn.CloseChan():
				return
			}
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	var errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- (&Dialer{}).PortForward(ctx, mustURL(t, srv.URL), PortForwardOptions{
			Addresses: []string{"127.0.0.1"}, Ports: []Port{{Local: 0, Remote: 7}, {Local: 0, Remote: 8}}, Out: pw, ErrOut: &errOut})
		pw.Close()
	}()
	var locals []string
	buf := make([]byte, 4096)
	for len(locals) < 2 {
		n, err := pr.Read(buf)
		if err != nil {
			t.Fatalf("no Forwarding lines: %v (%s)", err, errOut.String())
		}
		for _, line := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
			var addr string
			var remote int
			if _, err := fmt.Sscanf(line, "Forwarding from %s -> %d", &addr, &remote); err != nil {
				t.Fatalf("unexpected line %q", line)
			}
			locals = append(locals, addr)
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", locals[0])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "hello %d", i)
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		c.Close()
		if string(b) != fmt.Sprintf("hello %d", i) {
			t.Errorf("echo through the forwarded port: %q", b)
		}
	}
	// a refused pod port ends the forwarding
	c, err := net.Dial("tcp", locals[1])
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(c)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrLostConnection) || !strings.Contains(errOut.String(), "port 8 refused") {
			t.Errorf("after a refused port: %v, stderr %q", err, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("port-forward goes on after a refused pod port")
	}
}

package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The remotecommand protocols ctl speaks, most preferred first. v2 has
// stdin, stdout, stderr and an error stream carrying a plain message; v3
// adds the resize stream; v4 turns the error stream's message into a
// metav1.Status, whose ExitCode cause gives the remote exit code.
const (
	RemoteCommandV4 = "v4.channel.k8s.io"
	RemoteCommandV3 = "v3.channel.k8s.io"
	RemoteCommandV2 = "v2.channel.k8s.io"
)

// RemoteCommandProtocols are offered in this order.
var RemoteCommandProtocols = []string{RemoteCommandV4, RemoteCommandV3, RemoteCommandV2}

// Stream types (the streamType header of each stream).
const (
	StreamTypeError  = "error"
	StreamTypeStdin  = "stdin"
	StreamTypeStdout = "stdout"
	StreamTypeStderr = "stderr"
	StreamTypeResize = "resize"
	StreamTypeData   = "data"
)

// TerminalSize is one resize message, as it goes on the wire.
type TerminalSize struct {
	Width  uint16 `json:"Width"`
	Height uint16 `json:"Height"`
}

// Options says which channels a remote command session has. They must
// match the stdin/stdout/stderr/tty query parameters of the request.
type Options struct {
	// Stdin, when set, is copied to the remote stdin; at its end the
	// remote side sees end of file.
	Stdin  io.Reader
	Stdout io.Writer
	// Stderr is ignored with Tty: a terminal merges it into stdout.
	Stderr io.Writer
	Tty    bool
	// Resize, with Tty, carries the terminal sizes to send (the first
	// one as soon as the session starts). It may be nil.
	Resize <-chan TerminalSize
}

// ExitError is a remote command that ended with a non-zero exit code.
type ExitError struct {
	Code    int
	Message string // the server's message
}

func (e *ExitError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return "command terminated with exit code " + strconv.Itoa(e.Code)
}

// RemoteCommand runs an exec or attach session on u (a pods/{name}/exec
// or /attach URL with its query) until the remote side ends it or ctx is
// done. A non-zero remote exit code is an *ExitError; another failure the
// server reports is an error with its message.
func (d *Dialer) RemoteCommand(ctx context.Context, u *url.URL, o Options) error {
	conn, protocol, err := d.Dial(ctx, u, RemoteCommandProtocols...)
	if err != nil {
		return err
	}
	defer conn.Close()
	switch protocol {
	case RemoteCommandV4, RemoteCommandV3, RemoteCommandV2:
	default:
		return fmt.Errorf("unable to negotiate a remote command protocol: the server chose %q, ctl speaks %s", protocol, strings.Join(RemoteCommandProtocols, ", "))
	}
	// Cancelling closes the connection, which ends every copy below.
	stopCancel := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stopCancel()

	create := func(typ string) (io.ReadWriteCloser, error) {
		h := http.Header{}
		h.Set("streamType", typ)
		s, err := conn.CreateStream(h)
		if err != nil {
			return nil, fmt.Errorf("creating the %s stream: %w", typ, err)
		}
		return s, nil
	}
	// The error stream first, then the others; the server waits for as
	// many as the query announced.
	errStream, err := create(StreamTypeError)
	if err != nil {
		return err
	}
	var stdin, stdout, stderr, resize io.ReadWriteCloser
	if o.Stdin != nil {
		if stdin, err = create(StreamTypeStdin); err != nil {
			return err
		}
	}
	if o.Stdout != nil {
		if stdout, err = create(StreamTypeStdout); err != nil {
			return err
		}
	}
	if o.Stderr != nil && !o.Tty {
		if stderr, err = create(StreamTypeStderr); err != nil {
			return err
		}
	}
	if o.Tty && protocol != RemoteCommandV2 {
		if resize, err = create(StreamTypeResize); err != nil {
			return err
		}
	}

	done := make(chan struct{})
	defer close(done)

	result := make(chan error, 1)
	go func() {
		msg, err := io.ReadAll(errStream)
		if err != nil && ctx.Err() == nil {
			result <- fmt.Errorf("reading the error stream: %w", err)
			return
		}
		result <- decodeError(protocol, msg)
	}()

	if stdin != nil {
		// Not waited for: a read from a terminal may block until the
		// next key press, long after the session is over.
		go func() {
			_, _ = io.Copy(stdin, o.Stdin)
			_ = stdin.Close() // half-close: the remote stdin ends
		}()
	}
	if resize != nil && o.Resize != nil {
		go func() {
			enc := json.NewEncoder(resize)
			for {
				select {
				case sz, ok := <-o.Resize:
					if !ok {
						return
					}
					if enc.Encode(sz) != nil {
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	var wg sync.WaitGroup
	copyOut := func(w io.Writer, r io.Reader) {
		wg.Go(func() { _, _ = io.Copy(w, r) })
	}
	if stdout != nil {
		copyOut(o.Stdout, stdout)
	}
	if stderr != nil {
		copyOut(o.Stderr, stderr)
	}
	wg.Wait()
	// The outputs end when the process does; its status follows on the
	// error stream.
	err = <-result
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// decodeError reads what the server wrote on the error stream.
func decodeError(protocol string, msg []byte) error {
	msg = bytes.TrimSpace(msg)
	if len(msg) == 0 {
		return nil
	}
	if protocol != RemoteCommandV4 {
		return fmt.Errorf("error executing remote command: %s", msg)
	}
	var st metav1.Status
	if err := json.Unmarshal(msg, &st); err != nil {
		return fmt.Errorf("error stream protocol error: %v in %q", err, msg)
	}
	if st.Status == metav1.StatusSuccess {
		return nil
	}
	if st.Reason == "NonZeroExitCode" && st.Details != nil {
		for _, c := range st.Details.Causes {
			if c.Type != "ExitCode" {
				continue
			}
			code, err := strconv.Atoi(strings.TrimSpace(c.Message))
			if err != nil {
				return fmt.Errorf("error stream: exit code %q is not a number", c.Message)
			}
			return &ExitError{Code: code, Message: st.Message}
		}
	}
	if st.Message == "" {
		return errors.New("the remote command failed without a message")
	}
	return errors.New(st.Message)
}

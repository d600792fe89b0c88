package ctl

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// The fake kubelet's streaming side: the server half of remotecommand
// (channel.k8s.io v4 over SPDY) and of portforward.k8s.io, as a
// container runtime's streaming server speaks them, with fake commands and
// a port map instead of containers. ctl's client side is client/stream's, so
// these tests check that ctl drives those protocols correctly through the
// real API server's proxy.

// fakeProcess runs a fake command: cmd reads stdin (nil when the client
// sent none) and writes stdout/stderr; it returns the exit code.
type fakeProcess func(stdin io.Reader, stdout, stderr io.Writer) int

// fakeCommand interprets the few commands the tests use; sizes carries
// the terminal sizes the client sends (tty only).
func fakeCommand(pod, container string, cmd []string, tty bool, sizes <-chan string) fakeProcess {
	return func(stdin io.Reader, stdout, stderr io.Writer) int {
		switch cmd[0] {
		case "sizes": // report two terminal sizes, then exit 5
			for i := 0; i < 2; i++ {
				select {
				case sz := <-sizes:
					fmt.Fprintf(stdout, "size %s\r\n", sz)
				case <-time.After(20 * time.Second):
					fmt.Fprintf(stdout, "no size\r\n")
					return 1
				}
			}
			return 5
		case "cat":
			if stdin != nil {
				_, _ = io.Copy(stdout, stdin)
			}
			return 0
		case "read": // like sh -c 'read x; echo got $x'
			line := ""
			if stdin != nil {
				line, _ = bufio.NewReader(stdin).ReadString('\n')
			}
			fmt.Fprintf(stdout, "got %s\n", strings.TrimSuffix(line, "\n"))
			return 0
		case "tty":
			fmt.Fprintf(stdout, "tty=%v stderr-stream=%v\n", tty, stderr != nil)
			return 0
		case "warn":
			fmt.Fprintln(stdout, "to stdout")
			fmt.Fprintln(stderr, "to stderr")
			return 2
		case "false":
			return 1
		case "exit3":
			fmt.Fprintf(stdout, "ran %q in %s/%s\n", cmd, pod, container)
			return 3
		}
		fmt.Fprintf(stdout, "ran %q in %s/%s\n", cmd, pod, container)
		return 0
	}
}

// fakeAttach is a container's main process seen through attach: it says
// who it is, echoes each stdin line as "heard LINE", and ends (the
// container exits) when stdin ends; without stdin it prints three lines
// and exits.
func fakeAttach(pod, container string) fakeProcess {
	return func(stdin io.Reader, stdout, _ io.Writer) int {
		fmt.Fprintf(stdout, "attached to %s/%s\n", pod, container)
		if stdin == nil {
			for i := 1; i <= 3; i++ {
				fmt.Fprintf(stdout, "line %d\n", i)
			}
			return 0
		}
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			fmt.Fprintf(stdout, "heard %s\n", sc.Text())
		}
		return 0
	}
}

// acceptStreams upgrades the request to SPDY with one of protocols and
// returns the first n streams the client opens, keyed by streamType (and
// the connection). It answers and returns nil on failure.
func acceptStreams(w http.ResponseWriter, r *http.Request, protocols []string, n int) (httpstream.Connection, map[string]httpstream.Stream) {
	if _, err := httpstream.Handshake(r, w, protocols); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return nil, nil
	}
	type accepted struct {
		s     httpstream.Stream
		reply <-chan struct{}
	}
	ch := make(chan accepted, 8)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, reply <-chan struct{}) error {
		ch <- accepted{s, reply}
		return nil
	})
	if conn == nil {
		return nil, nil
	}
	streams := map[string]httpstream.Stream{}
	timeout := time.After(10 * time.Second)
	for len(streams) < n {
		select {
		case a := <-ch:
			<-a.reply
			streams[a.s.Headers().Get("streamType")] = a.s
		case <-timeout:
			conn.Close()
			return nil, nil
		}
	}
	return conn, streams
}

// serveRemoteCommand serves one exec or attach session (v4): the streams
// the query asks for, the process, then its exit status on the error
// stream.
func serveRemoteCommand(w http.ResponseWriter, r *http.Request, run func(tty bool, sizes <-chan string) fakeProcess) {
	q := r.URL.Query()
	flag := func(k string) bool { return q.Get(k) == "true" || q.Get(k) == "1" }
	tty := flag("tty")
	want := 1 // error
	for _, k := range []string{"stdin", "stdout"} {
		if flag(k) {
			want++
		}
	}
	if flag("stderr") && !tty {
		want++
	}
	if tty {
		want++ // resize
	}
	conn, streams := acceptStreams(w, r, []string{"v4.channel.k8s.io"}, want)
	if conn == nil {
		return
	}
	defer conn.Close()
	var stdin io.Reader
	if s, ok := streams["stdin"]; ok {
		stdin = s
	}
	var stdout, stderr io.Writer = io.Discard, nil
	if s, ok := streams["stdout"]; ok {
		stdout = s
	}
	if s, ok := streams["stderr"]; ok {
		stderr = s
	}
	if stderr == nil && !tty {
		stderr = io.Discard
	}
	sizes := make(chan string, 8)
	if s, ok := streams["resize"]; ok {
		go func() {
			dec := json.NewDecoder(s)
			for {
				var sz struct{ Width, Height uint16 }
				if dec.Decode(&sz) != nil {
					return
				}
				sizes <- fmt.Sprintf("%dx%d", sz.Width, sz.Height)
			}
		}()
	}
	code := run(tty, sizes)(stdin, stdout, stderr)
	for _, k := range []string{"stdout", "stderr"} {
		if s, ok := streams[k]; ok {
			s.Close()
		}
	}
	errStream := streams["error"]
	if code != 0 {
		st := metav1.Status{Status: metav1.StatusFailure, Reason: "NonZeroExitCode",
			Message: fmt.Sprintf("command terminated with non-zero exit code: exit status %d", code),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: strconv.Itoa(code)}}}}
		_ = json.NewEncoder(errStream).Encode(st)
	}
	errStream.Close()
	// Let the client read everything before the connection goes.
	select {
	case <-conn.CloseChan():
	case <-time.After(5 * time.Second):
	}
}

// servePortForward serves portforward.k8s.io: each pair of error and data
// streams (same requestID) is one connection to ports[port]; a port not
// in the map answers on the error stream as a runtime does for a refused
// connection.
func servePortForward(w http.ResponseWriter, r *http.Request, ports map[string]string) {
	if _, err := httpstream.Handshake(r, w, []string{"portforward.k8s.io"}); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	var mu sync.Mutex
	errStreams := map[string]chan httpstream.Stream{}
	errFor := func(id string) chan httpstream.Stream {
		mu.Lock()
		defer mu.Unlock()
		if errStreams[id] == nil {
			errStreams[id] = make(chan httpstream.Stream, 1)
		}
		return errStreams[id]
	}
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, reply <-chan struct{}) error {
		go func() {
			<-reply
			id := s.Headers().Get("requestID")
			if s.Headers().Get("streamType") == "error" {
				errFor(id) <- s
				return
			}
			port := s.Headers().Get("port")
			var es httpstream.Stream
			select {
			case es = <-errFor(id):
			case <-time.After(5 * time.Second):
				_ = s.Reset()
				return
			}
			defer es.Close()
			target, ok := ports[port]
			if !ok {
				fmt.Fprintf(es, "an error occurred forwarding %s -> %s: dial tcp 127.0.0.1:%s: connect: connection refused", port, port, port)
				_ = s.Reset()
				return
			}
			c, err := net.Dial("tcp", target)
			if err != nil {
				fmt.Fprintf(es, "an error occurred forwarding %s: %v", port, err)
				_ = s.Reset()
				return
			}
			defer c.Close()
			done := make(chan struct{})
			go func() {
				_, _ = io.Copy(c, s) // client -> pod port
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				close(done)
			}()
			_, _ = io.Copy(s, c) // pod port -> client
			s.Close()
			<-done
		}()
		return nil
	})
	if conn == nil {
		return
	}
	<-conn.CloseChan()
}

//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/ctl"
	"github.com/minik8s/minik8s/hack/images/imagebuild"
)

// streamBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type streamBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *streamBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *streamBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newProxiedKubeletEnv is newKubeletEnv with a kubelet whose Node reports
// the port its HTTPS server listens on and which trusts the API server's
// client certificate, so that pods/{name}/exec|attach|portforward reach it
// through the API server's proxy, as they do in a cluster.
func newProxiedKubeletEnv(t *testing.T, node, podCIDR string) *kubeletEnv {
	t.Helper()
	return newKubeletEnvFrom(&kubeletEnv{t: t, node: node, podCIDR: podCIDR, proxied: true})
}

// ctlRun runs ctl in-process against the env's API server.
func (e *kubeletEnv) ctlRun(ctx context.Context, stdin io.Reader, out, errOut io.Writer, args ...string) int {
	full := append([]string{"--kubeconfig", e.api.Kubeconfig, "-n", "default"}, args...)
	return ctl.Main(ctx, full, ctl.Streams{In: stdin, Out: out, ErrOut: errOut})
}

// ctlBackground starts a long-running ctl command (port-forward, attach)
// and returns its output buffers and a stop function that interrupts it
// (as Ctrl-C does) and returns its exit code.
func (e *kubeletEnv) ctlBackground(stdin io.Reader, args ...string) (*streamBuffer, *streamBuffer, func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut streamBuffer
	done := make(chan int, 1)
	go func() { done <- e.ctlRun(ctx, stdin, &out, &errOut, args...) }()
	stop := func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			e.t.Errorf("ctl %v did not stop within 30s of being interrupted", args)
			return -1
		}
	}
	e.t.Cleanup(func() { cancel() })
	return &out, &errOut, stop
}

// waitOutput polls buf until re matches (1 minute at most).
func waitOutput(t *testing.T, what string, buf, errBuf *streamBuffer, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(buf.String()); m != nil {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: no %q in output within a minute\nstdout:\n%s\nstderr:\n%s", what, re, buf.String(), errBuf.String())
	return nil
}

func httpGetBody(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

var forwardingRe = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)`)

// TestKubeletStreamsThroughAPIServer: ctl exec -i, attach and
// port-forward on real containerd, through the API server's pod proxy and
// the kubelet's streaming endpoints; and, when it is installed, the same
// with a stock kubectl (which tries WebSocket first and must fall back to
// SPDY).
func TestKubeletStreamsThroughAPIServer(t *testing.T) {
	e := newProxiedKubeletEnv(t, "e2e-node-st", "10.233.29.0/24")
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shell"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "sh", Image: imagebuild.BusyboxImage, Command: []string{"sleep", "3600"},
		}}},
	})
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: imagebuild.WebV1Image,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	})
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "talker"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "talk", Image: imagebuild.BusyboxImage,
			Command: []string{"sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"},
		}}},
	})
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "listener"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "listen", Image: imagebuild.BusyboxImage, Stdin: true,
			Command: []string{"sh", "-c", "while read l; do echo heard $l; done"},
		}}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := e.cs.Services.Namespace("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"shell", "web", "talker", "listener"} {
		e.waitPod(p, "Running", running)
	}

	t.Run("exec -i with piped stdin", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := e.ctlRun(ctx, strings.NewReader("hello\nworld\n"), &out, &errOut, "exec", "-i", "shell", "--", "cat")
		if code != 0 || out.String() != "hello\nworld\n" {
			t.Errorf("exec -i cat: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
		}
		out.Reset()
		errOut.Reset()
		code = e.ctlRun(ctx, strings.NewReader("abc\n"), &out, &errOut, "exec", "-i", "shell", "--", "sh", "-c", "read x; echo got $x")
		if code != 0 || out.String() != "got abc\n" {
			t.Errorf("exec -i read: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
		}
	})

	t.Run("exit code and stderr", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := e.ctlRun(ctx, strings.NewReader(""), &out, &errOut, "exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
		if code != 7 || out.String() != "out\n" || !strings.HasPrefix(errOut.String(), "err\n") ||
			!strings.Contains(errOut.String(), "command terminated with exit code 7") {
			t.Errorf("exit 7: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
		}
		// -t with a pipe for stdin: no terminal, said so, still runs
		out.Reset()
		errOut.Reset()
		code = e.ctlRun(ctx, strings.NewReader("x\n"), &out, &errOut, "exec", "-it", "shell", "--", "sh", "-c", "read x; echo got $x; exit 4")
		if code != 4 || out.String() != "got x\n" || !strings.Contains(errOut.String(), "Unable to use a TTY") {
			t.Errorf("exec -it with a pipe: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
		}
	})

	t.Run("port-forward to a pod and to a service", func(t *testing.T) {
		out, errOut, stop := e.ctlBackground(strings.NewReader(""), "port-forward", "pod/web", ":8080")
		m := waitOutput(t, "port-forward pod/web", out, errOut, forwardingRe)
		if m[2] != "8080" {
			t.Errorf("forwarding to %s, want 8080", m[2])
		}
		for i := 0; i < 3; i++ { // several connections over one forwarding
			if body := httpGetBody(t, "http://127.0.0.1:"+m[1]+"/"); !strings.Contains(body, "minik8s web v1") {
				t.Errorf("GET through the forwarded port: %q", body)
			}
		}
		if code := stop(); code != 0 {
			t.Errorf("port-forward exit %d after Ctrl-C; stderr %s", code, errOut.String())
		}
		if !strings.Contains(out.String(), "Handling connection for "+m[1]) {
			t.Errorf("no 'Handling connection' line: %s", out.String())
		}

		out, errOut, stop = e.ctlBackground(strings.NewReader(""), "port-forward", "svc/web", ":http")
		m = waitOutput(t, "port-forward svc/web", out, errOut, forwardingRe)
		if m[2] != "8080" {
			t.Errorf("service port http forwarded to %s, want the targetPort 8080", m[2])
		}
		if body := httpGetBody(t, "http://127.0.0.1:"+m[1]+"/"); !strings.Contains(body, "minik8s web v1") {
			t.Errorf("GET through svc/web: %q", body)
		}
		stop()
	})

	t.Run("attach sees a running container's output", func(t *testing.T) {
		out, errOut, stop := e.ctlBackground(strings.NewReader(""), "attach", "talker")
		m := waitOutput(t, "attach talker", out, errOut, regexp.MustCompile(`tick (\d+)\n`))
		// what it sees is live output, written after the attach
		waitOutput(t, "attach talker", out, errOut, regexp.MustCompile(fmt.Sprintf(`tick %d\n`, atoi(m[1])+3)))
		if code := stop(); code != 0 {
			t.Errorf("attach exit %d after Ctrl-C; stderr %s", code, errOut.String())
		}

		pr, pw := io.Pipe()
		out, errOut, stop = e.ctlBackground(pr, "attach", "-i", "listener")
		// the attach is live once the pipe is read; then what is written
		// reaches the process's stdin
		go func() { _, _ = pw.Write([]byte("ping\n")); _, _ = pw.Write([]byte("pong\n")) }()
		waitOutput(t, "attach -i listener", out, errOut, regexp.MustCompile(`heard ping\nheard pong\n`))
		pw.Close()
		stop()
	})

	t.Run("stock kubectl", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Skip("kubectl is not installed")
		}
		run := func(stdin string, args ...string) (string, string, error) {
			cctx, ccancel := context.WithTimeout(ctx, time.Minute)
			defer ccancel()
			cmd := exec.CommandContext(cctx, kubectl, append([]string{"--kubeconfig", e.api.Kubeconfig, "-n", "default"}, args...)...)
			cmd.Stdin = strings.NewReader(stdin)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			return out.String(), errOut.String(), err
		}
		out, errOut, err := run("from kubectl\n", "exec", "-i", "shell", "--", "sh", "-c", "read x; echo got $x; exit 5")
		var ee *exec.ExitError
		if out != "got from kubectl\n" || !errors.As(err, &ee) || ee.ExitCode() != 5 {
			t.Errorf("kubectl exec -i: stdout %q stderr %q err %v", out, errOut, err)
		}

		cmd := exec.Command(kubectl, "--kubeconfig", e.api.Kubeconfig, "-n", "default", "port-forward", "pod/web", ":8080")
		var pfOut, pfErr streamBuffer
		cmd.Stdout, cmd.Stderr = &pfOut, &pfErr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		m := waitOutput(t, "kubectl port-forward", &pfOut, &pfErr, forwardingRe)
		if body := httpGetBody(t, "http://127.0.0.1:"+m[1]+"/"); !strings.Contains(body, "minik8s web v1") {
			t.Errorf("GET through kubectl port-forward: %q", body)
		}

		at := exec.Command(kubectl, "--kubeconfig", e.api.Kubeconfig, "-n", "default", "attach", "talker")
		var atOut, atErr streamBuffer
		at.Stdout, at.Stderr = &atOut, &atErr
		if err := at.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = at.Process.Kill(); _ = at.Wait() }()
		waitOutput(t, "kubectl attach", &atOut, &atErr, regexp.MustCompile(`tick \d+\n`))
	})
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

package ctl

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/internal/syncbuf"
)

// These run inside TestLogsExecPortForward (logs_test.go): a real API
// server proxies pods/{name}/exec|attach|portforward to the fake kubelet,
// whose streaming side is stream_fake_test.go.

func testExec(h *harness) {
	t := h.t
	if out := h.ok("exec", "web-1", "--", "ls", "-l", "/"); out != "ran [\"ls\" \"-l\" \"/\"] in web-1/web\n" {
		t.Errorf("exec: %q", out)
	}
	if out := h.ok("exec", "web-2", "-c", "log", "--", "hostname"); out != "ran [\"hostname\"] in web-2/log\n" {
		t.Errorf("exec -c: %q", out)
	}
	out, errOut, code := h.run("exec", "deploy/web", "--", "exit3")
	if code != 3 || !strings.Contains(errOut, "command terminated with exit code 3") || !strings.Contains(out, "ran [\"exit3\"]") {
		t.Errorf("exit code: %d %q %q", code, out, errOut)
	}
	// stdout and stderr stay apart
	out, errOut, code = h.runIn(context.Background(), "", "exec", "web-1", "--", "warn")
	if code != 2 || out != "to stdout\n" || !strings.HasPrefix(errOut, "to stderr\n") {
		t.Errorf("stderr: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// -i passes stdin, to its end
	if out := h.okIn("hello\nworld\n", "exec", "-i", "web-1", "--", "cat"); out != "hello\nworld\n" {
		t.Errorf("exec -i cat: %q", out)
	}
	if out := h.okIn("abc\ndef\n", "exec", "-i", "web-1", "--", "read"); out != "got abc\n" {
		t.Errorf("exec -i read: %q", out)
	}
	// without -i the command gets no stdin at all
	if out := h.okIn("not for you\n", "exec", "web-1", "--", "cat"); out != "" {
		t.Errorf("exec without -i read stdin: %q", out)
	}
	// -t needs a terminal on stdin; a pipe gets none, and says so
	out, errOut, code = h.runIn(context.Background(), "x\n", "exec", "-it", "web-1", "--", "tty")
	if code != 0 || out != "tty=false stderr-stream=true\n" || !strings.Contains(errOut, "Unable to use a TTY - input is not a terminal") {
		t.Errorf("exec -it on a pipe: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = h.runIn(context.Background(), "x\n", "exec", "-t", "web-1", "--", "tty")
	if code != 0 || out != "tty=false stderr-stream=true\n" || errOut != "" {
		t.Errorf("exec -t without -i: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	wantContains(t, "no command", h.fails("exec", "web-1"), "give the command after --")
	wantContains(t, "unscheduled", h.fails("exec", "pending", "--", "true"), "not scheduled to a node yet")
	wantContains(t, "bad container", h.fails("exec", "web-2", "-c", "nope", "--", "true"), "container nope is not valid for pod web-2")

	// completion: pod names first, TYPE/NAME once a type is typed
	if out := h.ok("__complete", "exec", "web-"); !strings.HasPrefix(out, "web-1\nweb-2\n") {
		t.Errorf("completing exec's pod: %q", out)
	}
	if out := h.ok("__complete", "port-forward", "deploy/w"); !strings.HasPrefix(out, "deploy/web\n") {
		t.Errorf("completing port-forward deploy/: %q", out)
	}
	if out := h.ok("__complete", "attach", "web-1", ""); strings.Contains(out, "web-2") {
		t.Errorf("attach completes a second pod: %q", out)
	}
}

func testAttach(h *harness) {
	t := h.t
	if out := h.ok("attach", "web-1"); out != "attached to web-1/web\nline 1\nline 2\nline 3\n" {
		t.Errorf("attach: %q", out)
	}
	out, errOut, code := h.runIn(context.Background(), "a\nb\n", "attach", "-i", "web-2", "-c", "log")
	if code != 0 || out != "attached to web-2/log\nheard a\nheard b\n" ||
		!strings.Contains(errOut, "container log was not created with stdin: true") {
		t.Errorf("attach -i: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = h.runIn(context.Background(), "a\n", "attach", "-q", "-i", "-t", "web-1")
	if code != 0 || out != "attached to web-1/web\nheard a\n" || errOut != "" {
		t.Errorf("attach -q -it: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, _ = h.runIn(context.Background(), "", "attach", "-t", "web-1")
	wantContains(t, "attach -t to a container without tty", errOut, "Unable to use a TTY - container web did not allocate one")
	out, errOut, code = h.run("attach", "deploy/web")
	if code != 0 || !strings.HasPrefix(out, "attached to web-") || !strings.Contains(errOut, "Found 2 pods") {
		t.Errorf("attach deploy/web: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	wantContains(t, "pending", h.fails("attach", "pending"), "cannot attach to pod pending: it is not running yet (phase Pending)")
	wantContains(t, "two pods", h.fails("attach", "web-1", "web-2"), "give exactly one pod")
}

var forwardingRe = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)\n`)

// background runs a long-lived ctl command; stop interrupts it (Ctrl-C)
// and returns its exit code.
func (h *harness) background(args ...string) (out, errOut *syncbuf.Buffer, done <-chan int, stop func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	ch := make(chan int, 1)
	full := append([]string{"--kubeconfig", h.s.Kubeconfig, "-n", h.ns}, args...)
	go func() { ch <- Main(ctx, full, Streams{In: strings.NewReader(""), Out: out, ErrOut: errOut}) }()
	h.t.Cleanup(cancel)
	return out, errOut, ch, func() int {
		cancel()
		select {
		case code := <-ch:
			return code
		case <-time.After(30 * time.Second):
			h.t.Errorf("ctl %v did not stop within 30s of Ctrl-C", args)
			return -1
		}
	}
}

// forwarded waits for ctl's "Forwarding from" line and returns the local
// and remote ports.
func forwarded(t *testing.T, out, errOut *syncbuf.Buffer, done <-chan int) (string, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := forwardingRe.FindStringSubmatch(out.String()); m != nil {
			return m[1], m[2]
		}
		select {
		case code := <-done:
			t.Fatalf("port-forward ended (exit %d) before forwarding; stdout %q stderr %q", code, out.String(), errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no 'Forwarding from' within 30s; stdout %q stderr %q", out.String(), errOut.String())
	return "", ""
}

func get(url string) (string, error) {
	// one TCP connection per request: each is one forwarded stream
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func testPortForward(h *harness) {
	t := h.t
	ctx := context.Background()
	pods := h.cs.Pods.Namespace("dbg")
	for _, name := range []string{"web-ports", "closed"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}}, Spec: corev1.PodSpec{
			NodeName: "node-1",
			Containers: []corev1.Container{{Name: "web", Image: "minik8s.local/web:v1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}},
		}}
		p, err := pods.Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodRunning
		if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.cs.Services.Namespace("dbg").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web-ports"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web-ports"}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			{Name: "alt", Port: 81, TargetPort: intstr.FromInt32(8080)},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"web-1", "8080:ht/tp"}, `"8080:ht/tp" is not [LOCAL_PORT:]REMOTE_PORT`},
		{[]string{"web-1", "70000"}, `"70000" is not [LOCAL_PORT:]REMOTE_PORT`},
		{[]string{"web-1"}, "at least one [LOCAL_PORT:]REMOTE_PORT"},
		{[]string{"pending", "8080"}, "pod pending is not running. Current status=Pending"},
		{[]string{"web-1", "http"}, `pod web-1 has no container port named "http"`},
		{[]string{"svc/web-ports", "8080"}, "service web-ports does not have a service port 8080"},
		{[]string{"closed", "8080"}, "pod dbg/closed has no running sandbox"},
	} {
		wantContains(t, strings.Join(c.args, " "), h.fails(append([]string{"port-forward"}, c.args...)...), c.want)
	}

	// a pod, by port name, several connections, then Ctrl-C
	out, errOut, done, stop := h.background("port-forward", "pod/web-ports", ":http")
	local, remote := forwarded(t, out, errOut, done)
	if remote != "8080" {
		t.Errorf("forwarding to %s, want 8080", remote)
	}
	for _, path := range []string{"/a", "/b", "/c"} {
		if body, err := get("http://127.0.0.1:" + local + path); err != nil || body != "minik8s web v1 "+path+"\n" {
			t.Errorf("GET %s through the forwarded port: %q %v", path, body, err)
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("port-forward exit %d after Ctrl-C; stderr %s", code, errOut.String())
	}
	if n := strings.Count(out.String(), "Handling connection for "+local+"\n"); n != 3 {
		t.Errorf("%d 'Handling connection' lines for 3 connections:\n%s", n, out.String())
	}

	// a service: its port (by number or name) maps to its targetPort in the pod
	for _, c := range []struct{ spec, wantLocal string }{{":80", ""}, {":alt", ""}} {
		out, errOut, done, stop := h.background("port-forward", "svc/web-ports", c.spec)
		local, remote := forwarded(t, out, errOut, done)
		if remote != "8080" {
			t.Errorf("svc/web-ports %s forwarded to %s, want 8080", c.spec, remote)
		}
		if body, err := get("http://127.0.0.1:" + local + "/svc"); err != nil || body != "minik8s web v1 /svc\n" {
			t.Errorf("GET through svc/web-ports %s: %q %v", c.spec, body, err)
		}
		stop()
	}

	// a port nothing listens on in the pod: the connection fails, and, as
	// with kubectl, the forwarding ends with an error
	out, errOut, done, stop = h.background("port-forward", "web-ports", ":9999")
	local, _ = forwarded(t, out, errOut, done)
	if body, err := get("http://127.0.0.1:" + local + "/"); err == nil {
		t.Errorf("GET to a closed pod port answered %q", body)
	}
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(errOut.String(), "lost connection to pod web-ports") {
			t.Errorf("after a refused pod port: exit %d, stderr %q", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("port-forward goes on after the pod refused a connection")
		stop()
	}
}

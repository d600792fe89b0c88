package ctl

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/internal/syncbuf"
)

// harness drives the ctl command tree in-process against a real API
// server, as a user would from a shell.
type harness struct {
	t  *testing.T
	s  *apiservertest.Server
	cs *typed.Clientset
	ns string // namespace passed with -n (empty: none)
}

// newHarness returns a harness for server s working in namespace ns
// (created unless it is "" or default).
func newHarness(t *testing.T, s *apiservertest.Server, ns string) *harness {
	t.Helper()
	cs := s.Clientset(t)
	h := &harness{t: t, s: s, cs: cs, ns: ns}
	if ns != "" && ns != "default" {
		_, err := cs.Namespaces.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}
	return h
}

// runIn runs ctl with stdin and returns stdout, stderr and the exit code.
func (h *harness) runIn(ctx context.Context, stdin string, args ...string) (string, string, int) {
	var out, errOut syncbuf.Buffer
	full := append([]string{"--kubeconfig", h.s.Kubeconfig}, args...)
	if h.ns != "" {
		full = append([]string{"-n", h.ns}, full...)
	}
	var in io.Reader = strings.NewReader(stdin)
	code := Main(ctx, full, Streams{In: in, Out: &out, ErrOut: &errOut})
	return out.String(), errOut.String(), code
}

func (h *harness) run(args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return h.runIn(ctx, "", args...)
}

// ok runs ctl and fails the test unless it exits 0.
func (h *harness) ok(args ...string) string {
	h.t.Helper()
	out, errOut, code := h.run(args...)
	if code != 0 {
		h.t.Fatalf("ctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// okIn is ok with stdin.
func (h *harness) okIn(stdin string, args ...string) string {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, errOut, code := h.runIn(ctx, stdin, args...)
	if code != 0 {
		h.t.Fatalf("ctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs ctl, wants exit code 1 and returns stderr.
func (h *harness) fails(args ...string) string {
	h.t.Helper()
	out, errOut, code := h.run(args...)
	if code != 1 {
		h.t.Fatalf("ctl %s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return errOut
}

// writeFile writes a manifest into a temp dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := dir + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: missing %q in:\n%s", what, w, got)
		}
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// at returns the harness reporting to t (a subtest).
func (h *harness) at(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

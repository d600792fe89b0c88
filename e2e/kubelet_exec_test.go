//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	clientrest "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik8s/minik8s/hack/images/imagebuild"
)

// The extra build tag keeps this test out of the e2e build until go.mod
// carries k8s.io/streaming and github.com/moby/spdystream (client-go's
// remotecommand needs them): go test -tags 'e2e kubeletexec' ./e2e/ -run KubeletExec
//
// TestKubeletExecStreaming: client-go's remotecommand (what kubectl exec
// uses) runs an interactive command through the kubelet's /exec endpoint,
// over SPDY, and the way kubectl does (WebSocket, falling back to SPDY),
// with stdin, stdout, stderr and the exit code.
func TestKubeletExecStreaming(t *testing.T) {
	e := newKubeletEnv(t, "e2e-node-8", "10.233.18.0/24")
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shell"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "sh", Image: imagebuild.BusyboxImage, Command: []string{"sleep", "3600"},
		}}},
	})
	e.waitPod("shell", "Running", running)
	cfg := &clientrest.Config{
		Host:            e.serverURL,
		BearerToken:     e.api.AdminToken,
		TLSClientConfig: clientrest.TLSClientConfig{Insecure: true},
	}
	q := url.Values{"command": {"sh", "-c", "read line; echo got:$line; echo oops >&2; exit 3"},
		"stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"}}
	u, err := url.Parse(e.serverURL + "/exec/default/shell/sh?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	if err != nil {
		t.Fatal(err)
	}
	// kubectl 1.32 tries WebSocket (v5.channel.k8s.io) first and falls back
	// to SPDY when the upgrade fails; containerd 1.6's streaming server
	// speaks SPDY (v1-v4) only.
	kubectlLike, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, ex := range map[string]remotecommand.Executor{"spdy": spdy, "websocket-then-spdy": kubectlLike} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var stdout, stderr bytes.Buffer
		err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("hello\n"), Stdout: &stdout, Stderr: &stderr})
		cancel()
		if stdout.String() != "got:hello\n" || stderr.String() != "oops\n" {
			t.Errorf("%s: stdout %q stderr %q (err %v)", name, stdout.String(), stderr.String(), err)
		}
		if err == nil || !strings.Contains(err.Error(), "exit code 3") {
			t.Errorf("%s: err %v, want exit code 3", name, err)
		}
	}
}

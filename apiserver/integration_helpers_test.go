package apiserver_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// The integration tests drive a real API server on a real embedded etcd
// through stock client-go: if client-go works against the server, kubectl
// and other Kubernetes clients do too. The raw HTTP helper in
// smoke_test.go (newClient/do) covers what client-go hides (exact status
// codes, headers, malformed bodies).

// itConfig loads the server's kubeconfig the way any client-go program
// would. jsonBodies switches request bodies from client-go's default
// (protobuf for built-in kinds) to JSON.
func itConfig(t testing.TB, s *apiservertest.Server, jsonBodies bool) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatalf("kubeconfig %s: %v", s.Kubeconfig, err)
	}
	// The default client-side rate limit (5 qps) would make the concurrency
	// tests measure the limiter instead of the server.
	cfg.QPS, cfg.Burst = 1000, 2000
	// No cfg.Timeout: it would cut watches; every call has a context.
	if jsonBodies {
		cfg.ContentType = "application/json"
		cfg.AcceptContentTypes = "application/json"
	}
	return cfg
}

// itClientset is a client-go itClientset for s; see itConfig for jsonBodies.
func itClientset(t testing.TB, s *apiservertest.Server, jsonBodies bool) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(itConfig(t, s, jsonBodies))
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	return cs
}

// itBodyEncodings runs f once with protobuf request bodies (client-go's
// default for built-in kinds, which the server transcodes) and once with
// JSON bodies.
func itBodyEncodings(t *testing.T, s *apiservertest.Server, f func(t *testing.T, cs *kubernetes.Clientset, suffix string)) {
	for _, enc := range []struct {
		name string
		json bool
	}{{"protobuf", false}, {"json", true}} {
		t.Run(enc.name, func(t *testing.T) { f(t, itClientset(t, s, enc.json), enc.name[:2]) })
	}
}

func itCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// itStatus returns the Kubernetes Status carried by a client-go error, or
// fails the test if err is not an API status error.
func itStatus(t testing.TB, err error) metav1.Status {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an API error, got success")
	}
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		t.Fatalf("expected an API status error, got %T: %v", err, err)
	}
	return se.Status()
}

// itWantStatus checks code and reason of an API error.
func itWantStatus(t testing.TB, err error, code int32, reason metav1.StatusReason) metav1.Status {
	t.Helper()
	st := itStatus(t, err)
	if st.Code != code || (reason != "" && st.Reason != reason) {
		t.Fatalf("want %d %s, got %d %s: %s", code, reason, st.Code, st.Reason, st.Message)
	}
	return st
}

// itCauseFields lists the fields named by a Status' causes.
func itCauseFields(st metav1.Status) []string {
	var out []string
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			out = append(out, c.Field)
		}
	}
	return out
}

// itWantField checks that the Status names field, either as a cause or
// in its message.
func itWantField(t testing.TB, st metav1.Status, field string) {
	t.Helper()
	for _, f := range itCauseFields(st) {
		if f == field {
			return
		}
	}
	t.Fatalf("status does not name field %q: causes %v, message %q", field, itCauseFields(st), st.Message)
}

// itEtcdRev is the ModRevision of the raw etcd key.
func itEtcdRev(t testing.TB, s *apiservertest.Server, key string) int64 {
	t.Helper()
	resp, err := s.EtcdClient().Get(itCtx(t), key)
	if err != nil {
		t.Fatalf("etcd get %s: %v", key, err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("etcd key %s: %d values", key, len(resp.Kvs))
	}
	return resp.Kvs[0].ModRevision
}

// itEtcdHead is the current etcd revision.
func itEtcdHead(t testing.TB, s *apiservertest.Server) int64 {
	t.Helper()
	resp, err := s.EtcdClient().Get(itCtx(t), "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("etcd revision: %v", err)
	}
	return resp.Header.Revision
}

func itRV(t testing.TB, rv string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q is not an integer: %v", rv, err)
	}
	return n
}

// itEventually polls cond until it returns nil or the timeout passes; the
// last error is reported. It never asserts how long anything took.
func itEventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// itPod is a minimal valid pod.
func itPod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "minik8s.local/busybox:1.35", Command: []string{"sleep", "3600"},
		}}},
	}
}

func itNamespace(t testing.TB, cs kubernetes.Interface, name string) {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(itCtx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func itPtr[T any](v T) *T { return &v }

func clientPrefix() []clientv3.OpOption { return []clientv3.OpOption{clientv3.WithPrefix()} }

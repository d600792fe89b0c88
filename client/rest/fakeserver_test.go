package rest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// testScheme knows the real Kubernetes core/v1 types (k8s.io/api is allowed
// in tests): the client must decode what a Kubernetes server sends.
func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatalf("AddToScheme: %v", err)
	}
	return s
}

// recordedRequest is what the fake server saw.
type recordedRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// fakeAPIServer is an httptest server answering with canned,
// Kubernetes-shaped responses chosen by the test's handler, and recording
// every request it received.
type fakeAPIServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recordedRequest
}

func newFakeAPIServer(t *testing.T, tls bool, handler http.HandlerFunc) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, recordedRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		f.mu.Unlock()
		handler(w, r)
	})
	if tls {
		f.Server = httptest.NewTLSServer(h)
	} else {
		f.Server = httptest.NewServer(h)
	}
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPIServer) recorded() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.requests...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

const podJSON = `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"default","resourceVersion":"7"},"spec":{"nodeName":"n1"}}`

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(&cfg, testScheme(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

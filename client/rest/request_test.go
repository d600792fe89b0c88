package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestRequestURL(t *testing.T) {
	c := newTestClient(t, Config{Host: "https://api.example:6443/prefix/"})
	tests := []struct {
		name    string
		build   func() *Request
		want    string
		wantErr string
	}{
		{"core namespaced object", func() *Request {
			return c.Get().Version("v1").Namespace("default").Resource("pods").Name("web")
		}, "https://api.example:6443/prefix/api/v1/namespaces/default/pods/web", ""},
		{"named group collection", func() *Request {
			return c.Get().Group("apps").Version("v1").Namespace("ns1").Resource("deployments")
		}, "https://api.example:6443/prefix/apis/apps/v1/namespaces/ns1/deployments", ""},
		{"all namespaces", func() *Request {
			return c.Get().Version("v1").Namespace("").Resource("pods")
		}, "https://api.example:6443/prefix/api/v1/pods", ""},
		{"cluster scoped", func() *Request {
			return c.Get().Version("v1").Resource("nodes").Name("n1")
		}, "https://api.example:6443/prefix/api/v1/nodes/n1", ""},
		{"subresource", func() *Request {
			return c.Put().Group("apps").Version("v1").Namespace("d").Resource("deployments").Name("x").SubResource("scale")
		}, "https://api.example:6443/prefix/apis/apps/v1/namespaces/d/deployments/x/scale", ""},
		{"query params", func() *Request {
			return c.Get().Version("v1").Resource("pods").Params(ListParams(metav1.ListOptions{LabelSelector: "app=web", Limit: 5}))
		}, "https://api.example:6443/prefix/api/v1/pods?labelSelector=app%3Dweb&limit=5", ""},
		{"abs path", func() *Request { return c.Get().AbsPath("healthz") }, "https://api.example:6443/prefix/healthz", ""},
		{"empty name", func() *Request { return c.Get().Version("v1").Resource("pods").Name("") }, "", "name may not be empty"},
		{"slash in name", func() *Request { return c.Get().Version("v1").Resource("pods").Name("a/b") }, "", "may not contain"},
		{"dot-dot namespace", func() *Request { return c.Get().Version("v1").Namespace("..").Resource("pods") }, "", "may not be"},
		{"no version", func() *Request { return c.Get().Resource("pods") }, "", "no API version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.build()
			_, err := r.prepare()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("prepare error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			if got := r.URL().String(); got != tt.want {
				t.Errorf("URL = %s\n want %s", got, tt.want)
			}
		})
	}
}

func TestConfigHost(t *testing.T) {
	tests := []struct {
		host, want, wantErr string
	}{
		{"10.0.0.1:6443", "https://10.0.0.1:6443", ""},
		{"http://localhost:8080/", "http://localhost:8080", ""},
		{"", "", "Host is empty"},
		{"ftp://x", "", "scheme must be"},
	}
	for _, tt := range tests {
		c, err := New(&Config{Host: tt.host}, testScheme(t))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Host %q: error %v, want %q", tt.host, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Host %q: %v", tt.host, err)
			continue
		}
		if c.Host() != tt.want {
			t.Errorf("Host %q → %q, want %q", tt.host, c.Host(), tt.want)
		}
	}
}

func TestDoGetDecodesAndAuthenticates(t *testing.T) {
	srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, podJSON)
	})
	c := newTestClient(t, Config{Host: srv.URL, BearerToken: "s3cret", UserAgent: "scheduler/test"})
	var pod corev1.Pod
	err := c.Get().Version("v1").Namespace("default").Resource("pods").Name("web").
		Params(GetParams(metav1.GetOptions{ResourceVersion: "0"})).Do(context.Background()).Into(&pod)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if pod.Name != "web" || pod.Spec.NodeName != "n1" || pod.ResourceVersion != "7" {
		t.Errorf("decoded pod = %+v", pod.ObjectMeta)
	}
	req := srv.recorded()[0]
	checks := map[string][2]string{
		"path":          {req.Path, "/api/v1/namespaces/default/pods/web"},
		"query":         {req.RawQuery, "resourceVersion=0"},
		"authorization": {req.Header.Get("Authorization"), "Bearer s3cret"},
		"user agent":    {req.Header.Get("User-Agent"), "scheduler/test"},
		"accept":        {req.Header.Get("Accept"), "application/json"},
	}
	for what, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", what, c[0], c[1])
		}
	}
}

func TestDoPostEncodesBodyWithKind(t *testing.T) {
	srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, podJSON)
	})
	c := newTestClient(t, Config{Host: srv.URL})
	in := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}} // no TypeMeta on purpose
	var out corev1.Pod
	err := c.Post().Version("v1").Namespace("default").Resource("pods").Body(in).
		Params(CreateParams(metav1.CreateOptions{FieldManager: "ctl", DryRun: []string{"All"}})).
		Do(context.Background()).Into(&out)
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	req := srv.recorded()[0]
	var sent map[string]any
	if err := json.Unmarshal(req.Body, &sent); err != nil {
		t.Fatalf("body %q: %v", req.Body, err)
	}
	if sent["kind"] != "Pod" || sent["apiVersion"] != "v1" {
		t.Errorf("body kind/apiVersion = %v/%v, want Pod/v1", sent["kind"], sent["apiVersion"])
	}
	if in.Kind != "" {
		t.Errorf("encoding must not leave TypeMeta set on the caller's object, got %q", in.Kind)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if req.RawQuery != "dryRun=All&fieldManager=ctl" {
		t.Errorf("query = %q", req.RawQuery)
	}
}

func TestDoPatchContentType(t *testing.T) {
	srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, podJSON) })
	c := newTestClient(t, Config{Host: srv.URL})
	patch := []byte(`{"metadata":{"labels":{"a":"b"}}}`)
	res := c.Patch(string(types.MergePatchType)).Version("v1").Namespace("default").Resource("pods").Name("web").
		Body(patch).Do(context.Background())
	if err := res.Error(); err != nil {
		t.Fatalf("Patch: %v", err)
	}
	req := srv.recorded()[0]
	if req.Method != http.MethodPatch || req.Header.Get("Content-Type") != "application/merge-patch+json" || string(req.Body) != string(patch) {
		t.Errorf("got %s %q body %s", req.Method, req.Header.Get("Content-Type"), req.Body)
	}
}

func statusBody(code int, reason metav1.StatusReason, msg string) metav1.Status {
	return metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
	}
}

func TestErrorsBecomeStatusErrors(t *testing.T) {
	tests := []struct {
		name     string
		verb     string
		code     int
		body     any // metav1.Status or string
		check    func(error) bool
		checkFn  string
		wantText string
	}{
		{"404 status", http.MethodGet, 404, statusBody(404, metav1.StatusReasonNotFound, `pods "web" not found`), apierrors.IsNotFound, "IsNotFound", `pods "web" not found`},
		{"409 conflict status", http.MethodPut, 409, statusBody(409, metav1.StatusReasonConflict, "the object has been modified"), apierrors.IsConflict, "IsConflict", "modified"},
		{"409 exists status", http.MethodPost, 409, statusBody(409, metav1.StatusReasonAlreadyExists, `pods "web" already exists`), apierrors.IsAlreadyExists, "IsAlreadyExists", "already exists"},
		{"422 invalid", http.MethodPost, 422, statusBody(422, metav1.StatusReasonInvalid, "spec.containers: Required value"), apierrors.IsInvalid, "IsInvalid", "spec.containers"},
		{"410 expired status", http.MethodGet, 410, statusBody(410, metav1.StatusReasonExpired, "too old resource version"), apierrors.IsResourceExpired, "IsResourceExpired", "too old"},
		{"404 plain text", http.MethodGet, 404, "404 page not found", apierrors.IsNotFound, "IsNotFound", "pods web"},
		{"410 plain text", http.MethodGet, 410, "gone", apierrors.IsGone, "IsGone", ""},
		{"409 plain text on POST", http.MethodPost, 409, "exists", apierrors.IsAlreadyExists, "IsAlreadyExists", ""},
		{"500 plain text", http.MethodGet, 500, "boom", apierrors.IsInternalError, "IsInternalError", "boom"},
		{"403 plain text", http.MethodGet, 403, "no", apierrors.IsForbidden, "IsForbidden", ""},
		{"status without code gets the HTTP code", http.MethodGet, 404, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status"}}, apierrors.IsNotFound, "IsNotFound", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) {
				if s, ok := tt.body.(string); ok {
					w.WriteHeader(tt.code)
					fmt.Fprint(w, s)
					return
				}
				writeJSON(w, tt.code, tt.body)
			})
			c := newTestClient(t, Config{Host: srv.URL})
			var pod corev1.Pod
			err := c.Verb(tt.verb).Version("v1").Namespace("default").Resource("pods").Name("web").
				Do(context.Background()).Into(&pod)
			var se *apierrors.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *StatusError", err, err)
			}
			if !tt.check(err) {
				t.Errorf("%s(%v) = false (status %+v)", tt.checkFn, err, se.ErrStatus)
			}
			if int(se.ErrStatus.Code) != tt.code {
				t.Errorf("code = %d, want %d", se.ErrStatus.Code, tt.code)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("message %q lacks %q", err.Error(), tt.wantText)
			}
		})
	}
}

func TestIntoRejectsSuccessStatusAndWrongKind(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"status success where object expected", `{"kind":"Status","apiVersion":"v1","status":"Success"}`, "server returned a Status"},
		{"other kind", `{"kind":"Node","apiVersion":"v1","metadata":{"name":"n"}}`, "server returned Node"},
		{"empty body", ``, "empty response body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, tt.body) })
			c := newTestClient(t, Config{Host: srv.URL})
			var pod corev1.Pod
			err := c.Get().Version("v1").Resource("pods").Do(context.Background()).Into(&pod)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Into error = %v, want containing %q", err, tt.want)
			}
		})
	}
}

// sleepRecorder replaces Client.sleep: it records the waits asked for and
// returns at once, so retry tests neither wait nor depend on timing.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name         string
		verb         string
		failures     int    // leading answers that fail
		failCode     int    // their status
		retryAfter   string // their Retry-After header ("" = none)
		maxRetries   int
		wantRequests int
		wantOK       bool
		wantWaits    []time.Duration
	}{
		{"429 then ok", http.MethodPost, 2, 429, "1", 0, 3, true, []time.Duration{time.Second, time.Second}},
		{"503 with retry-after", http.MethodGet, 1, 503, "0", 0, 2, true, []time.Duration{0}},
		{"429 without retry-after is final", http.MethodGet, 1, 429, "", 0, 1, false, nil},
		{"500 is never retried", http.MethodGet, 1, 500, "1", 0, 1, false, nil},
		{"retries are bounded", http.MethodGet, 100, 429, "2", 2, 3, false, []time.Duration{2 * time.Second, 2 * time.Second}},
		{"huge retry-after is capped", http.MethodGet, 1, 429, "86400", 0, 2, true, []time.Duration{maxRetryAfter}},
		{"retries disabled", http.MethodGet, 1, 429, "1", -1, 1, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) {
				if int(n.Add(1)) <= tt.failures {
					if tt.retryAfter != "" {
						w.Header().Set("Retry-After", tt.retryAfter)
					}
					writeJSON(w, tt.failCode, statusBody(tt.failCode, "", "slow down"))
					return
				}
				fmt.Fprint(w, podJSON)
			})
			c := newTestClient(t, Config{Host: srv.URL, MaxRetries: tt.maxRetries})
			rec := &sleepRecorder{}
			c.sleep = rec.sleep
			var pod corev1.Pod
			err := c.Verb(tt.verb).Version("v1").Namespace("default").Resource("pods").Body(&corev1.Pod{}).
				Do(context.Background()).Into(&pod)
			if (err == nil) != tt.wantOK {
				t.Fatalf("err = %v, wantOK %v", err, tt.wantOK)
			}
			reqs := srv.recorded()
			if len(reqs) != tt.wantRequests {
				t.Errorf("server saw %d requests, want %d", len(reqs), tt.wantRequests)
			}
			for i, r := range reqs {
				if len(r.Body) == 0 {
					t.Errorf("request %d had no body: retries must resend it", i)
				}
			}
			if fmt.Sprint(rec.waits) != fmt.Sprint(tt.wantWaits) {
				t.Errorf("waits = %v, want %v", rec.waits, tt.wantWaits)
			}
		})
	}
}

// fakeRefusingTransport fails the first n round trips as a dial to a
// closed port does, then passes requests to the real transport.
type fakeRefusingTransport struct {
	n    atomic.Int32
	next http.RoundTripper
}

func (f *fakeRefusingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	return f.next.RoundTrip(r)
}

func TestRetryConnectionRefused(t *testing.T) {
	tests := []struct {
		name      string
		refusals  int32
		wantOK    bool
		wantWaits []time.Duration
	}{
		{"recovers", 3, true, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}},
		{"gives up after MaxRetries", 100, false, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, podJSON) })
			tr := &fakeRefusingTransport{next: http.DefaultTransport}
			tr.n.Store(tt.refusals)
			c := newTestClient(t, Config{Host: srv.URL, Transport: tr})
			rec := &sleepRecorder{}
			c.sleep = rec.sleep
			err := c.Get().Version("v1").Namespace("default").Resource("pods").Name("web").Do(context.Background()).Error()
			if (err == nil) != tt.wantOK {
				t.Fatalf("err = %v, wantOK %v", err, tt.wantOK)
			}
			if err != nil && (!errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "pods default/web")) {
				t.Errorf("error %q should wrap ECONNREFUSED and name the object", err)
			}
			if fmt.Sprint(rec.waits) != fmt.Sprint(tt.wantWaits) {
				t.Errorf("waits = %v, want %v", rec.waits, tt.wantWaits)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	c := newTestClient(t, Config{Host: srv.URL, Timeout: 20 * time.Millisecond})
	err := c.Get().Version("v1").Resource("pods").Do(context.Background()).Error()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestThrottle(t *testing.T) {
	srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, podJSON) })
	c := newTestClient(t, Config{Host: srv.URL, QPS: 0.001, Burst: 2})
	rec := &sleepRecorder{}
	c.sleep = rec.sleep
	for range 3 {
		if err := c.Get().Version("v1").Resource("pods").Do(context.Background()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.waits) != 3 || rec.waits[0] != 0 || rec.waits[1] != 0 || rec.waits[2] <= 0 {
		t.Errorf("throttle waits = %v: want two free requests then a wait", rec.waits)
	}
}

func TestStream(t *testing.T) {
	srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "line 1\nline 2\n")
	})
	c := newTestClient(t, Config{Host: srv.URL})
	rc, err := c.Get().Version("v1").Namespace("default").Resource("pods").Name("web").SubResource("log").Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "line 1\nline 2\n" {
		t.Errorf("stream = %q", data)
	}
	if got := srv.recorded()[0].Path; got != "/api/v1/namespaces/default/pods/web/log" {
		t.Errorf("path = %s", got)
	}
}

func TestListParams(t *testing.T) {
	timeout := int64(30)
	yes := true
	tests := []struct {
		name string
		opts metav1.ListOptions
		want string
	}{
		{"zero", metav1.ListOptions{}, ""},
		{"selectors", metav1.ListOptions{LabelSelector: "a=b,c!=d", FieldSelector: "spec.nodeName=n1"}, "fieldSelector=spec.nodeName%3Dn1&labelSelector=a%3Db%2Cc%21%3Dd"},
		{"paging", metav1.ListOptions{Limit: 500, Continue: "tok"}, "continue=tok&limit=500"},
		{"watch", metav1.ListOptions{Watch: true, AllowWatchBookmarks: true, ResourceVersion: "42", TimeoutSeconds: &timeout, SendInitialEvents: &yes, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan},
			"allowWatchBookmarks=true&resourceVersion=42&resourceVersionMatch=NotOlderThan&sendInitialEvents=true&timeoutSeconds=30&watch=true"},
	}
	for _, tt := range tests {
		if got := ListParams(tt.opts).Encode(); got != tt.want {
			t.Errorf("%s: %s\n want %s", tt.name, got, tt.want)
		}
	}
	force := true
	if got := PatchParams(metav1.PatchOptions{Force: &force, FieldManager: "m", FieldValidation: "Strict"}).Encode(); got != "fieldManager=m&fieldValidation=Strict&force=true" {
		t.Errorf("PatchParams = %s", got)
	}
}

package typed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	autoscalingv1 "github.com/minik8s/minik8s/api/autoscaling/v1"
	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/rest"
)

type seen struct {
	Method, Path, Query, ContentType string
	Body                             map[string]any
}

// fakeAPIServer answers every request with the canned body the test set
// and records what it was asked.
type fakeAPIServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []seen
	code int
	body string
}

func newFakeAPIServer(t *testing.T) (*fakeAPIServer, *Clientset) {
	t.Helper()
	f := &fakeAPIServer{code: 200}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		s := seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type")}
		if len(data) > 0 {
			_ = json.Unmarshal(data, &s.Body)
		}
		f.mu.Lock()
		f.got = append(f.got, s)
		code, body := f.code, f.body
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(f.srv.Close)
	cs, err := NewForConfig(&rest.Config{Host: f.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return f, cs
}

func (f *fakeAPIServer) answer(code int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.code, f.body = code, body
}

func (f *fakeAPIServer) last(t *testing.T) seen {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		t.Fatal("server saw no request")
	}
	return f.got[len(f.got)-1]
}

const (
	podJSON        = `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"default","resourceVersion":"5"}}`
	podListJSON    = `{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"next"},"items":[{"metadata":{"name":"a","namespace":"default"}},{"metadata":{"name":"b","namespace":"kube-system"}}]}`
	nodeJSON       = `{"kind":"Node","apiVersion":"v1","metadata":{"name":"n1","resourceVersion":"3"}}`
	deploymentJSON = `{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"d","namespace":"prod"}}`
	scaleJSON      = `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"d","namespace":"prod"},"spec":{"replicas":3},"status":{"replicas":2}}`
	leaseJSON      = `{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"l","namespace":"kube-system"}}`
	statusSuccess  = `{"kind":"Status","apiVersion":"v1","status":"Success"}`
)

func TestTypedVerbs(t *testing.T) {
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", ResourceVersion: "5"}}
	replicas := int32(3)
	tests := []struct {
		name        string
		answer      string
		call        func(cs *Clientset) (runtime.Object, error)
		wantMethod  string
		wantPath    string
		wantQuery   string
		wantCT      string
		wantKind    string // of the body sent ("" = no body)
		checkResult func(t *testing.T, obj runtime.Object)
	}{
		{
			name:   "get namespaced",
			answer: podJSON,
			call: func(cs *Clientset) (runtime.Object, error) {
				return cs.Pods.Namespace("default").Get(ctx, "web", metav1.GetOptions{ResourceVersion: "0"})
			},
			wantMethod: "GET", wantPath: "/api/v1/namespaces/default/pods/web", wantQuery: "resourceVersion=0",
			checkResult: func(t *testing.T, obj runtime.Object) {
				if p := obj.(*corev1.Pod); p.Name != "web" || p.ResourceVersion != "5" {
					t.Errorf("pod = %+v", p.ObjectMeta)
				}
			},
		},
		{
			name:   "get cluster scoped ignores namespace",
			answer: nodeJSON,
			call: func(cs *Clientset) (runtime.Object, error) {
				return cs.Nodes.Namespace("ignored").Get(ctx, "n1", metav1.GetOptions{})
			},
			wantMethod: "GET", wantPath: "/api/v1/nodes/n1",
		},
		{
			name:   "list all namespaces with selectors",
			answer: podListJSON,
			call: func(cs *Clientset) (runtime.Object, error) {
				return cs.Pods.List(ctx, metav1.ListOptions{LabelSelector: "app=web", FieldSelector: "spec.nodeName=n1", Limit: 2})
			},
			wantMethod: "GET", wantPath: "/api/v1/pods", wantQuery: "fieldSelector=spec.nodeName%3Dn1&labelSelector=app%3Dweb&limit=2",
			checkResult: func(t *testing.T, obj runtime.Object) {
				l := obj.(*corev1.PodList)
				if len(l.Items) != 2 || l.Items[1].Namespace != "kube-system" || l.ResourceVersion != "9" || l.Continue != "next" {
					t.Errorf("list = %+v", l)
				}
			},
		},
		{
			name:   "create takes namespace from object on an all-namespaces client",
			answer: podJSON,
			call: func(cs *Clientset) (runtime.Object, error) {
				return cs.Pods.Create(ctx, pod, metav1.CreateOptions{FieldManager: "test"})
			},
			wantMethod: "POST", wantPath: "/api/v1/namespaces/default/pods", wantQuery: "fieldManager=test",
			wantCT: "application/json", wantKind: "Pod",
		},
		{
			name:   "update",
			answer: podJSON,
			call: func(cs *Clientset) (runtime.Object, error) {
				return cs.Pods.Namespace("default").Update(ctx, pod, metav1.UpdateOptions{DryRun: []string{"All"}})
			},
			wantMethod: "PUT", wantPath: "/api/v1/namespaces/default/pods/web", wantQuery: "dryRun=All",
			wantCT: "application/json", wantKind: "Pod",
		},
		{
			name:   "update status",
			answer: podJSON,
			call: func(cs *Clientset) (runtime.Object, error) {
				return cs.Pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
			},
			wantMethod: "PUT", wantPath: "/api/v1/namespaces/default/pods/web/status", wantKind: "Pod",
		},
		{
			name:   "strategic merge patch of a subresource",
			answer: podJSON,
			call: func(cs *Clientset) (runtime.Object, error) {
				return cs.Pods.Namespace("default").Patch(ctx, "web", types.StrategicMergePatchType, []byte(`{"status":{"phase":"Running"}}`), metav1.PatchOptions{FieldManager: "kubelet"}, "status")
			},
			wantMethod: "PATCH", wantPath: "/api/v1/namespaces/default/pods/web/status", wantQuery: "fieldManager=kubelet",
			wantCT: "application/strategic-merge-patch+json",
		},
		{
			name:   "delete sends DeleteOptions body",
			answer: statusSuccess,
			call: func(cs *Clientset) (runtime.Object, error) {
				bg := metav1.DeletePropagationBackground
				return nil, cs.Deployments.Namespace("prod").Delete(ctx, "d", metav1.DeleteOptions{PropagationPolicy: &bg})
			},
			wantMethod: "DELETE", wantPath: "/apis/apps/v1/namespaces/prod/deployments/d", wantKind: "DeleteOptions",
		},
		{
			name:   "delete collection",
			answer: statusSuccess,
			call: func(cs *Clientset) (runtime.Object, error) {
				return nil, cs.ConfigMaps.Namespace("x").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "tmp"})
			},
			wantMethod: "DELETE", wantPath: "/api/v1/namespaces/x/configmaps", wantQuery: "labelSelector=tmp", wantKind: "DeleteOptions",
		},
		{
			name:   "bind",
			answer: statusSuccess,
			call: func(cs *Clientset) (runtime.Object, error) {
				b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
				return nil, cs.Pods.Namespace("default").Bind(ctx, b, metav1.CreateOptions{})
			},
			wantMethod: "POST", wantPath: "/api/v1/namespaces/default/pods/web/binding", wantKind: "Binding",
		},
		{
			name:   "get scale",
			answer: scaleJSON,
			call: func(cs *Clientset) (runtime.Object, error) {
				return cs.Deployments.Namespace("prod").GetScale(ctx, "d", metav1.GetOptions{})
			},
			wantMethod: "GET", wantPath: "/apis/apps/v1/namespaces/prod/deployments/d/scale",
			checkResult: func(t *testing.T, obj runtime.Object) {
				if s := obj.(*autoscalingv1.Scale); s.Spec.Replicas != 3 || s.Status.Replicas != 2 {
					t.Errorf("scale = %+v", s)
				}
			},
		},
		{
			name:   "update scale keeps autoscaling/v1 kind",
			answer: scaleJSON,
			call: func(cs *Clientset) (runtime.Object, error) {
				s := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "prod"}, Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
				return cs.ReplicaSets.UpdateScale(ctx, "d", s, metav1.UpdateOptions{})
			},
			wantMethod: "PUT", wantPath: "/apis/apps/v1/namespaces/prod/replicasets/d/scale", wantKind: "Scale",
		},
		{
			name:   "lease in its group",
			answer: leaseJSON,
			call: func(cs *Clientset) (runtime.Object, error) {
				return cs.Leases.Namespace("kube-system").Get(ctx, "l", metav1.GetOptions{})
			},
			wantMethod: "GET", wantPath: "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l",
		},
		{
			name:   "deployment decode",
			answer: deploymentJSON,
			call: func(cs *Clientset) (runtime.Object, error) {
				return cs.Deployments.Namespace("prod").Get(ctx, "d", metav1.GetOptions{})
			},
			wantMethod: "GET", wantPath: "/apis/apps/v1/namespaces/prod/deployments/d",
			checkResult: func(t *testing.T, obj runtime.Object) {
				if d := obj.(*appsv1.Deployment); d.Name != "d" {
					t.Errorf("deployment = %+v", d.ObjectMeta)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, cs := newFakeAPIServer(t)
			f.answer(200, tt.answer)
			obj, err := tt.call(cs)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			got := f.last(t)
			if got.Method != tt.wantMethod || got.Path != tt.wantPath || got.Query != tt.wantQuery {
				t.Errorf("request = %s %s?%s\n want %s %s?%s", got.Method, got.Path, got.Query, tt.wantMethod, tt.wantPath, tt.wantQuery)
			}
			if tt.wantCT != "" && got.ContentType != tt.wantCT {
				t.Errorf("Content-Type = %q, want %q", got.ContentType, tt.wantCT)
			}
			if kind, _ := got.Body["kind"].(string); kind != tt.wantKind {
				t.Errorf("body kind = %q, want %q (body %v)", kind, tt.wantKind, got.Body)
			}
			if tt.checkResult != nil {
				tt.checkResult(t, obj)
			}
		})
	}
}

func TestTypedErrors(t *testing.T) {
	f, cs := newFakeAPIServer(t)
	f.answer(404, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":404,"reason":"NotFound","message":"pods \"x\" not found","details":{"name":"x","kind":"pods"}}`)
	if _, err := cs.Pods.Namespace("default").Get(context.Background(), "x", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get missing pod: %v, want NotFound", err)
	}
	f.answer(409, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":409,"reason":"Conflict","message":"the object has been modified"}`)
	if _, err := cs.Pods.Update(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "d"}}, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale Update: %v, want Conflict", err)
	}
	if _, err := cs.Pods.Namespace("d").Get(context.Background(), "", metav1.GetOptions{}); err == nil || !strings.Contains(err.Error(), "name may not be empty") {
		t.Errorf("Get with empty name: %v", err)
	}
	if err := cs.Pods.Bind(context.Background(), nil, metav1.CreateOptions{}); err == nil {
		t.Error("Bind(nil) must fail")
	}
}

func TestTypedWatchDecodesT(t *testing.T) {
	f, cs := newFakeAPIServer(t)
	// No kind in the frame: the typed client must still produce *Lease.
	f.answer(200, `{"type":"ADDED","object":{"metadata":{"name":"l","namespace":"kube-system","resourceVersion":"4"}}}`+"\n")
	w, err := cs.Leases.Namespace("kube-system").Watch(context.Background(), metav1.ListOptions{ResourceVersion: "3", AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case ev := <-w.ResultChan():
		l, ok := ev.Object.(*coordinationv1.Lease)
		if ev.Type != watch.Added || !ok || l.Name != "l" {
			t.Fatalf("event = %v %T", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	got := f.last(t)
	if got.Path != "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases" || got.Query != "allowWatchBookmarks=true&resourceVersion=3&watch=true" {
		t.Errorf("watch request = %s?%s", got.Path, got.Query)
	}
}

// fakeNotPointer is a runtime.Object whose value type is used as T, which
// the generic client cannot instantiate.
type fakeNotPointer struct{}

func (fakeNotPointer) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (f fakeNotPointer) DeepCopyObject() runtime.Object { return f }

func TestNewRejectsNonPointerTypes(t *testing.T) {
	_, cs := newFakeAPIServer(t)
	c := New[fakeNotPointer, *corev1.PodList](cs.REST, PodsResource)
	if _, err := c.Get(context.Background(), "x", metav1.GetOptions{}); err == nil || !strings.Contains(err.Error(), "not a pointer") {
		t.Fatalf("err = %v, want 'not a pointer'", err)
	}
}

package rest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

func podEvent(typ, name, rv string) string {
	return fmt.Sprintf(`{"type":%q,"object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":%q,"namespace":"default","resourceVersion":%q}}}`, typ, name, rv)
}

// nextEvent receives one event or fails; the bound only turns a hang into
// a failure.
func nextEvent(t *testing.T, w watch.Interface) (watch.Event, bool) {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		return ev, ok
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return watch.Event{}, false
	}
}

func TestWatchDecodesStream(t *testing.T) {
	srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fl := w.(http.Flusher)
		// Split frames across writes, and two frames in one write, as
		// chunked encoding may deliver them.
		frames := []string{
			podEvent("ADDED", "a", "10") + "\n" + podEvent("MODIFIED", "a", "11") + "\n",
			podEvent("DELETED", "a", "12")[:20],
			podEvent("DELETED", "a", "12")[20:] + "\n",
			`{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"15"}}}` + "\n",
			`{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","code":410,"reason":"Expired","message":"too old resource version: 1 (9)"}}` + "\n",
		}
		for _, f := range frames {
			fmt.Fprint(w, f)
			fl.Flush()
		}
	})
	c := newTestClient(t, Config{Host: srv.URL})
	w, err := c.Get().Version("v1").Namespace("default").Resource("pods").
		Params(ListParams(metav1.ListOptions{ResourceVersion: "9", AllowWatchBookmarks: true})).
		Watch(context.Background(), func() runtime.Object { return &corev1.Pod{} })
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()

	want := []struct {
		typ  watch.EventType
		name string
		rv   string
	}{
		{watch.Added, "a", "10"},
		{watch.Modified, "a", "11"},
		{watch.Deleted, "a", "12"},
		{watch.Bookmark, "", "15"},
	}
	for _, wnt := range want {
		ev, ok := nextEvent(t, w)
		if !ok {
			t.Fatalf("channel closed early, want %s", wnt.typ)
		}
		pod, isPod := ev.Object.(*corev1.Pod)
		if ev.Type != wnt.typ || !isPod || pod.Name != wnt.name || pod.ResourceVersion != wnt.rv {
			t.Fatalf("event = %s %T %+v, want %s %s@%s", ev.Type, ev.Object, ev.Object, wnt.typ, wnt.name, wnt.rv)
		}
	}
	ev, ok := nextEvent(t, w)
	if !ok || ev.Type != watch.Error {
		t.Fatalf("want ERROR event, got %v %v", ev.Type, ok)
	}
	err = apierrors.FromObject(ev.Object)
	if !apierrors.IsResourceExpired(err) {
		t.Errorf("ERROR event %v should be ResourceExpired", err)
	}
	if _, ok := nextEvent(t, w); ok {
		t.Error("channel should close when the server ends the stream")
	}
	q := srv.recorded()[0].RawQuery
	if q != "allowWatchBookmarks=true&resourceVersion=9&watch=true" {
		t.Errorf("watch query = %q", q)
	}
}

func TestWatchDecodesByKindWithoutNewObj(t *testing.T) {
	srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, podEvent("ADDED", "a", "1"))
	})
	c := newTestClient(t, Config{Host: srv.URL})
	w, err := c.Get().Version("v1").Resource("pods").Watch(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ev, _ := nextEvent(t, w)
	if _, ok := ev.Object.(*corev1.Pod); !ok {
		t.Fatalf("object %T, want *v1.Pod from the scheme", ev.Object)
	}
}

func TestWatchBadStreamReportsError(t *testing.T) {
	tests := []struct {
		name, stream, want string
	}{
		{"garbage", "not json at all", "reading stream"},
		{"unknown type", `{"type":"SURPRISE","object":{}}`, "unknown event type"},
		{"undecodable object", `{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":"oops"}}`, "decoding ADDED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, tt.stream) })
			c := newTestClient(t, Config{Host: srv.URL})
			w, err := c.Get().Version("v1").Resource("pods").Watch(context.Background(), func() runtime.Object { return &corev1.Pod{} })
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			ev, ok := nextEvent(t, w)
			if !ok || ev.Type != watch.Error {
				t.Fatalf("got %v %v, want an ERROR event", ev.Type, ok)
			}
			st := ev.Object.(*metav1.Status)
			if st.Code != 500 || !strings.Contains(st.Message, tt.want) {
				t.Errorf("status = %d %q, want 500 containing %q", st.Code, st.Message, tt.want)
			}
			if _, ok := nextEvent(t, w); ok {
				t.Error("watch should end after a stream error")
			}
		})
	}
}

// openStream is a handler that sends one event and then holds the stream
// open until the client goes away, reporting that on gone.
func openStream(gone chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, podEvent("ADDED", "a", "1"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(gone)
	}
}

func TestWatchStopAndCancel(t *testing.T) {
	tests := []struct {
		name string
		end  func(w watch.Interface, cancel context.CancelFunc)
	}{
		{"Stop", func(w watch.Interface, _ context.CancelFunc) { w.Stop(); w.Stop() }},
		{"context cancel", func(_ watch.Interface, cancel context.CancelFunc) { cancel() }},
		{"Stop without reading", func(w watch.Interface, _ context.CancelFunc) { w.Stop() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gone := make(chan struct{})
			srv := newFakeAPIServer(t, false, openStream(gone))
			c := newTestClient(t, Config{Host: srv.URL})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w, err := c.Get().Version("v1").Resource("pods").Watch(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name != "Stop without reading" {
				if ev, ok := nextEvent(t, w); !ok || ev.Type != watch.Added {
					t.Fatalf("first event = %v %v", ev.Type, ok)
				}
			}
			tt.end(w, cancel)
			// The channel must close (draining anything in flight).
			for {
				if _, ok := nextEvent(t, w); !ok {
					break
				}
			}
			select {
			case <-gone:
			case <-time.After(10 * time.Second):
				t.Fatal("server never saw the client disconnect")
			}
		})
	}
}

func TestWatchRejected(t *testing.T) {
	srv := newFakeAPIServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 410, statusBody(410, metav1.StatusReasonExpired, "too old resource version"))
	})
	c := newTestClient(t, Config{Host: srv.URL})
	_, err := c.Get().Version("v1").Resource("pods").Watch(context.Background(), nil)
	if !apierrors.IsResourceExpired(err) {
		t.Fatalf("err = %v, want ResourceExpired", err)
	}
}

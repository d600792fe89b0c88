package events

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// fakeSink stores events in memory, like the API server would.
type fakeSink struct {
	mu      sync.Mutex
	events  map[string]*corev1.Event
	creates int
	patches int
}

func (s *fakeSink) Create(_ context.Context, ev *corev1.Event) (*corev1.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creates++
	cp := ev.DeepCopy()
	s.events[ev.Namespace+"/"+ev.Name] = cp
	return cp.DeepCopy(), nil
}

func (s *fakeSink) Patch(_ context.Context, ns, name string, patch []byte) (*corev1.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.patches++
	ev, ok := s.events[ns+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "events"}, name)
	}
	var p struct {
		Count int32 `json:"count"`
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, err
	}
	ev.Count = p.Count
	return ev.DeepCopy(), nil
}

func (s *fakeSink) snapshot() []*corev1.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*corev1.Event
	for _, ev := range s.events {
		out = append(out, ev.DeepCopy())
	}
	return out
}

func TestBroadcasterAggregatesAndDescribes(t *testing.T) {
	sink := &fakeSink{events: map[string]*corev1.Event{}}
	b := NewBroadcaster(Config{Sink: sink, Component: "test-controller"})
	tick := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b.now = func() time.Time { tick = tick.Add(time.Millisecond); return tick }
	rec := b.Recorder()

	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "u2"}}
	rec.Event(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: web-a")
	rec.Event(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: web-a")
	rec.Eventf(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", "web-b")
	rec.Event(node, corev1.EventTypeWarning, "NodeNotReady", "Node n1 status is now: NodeNotReady")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sink.mu.Lock()
		n := sink.creates + sink.patches
		sink.mu.Unlock()
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink saw %d writes, want 4", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	if sink.creates != 3 || sink.patches != 1 {
		t.Errorf("creates=%d patches=%d, want 3 creates and 1 count patch", sink.creates, sink.patches)
	}
	byMsg := map[string]*corev1.Event{}
	for _, ev := range sink.snapshot() {
		byMsg[ev.Message] = ev
	}
	a := byMsg["Created pod: web-a"]
	if a == nil || a.Count != 2 {
		t.Fatalf("repeated event = %+v, want count 2", a)
	}
	want := corev1.ObjectReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Namespace: "ns", Name: "web", UID: "u1"}
	if a.InvolvedObject != want || a.Namespace != "ns" || a.Source.Component != "test-controller" || a.Type != corev1.EventTypeNormal {
		t.Errorf("event = %+v", a)
	}
	n := byMsg["Node n1 status is now: NodeNotReady"]
	if n == nil || n.Namespace != metav1.NamespaceDefault || n.InvolvedObject.Kind != "Node" || n.Type != corev1.EventTypeWarning {
		t.Errorf("cluster-scoped object's event = %+v, want it in default", n)
	}
}

func TestRecorderNeverBlocks(t *testing.T) {
	b := NewBroadcaster(Config{Sink: &fakeSink{events: map[string]*corev1.Event{}}, Component: "c", Buffer: 2})
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 { // Run is not running: the buffer fills and the rest is dropped
			b.Recorder().Event(rs, corev1.EventTypeNormal, "R", "m")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Event blocked with a full buffer")
	}
	if len(b.ch) != 2 {
		t.Errorf("buffered %d events, want 2", len(b.ch))
	}
}

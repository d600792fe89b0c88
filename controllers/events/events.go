package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/api/scheme"
	"github.com/minik8s/minik8s/client/typed"
)

// Recorder records events about objects. Implementations must not block.
type Recorder interface {
	// Event records that reason happened to obj; eventType is
	// corev1.EventTypeNormal or corev1.EventTypeWarning.
	Event(obj runtime.Object, eventType, reason, message string)
	// Eventf is Event with a formatted message.
	Eventf(obj runtime.Object, eventType, reason, format string, args ...any)
}

// Sink is where a Broadcaster writes events.
type Sink interface {
	Create(ctx context.Context, ev *corev1.Event) (*corev1.Event, error)
	// Patch applies a JSON merge patch to the event ns/name.
	Patch(ctx context.Context, ns, name string, patch []byte) (*corev1.Event, error)
}

// ClientSink writes events through a typed events client.
func ClientSink(c *typed.Client[*corev1.Event, *corev1.EventList]) Sink { return clientSink{c} }

type clientSink struct {
	c *typed.Client[*corev1.Event, *corev1.EventList]
}

func (s clientSink) Create(ctx context.Context, ev *corev1.Event) (*corev1.Event, error) {
	return s.c.Namespace(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
}

func (s clientSink) Patch(ctx context.Context, ns, name string, patch []byte) (*corev1.Event, error) {
	return s.c.Namespace(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
}

// Config configures a Broadcaster.
type Config struct {
	Sink Sink
	// Component is the source of the events, e.g. "replicaset-controller".
	Component string
	// Host is where the component runs (source.host); optional.
	Host string
	// Instance identifies this replica of the component (reportingInstance).
	Instance string
	// Logger also receives every event (component, object, reason); nil
	// means slog.Default().
	Logger *slog.Logger
	// Buffer is how many events may wait to be written; 0 means 1000.
	Buffer int
}

// maxAggregated is how many distinct recent events a Broadcaster
// remembers for folding repeats together.
const maxAggregated = 4096

// writeTimeout bounds one write to the API server.
const writeTimeout = 10 * time.Second

// Broadcaster writes recorded events to the API server from one
// goroutine (Run). Events recorded while Run is not running, or when the
// buffer is full, are dropped with a log line.
type Broadcaster struct {
	cfg Config
	log *slog.Logger
	ch  chan *corev1.Event
	now func() time.Time

	mu   sync.Mutex
	seen map[string]*written // aggregation key -> event written
}

type written struct {
	namespace, name string
	count           int32
}

// NewBroadcaster returns a Broadcaster; start it with Run.
func NewBroadcaster(cfg Config) *Broadcaster {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 1000
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Broadcaster{
		cfg:  cfg,
		log:  log.With("component", cfg.Component),
		ch:   make(chan *corev1.Event, cfg.Buffer),
		now:  time.Now,
		seen: map[string]*written{},
	}
}

// Recorder returns a Recorder feeding this Broadcaster.
func (b *Broadcaster) Recorder() Recorder { return recorder{b} }

// Run writes events until ctx ends.
func (b *Broadcaster) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-b.ch:
			b.write(ctx, ev)
		}
	}
}

type recorder struct{ b *Broadcaster }

func (r recorder) Event(obj runtime.Object, eventType, reason, message string) {
	r.b.record(obj, eventType, reason, message)
}

func (r recorder) Eventf(obj runtime.Object, eventType, reason, format string, args ...any) {
	r.b.record(obj, eventType, reason, fmt.Sprintf(format, args...))
}

// ObjectReference describes obj for an event's involvedObject. Objects
// from informers often lack apiVersion/kind, so those come from the
// scheme.
func ObjectReference(obj runtime.Object) (corev1.ObjectReference, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return corev1.ObjectReference{}, err
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" {
		kinds, _, err := scheme.Scheme.ObjectKinds(obj)
		if err != nil || len(kinds) == 0 {
			return corev1.ObjectReference{}, fmt.Errorf("no kind for %T: %w", obj, err)
		}
		gvk = kinds[0]
	}
	return corev1.ObjectReference{
		APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind,
		Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID(),
		ResourceVersion: m.GetResourceVersion(),
	}, nil
}

func (b *Broadcaster) record(obj runtime.Object, eventType, reason, message string) {
	ref, err := ObjectReference(obj)
	if err != nil {
		b.log.Warn("cannot record event", "reason", reason, "err", err)
		return
	}
	object := ref.Name
	if ref.Namespace != "" {
		object = ref.Namespace + "/" + ref.Name
	}
	level := slog.LevelInfo
	if eventType == corev1.EventTypeWarning {
		level = slog.LevelWarn
	}
	b.log.Log(context.Background(), level, message, "object", object, "kind", ref.Kind, "reason", reason)

	ns := ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault // events about cluster-scoped objects live in default
	}
	now := b.now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Name:      ref.Name + "." + strconv.FormatInt(now.UnixNano(), 16),
		},
		InvolvedObject:      ref,
		Reason:              reason,
		Message:             message,
		Type:                eventType,
		Source:              corev1.EventSource{Component: b.cfg.Component, Host: b.cfg.Host},
		FirstTimestamp:      metav1.NewTime(now),
		LastTimestamp:       metav1.NewTime(now),
		Count:               1,
		ReportingController: b.cfg.Component,
		ReportingInstance:   b.cfg.Instance,
	}
	select {
	case b.ch <- ev:
	default:
		b.log.Warn("event buffer full; dropping event", "object", object, "reason", reason)
	}
}

// aggregationKey identifies "the same event again": same object, type,
// reason and message.
func aggregationKey(ev *corev1.Event) string {
	r := ev.InvolvedObject
	return string(r.UID) + "\x00" + r.Kind + "\x00" + r.Namespace + "\x00" + r.Name + "\x00" +
		ev.Type + "\x00" + ev.Reason + "\x00" + ev.Message
}

func (b *Broadcaster) write(ctx context.Context, ev *corev1.Event) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	key := aggregationKey(ev)
	b.mu.Lock()
	prev := b.seen[key]
	b.mu.Unlock()
	if prev != nil {
		count := prev.count + 1
		patch, _ := json.Marshal(map[string]any{"count": count, "lastTimestamp": ev.LastTimestamp})
		if _, err := b.cfg.Sink.Patch(ctx, prev.namespace, prev.name, patch); err == nil {
			b.remember(key, &written{namespace: prev.namespace, name: prev.name, count: count})
			return
		} else if !apierrors.IsNotFound(err) {
			b.log.Warn("could not update event", "object", ev.InvolvedObject.Name, "reason", ev.Reason, "err", err)
			return
		}
		// The earlier event expired or was deleted: write a new one.
	}
	created, err := b.cfg.Sink.Create(ctx, ev)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("could not write event", "object", ev.InvolvedObject.Name, "reason", ev.Reason, "err", err)
		}
		return
	}
	b.remember(key, &written{namespace: created.Namespace, name: created.Name, count: created.Count})
}

func (b *Broadcaster) remember(key string, w *written) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[key]; !ok && len(b.seen) >= maxAggregated {
		for k := range b.seen { // forget an arbitrary one
			delete(b.seen, k)
			break
		}
	}
	b.seen[key] = w
}

// FakeRecorder keeps events as "Type Reason Message" strings, for tests.
type FakeRecorder struct {
	Events chan string
}

// NewFakeRecorder returns a FakeRecorder buffering up to n events; more
// are dropped.
func NewFakeRecorder(n int) *FakeRecorder { return &FakeRecorder{Events: make(chan string, n)} }

// Event implements Recorder.
func (f *FakeRecorder) Event(_ runtime.Object, eventType, reason, message string) {
	select {
	case f.Events <- eventType + " " + reason + " " + message:
	default:
	}
}

// Eventf implements Recorder.
func (f *FakeRecorder) Eventf(obj runtime.Object, eventType, reason, format string, args ...any) {
	f.Event(obj, eventType, reason, fmt.Sprintf(format, args...))
}

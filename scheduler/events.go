package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/typed"
)

// EventRecorder records an Event about an object. It must not block; the
// recorder of controllers/events satisfies it.
type EventRecorder interface {
	Event(obj runtime.Object, eventType, reason, message string)
}

// Event writing limits: events are best effort, as in Kubernetes. When the
// API server cannot keep up, events are dropped (and counted) rather than
// slowing the scheduler down.
const (
	eventBuffer       = 2048
	eventWriters      = 4
	eventWriteTimeout = 10 * time.Second
)

// apiEventRecorder writes core/v1 Events straight through the typed
// client from a few background writers. It is the stand-in until the
// shared recorder in controllers/events is used.
type apiEventRecorder struct {
	client    *typed.Client[*corev1.Event, *corev1.EventList]
	component string
	instance  string
	log       *slog.Logger
	ch        chan *corev1.Event
	seq       atomic.Uint64
	dropped   prometheus.Counter
}

func newAPIEventRecorder(c *typed.Client[*corev1.Event, *corev1.EventList], component, instance string, log *slog.Logger) *apiEventRecorder {
	return &apiEventRecorder{
		client: c, component: component, instance: instance,
		log: log.With("component", "scheduler-events"),
		ch:  make(chan *corev1.Event, eventBuffer),
	}
}

// Event queues an event about obj (usually a pod) for writing.
func (r *apiEventRecorder) Event(obj runtime.Object, eventType, reason, message string) {
	m, err := meta.Accessor(obj)
	if err != nil {
		r.log.Error("cannot record event", "reason", reason, "err", err)
		return
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	kind, apiVersion := gvk.Kind, gvk.GroupVersion().String()
	if _, ok := obj.(*corev1.Pod); ok {
		// Objects from informers lose their TypeMeta.
		kind, apiVersion = "Pod", "v1"
	}
	now := metav1.Now()
	ns := m.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			// Kubernetes' naming: object name, a dot, a unique hex suffix.
			Name: fmt.Sprintf("%s.%x", m.GetName(), uint64(now.UnixNano())+r.seq.Add(1)),
		},
		InvolvedObject: corev1.ObjectReference{
			Kind: kind, APIVersion: apiVersion, Namespace: m.GetNamespace(), Name: m.GetName(),
			UID: m.GetUID(), ResourceVersion: m.GetResourceVersion(),
		},
		Reason: reason, Message: message, Type: eventType,
		Source:              corev1.EventSource{Component: r.component},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: r.component,
		ReportingInstance:   r.instance,
	}
	select {
	case r.ch <- ev:
	default:
		if r.dropped != nil {
			r.dropped.Inc()
		}
		r.log.Debug("event buffer full; dropping event", "object", ns+"/"+m.GetName(), "reason", reason)
	}
}

// Run writes queued events until ctx ends.
func (r *apiEventRecorder) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range eventWriters {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-r.ch:
					r.write(ctx, ev)
				}
			}
		})
	}
	wg.Wait()
}

func (r *apiEventRecorder) write(ctx context.Context, ev *corev1.Event) {
	ctx, cancel := context.WithTimeout(ctx, eventWriteTimeout)
	defer cancel()
	_, err := r.client.Namespace(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	if err != nil && ctx.Err() == nil && !apierrors.IsAlreadyExists(err) {
		r.log.Warn("could not write event", "object", ev.InvolvedObject.Namespace+"/"+ev.InvolvedObject.Name,
			"reason", ev.Reason, "err", err)
	}
}

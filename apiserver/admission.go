package apiserver

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/storage"
)

func schemaGR(resource string) schema.GroupResource { return schema.GroupResource{Resource: resource} }

// namespaceLifecycle is the admission rule that new objects go only into
// namespaces that exist and are not being deleted. It keeps a watch-fed map
// of namespace phases so the common case costs no etcd read; a namespace
// missing from the map (created a moment ago) is checked in etcd before the
// request is refused.
type namespaceLifecycle struct {
	store storage.Interface
	log   *slog.Logger

	mu     sync.RWMutex
	phases map[string]corev1.NamespacePhase
}

func newNamespaceLifecycle(ctx context.Context, store storage.Interface, log *slog.Logger) *namespaceLifecycle {
	n := &namespaceLifecycle{store: store, log: log, phases: map[string]corev1.NamespacePhase{}}
	go n.run(ctx)
	return n
}

// run keeps phases in step with etcd until ctx ends, re-watching on errors.
func (n *namespaceLifecycle) run(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := n.store.Watch(ctx, "/registry/namespaces/", storage.WatchOptions{ResourceVersion: "0"})
		if err != nil {
			n.log.Warn("namespace watch failed; retrying", "component", "apiserver", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		n.mu.Lock()
		n.phases = map[string]corev1.NamespacePhase{} // the watch starts with ADDED for all
		n.mu.Unlock()
		for ev := range w.ResultChan() {
			ns, ok := ev.Object.(*corev1.Namespace)
			if !ok {
				continue
			}
			n.mu.Lock()
			switch ev.Type {
			case watch.Added, watch.Modified:
				n.phases[ns.Name] = ns.Status.Phase
			case watch.Deleted:
				delete(n.phases, ns.Name)
			}
			n.mu.Unlock()
		}
		w.Stop()
	}
}

// Admit implements rest.NamespaceChecker.
func (n *namespaceLifecycle) Admit(ctx context.Context, namespace string) error {
	n.mu.RLock()
	phase, ok := n.phases[namespace]
	n.mu.RUnlock()
	// The map follows a watch and may lag: a namespace deleted and created
	// again can still show as Terminating here. Refusals are rare, so
	// confirm them (and unknown names) with a read from etcd.
	if !ok || phase == corev1.NamespaceTerminating {
		ns := &corev1.Namespace{}
		if err := n.store.Get(ctx, "/registry/namespaces/"+namespace, ns); err != nil {
			if storage.IsNotFound(err) {
				return apierrors.NewNotFound(schemaGR("namespaces"), namespace)
			}
			return err
		}
		phase = ns.Status.Phase
	}
	if phase == corev1.NamespaceTerminating {
		return apierrors.NewForbidden(schemaGR(""), "", fmt.Errorf(
			"unable to create new content in namespace %s because it is being terminated", namespace))
	}
	return nil
}

package apiserver

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
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
// request is refused. Namespace writes made through this server are
// recorded at once (observe), so a client that deleted a namespace is
// refused new content in it right away, not only once the watch catches up.
type namespaceLifecycle struct {
	store storage.Interface
	log   *slog.Logger

	mu     sync.RWMutex
	phases map[string]nsPhase
}

// nsPhase is a namespace's phase and the revision it was seen at, so an
// older watch event never overwrites a newer observed write.
type nsPhase struct {
	phase corev1.NamespacePhase
	rev   int64
}

func newNamespaceLifecycle(ctx context.Context, store storage.Interface, log *slog.Logger) *namespaceLifecycle {
	n := &namespaceLifecycle{store: store, log: log, phases: map[string]nsPhase{}}
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
		n.phases = map[string]nsPhase{} // the watch starts with ADDED for all
		n.mu.Unlock()
		for ev := range w.ResultChan() {
			if ns, ok := ev.Object.(*corev1.Namespace); ok {
				n.record(ns, ev.Type == watch.Deleted)
			}
		}
		w.Stop()
	}
}

// record stores what a watch event or a write says about ns, unless a
// newer revision is already known.
func (n *namespaceLifecycle) record(ns *corev1.Namespace, deleted bool) {
	rev, _ := strconv.ParseInt(ns.ResourceVersion, 10, 64)
	n.mu.Lock()
	defer n.mu.Unlock()
	if cur, ok := n.phases[ns.Name]; ok && cur.rev > rev {
		return
	}
	if deleted {
		delete(n.phases, ns.Name)
		return
	}
	n.phases[ns.Name] = nsPhase{phase: ns.Status.Phase, rev: rev}
}

// observe is the namespaces AfterWrite hook: a write this server just made.
func (n *namespaceLifecycle) observe(_ context.Context, obj runtime.Object) {
	if ns, ok := obj.(*corev1.Namespace); ok {
		n.record(ns, false)
	}
}

// Admit implements rest.NamespaceChecker.
func (n *namespaceLifecycle) Admit(ctx context.Context, namespace string) error {
	n.mu.RLock()
	cached, ok := n.phases[namespace]
	n.mu.RUnlock()
	phase := cached.phase
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

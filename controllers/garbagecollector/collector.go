package garbagecollector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/controllers"
)

// Name is the controller's name in logs and metrics.
const Name = "garbage-collector"

// ownerIndex files objects under the UIDs of their owners.
const ownerIndex = "gc-owner-uid"

// The finalizers the API server adds for propagation policies.
const (
	finalizerOrphan     = metav1.FinalizerOrphanDependents
	finalizerForeground = metav1.FinalizerDeleteDependents
)

// Collector is the garbage collector.
type Collector struct {
	monitors []*monitor
	byRes    map[string]*monitor
	byKind   map[schema.GroupKind]*monitor
	ctrl     *controllers.Controller
	log      *slog.Logger

	mu           sync.Mutex
	unknownKinds map[schema.GroupKind]bool
}

// New builds the collector on the factory's shared informers; start the
// factory, then Run.
func New(f *informer.Factory, cs *typed.Clientset, opts controllers.Options) (*Collector, error) {
	c := &Collector{
		monitors:     monitors(f, cs),
		byRes:        map[string]*monitor{},
		byKind:       map[schema.GroupKind]*monitor{},
		unknownKinds: map[schema.GroupKind]bool{},
	}
	var synced []informer.Syncer
	for _, m := range c.monitors {
		c.byRes[m.res.String()] = m
		c.byKind[m.kind.GroupKind()] = m
		synced = append(synced, m.inf)
	}
	ctrl, err := controllers.New(Name, c.reconcile, opts, synced...)
	if err != nil {
		return nil, err
	}
	c.ctrl, c.log = ctrl, ctrl.Logger()
	for _, m := range c.monitors {
		if err := m.inf.AddIndexers(informer.Indexers{ownerIndex: ownerUIDs}); err != nil {
			return nil, fmt.Errorf("%s: indexing %s: %w", Name, m.res, err)
		}
		if err := m.inf.AddEventHandler(c.handler(m)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Run collects with workers until ctx ends.
func (c *Collector) Run(ctx context.Context, workers int) error { return c.ctrl.Run(ctx, workers) }

func ownerUIDs(obj runtime.Object) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	refs := m.GetOwnerReferences()
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, string(r.UID))
	}
	return out, nil
}

// handler enqueues, for every change of an object of m's kind: the object
// itself if it has owners or is being deleted; its dependents if it is
// gone or going; and its owners that are waiting for their dependents.
func (c *Collector) handler(m *monitor) informer.Handler {
	return informer.Handler{
		AddFunc: func(obj runtime.Object) { c.changed(m, nil, obj, false) },
		UpdateFunc: func(old, obj runtime.Object) {
			c.changed(m, old, obj, false)
		},
		DeleteFunc: func(obj any) {
			if o, ok := obj.(runtime.Object); ok {
				c.changed(m, nil, o, true)
			} else if t, ok := obj.(informer.DeletedFinalStateUnknown); ok && t.Obj != nil {
				c.changed(m, nil, t.Obj, true)
			}
		},
	}
}

func (c *Collector) changed(m *monitor, oldObj, obj runtime.Object, deleted bool) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	going := deleted || acc.GetDeletionTimestamp() != nil
	if !deleted && (len(acc.GetOwnerReferences()) > 0 || acc.GetDeletionTimestamp() != nil) {
		c.ctrl.EnqueueKey(m.key(acc.GetNamespace(), acc.GetName()))
	}
	if going {
		for _, d := range c.dependents(acc.GetUID()) {
			c.ctrl.EnqueueKey(d.key())
		}
	}
	refs := acc.GetOwnerReferences()
	if oldObj != nil {
		if old, err := meta.Accessor(oldObj); err == nil {
			refs = append(slices.Clone(refs), old.GetOwnerReferences()...)
		}
	}
	for _, ref := range refs {
		om := c.byKind[groupKind(ref)]
		if om == nil {
			continue
		}
		ns := ""
		if om.res.Namespaced {
			ns = acc.GetNamespace()
		}
		if owner, ok := c.cached(om, ns, ref.Name); ok && owner.GetUID() == ref.UID && owner.GetDeletionTimestamp() != nil {
			c.ctrl.EnqueueKey(om.key(ns, ref.Name))
		}
	}
}

func groupKind(ref metav1.OwnerReference) schema.GroupKind {
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	return schema.GroupKind{Group: gv.Group, Kind: ref.Kind}
}

// cached returns the object ns/name of m's kind from the informer cache.
func (c *Collector) cached(m *monitor, ns, name string) (metav1.Object, bool) {
	key := name
	if ns != "" {
		key = ns + "/" + name
	}
	obj, ok := m.inf.Indexer().Get(key)
	if !ok {
		return nil, false
	}
	acc, err := meta.Accessor(obj)
	return acc, err == nil
}

// dependent is an object that names some owner.
type dependent struct {
	m   *monitor
	obj metav1.Object
}

func (d dependent) key() string { return d.m.key(d.obj.GetNamespace(), d.obj.GetName()) }

func (d dependent) String() string {
	return d.m.kind.Kind + " " + strings.TrimPrefix(d.obj.GetNamespace()+"/"+d.obj.GetName(), "/")
}

// dependents are the cached objects with an ownerReference to uid.
func (c *Collector) dependents(uid types.UID) []dependent {
	var out []dependent
	for _, m := range c.monitors {
		objs, err := m.inf.Indexer().ByIndex(ownerIndex, string(uid))
		if err != nil {
			continue
		}
		for _, o := range objs {
			if acc, err := meta.Accessor(o); err == nil {
				out = append(out, dependent{m, acc})
			}
		}
	}
	return out
}

func splitKey(key string) (res, ns, name string, err error) {
	res, rest, ok := strings.Cut(key, "|")
	if !ok {
		return "", "", "", fmt.Errorf("malformed key %q", key)
	}
	ns, name, err = informer.SplitMetaNamespaceKey(rest)
	return res, ns, name, err
}

// reconcile handles one object: the finalizers of an owner being deleted,
// or the owners of a dependent.
func (c *Collector) reconcile(ctx context.Context, key string) (controllers.Result, error) {
	res, ns, name, err := splitKey(key)
	if err != nil {
		return controllers.Result{}, nil
	}
	m := c.byRes[res]
	if m == nil {
		return controllers.Result{}, nil
	}
	obj, ok := c.cached(m, ns, name)
	if !ok {
		return controllers.Result{}, nil // gone: its dependents were enqueued by the delete
	}
	what := m.kind.Kind + " " + strings.TrimPrefix(ns+"/"+name, "/")
	if obj.GetDeletionTimestamp() != nil {
		fins := obj.GetFinalizers()
		switch {
		case slices.Contains(fins, finalizerOrphan):
			err = c.orphanDependents(ctx, m, obj)
		case slices.Contains(fins, finalizerForeground):
			err = c.deleteDependentsFirst(ctx, m, obj)
		}
		if err != nil {
			return controllers.Result{}, fmt.Errorf("%s: %w", what, err)
		}
		return controllers.Result{}, nil
	}
	if len(obj.GetOwnerReferences()) == 0 {
		return controllers.Result{}, nil
	}
	if err := c.checkOwners(ctx, m, obj); err != nil {
		return controllers.Result{}, fmt.Errorf("%s: %w", what, err)
	}
	return controllers.Result{}, nil
}

type ownerState int

const (
	ownerPresent ownerState = iota
	ownerAbsent
	ownerWaiting // being deleted in the foreground, waiting for its dependents
)

// owner reports the state of the owner ref points to, for a dependent in
// namespace ns. Absence in the cache is confirmed with the API server.
func (c *Collector) owner(ctx context.Context, ns string, ref metav1.OwnerReference) (ownerState, error) {
	gk := groupKind(ref)
	m := c.byKind[gk]
	if m == nil {
		c.mu.Lock()
		first := !c.unknownKinds[gk]
		c.unknownKinds[gk] = true
		c.mu.Unlock()
		if first {
			c.log.Warn("owner of a kind the collector does not watch; treating it as present", "kind", gk.String(), "reason", "UnknownOwnerKind")
		}
		return ownerPresent, nil
	}
	if !m.res.Namespaced {
		ns = ""
	}
	o, ok := c.cached(m, ns, ref.Name)
	if !ok || o.GetUID() != ref.UID {
		live, err := m.client.Get(ctx, ns, ref.Name)
		switch {
		case apierrors.IsNotFound(err):
			return ownerAbsent, nil
		case err != nil:
			return ownerPresent, fmt.Errorf("looking up owner %s %s: %w", ref.Kind, ref.Name, err)
		case live.GetUID() != ref.UID:
			return ownerAbsent, nil // same name, different object
		}
		o = live
	}
	if o.GetDeletionTimestamp() != nil && slices.Contains(o.GetFinalizers(), finalizerForeground) {
		return ownerWaiting, nil
	}
	return ownerPresent, nil
}

// checkOwners deletes obj when none of its owners is still there, and
// drops references to owners that are gone (or waiting for it) when
// others remain.
func (c *Collector) checkOwners(ctx context.Context, m *monitor, obj metav1.Object) error {
	var solid, drop []metav1.OwnerReference
	waiting := false
	for _, ref := range obj.GetOwnerReferences() {
		st, err := c.owner(ctx, obj.GetNamespace(), ref)
		if err != nil {
			return err
		}
		switch st {
		case ownerPresent:
			solid = append(solid, ref)
		case ownerWaiting:
			waiting = true
			drop = append(drop, ref)
		case ownerAbsent:
			drop = append(drop, ref)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	if len(solid) > 0 {
		uids := make([]types.UID, len(drop))
		for i, r := range drop {
			uids[i] = r.UID
		}
		c.log.Info("removing references to owners that are gone", "object", dependent{m, obj}.String(), "reason", "DanglingOwnerReference")
		return ignoreNotFound(m.client.Patch(ctx, obj.GetNamespace(), obj.GetName(), types.StrategicMergePatchType, removeOwnersPatch(uids)))
	}
	// Every owner is gone or going: so is obj. With an owner deleting in
	// the foreground, obj goes in the foreground too, so the owner also
	// waits for obj's own blocking dependents.
	policy := metav1.DeletePropagationBackground
	if waiting {
		policy = metav1.DeletePropagationForeground
	}
	c.log.Info("deleting object whose owners are gone", "object", dependent{m, obj}.String(), "reason", "OwnersGone", "propagation", policy)
	// Only the version judged here: if obj changed since the cache saw it
	// (say an orphaning just removed its owner references), the delete
	// fails with a conflict and the change's own event re-judges it.
	rv := obj.GetResourceVersion()
	return c.delete(ctx, dependent{m, obj}, policy, &rv)
}

// delete removes d (the object with d's uid, and with resourceVersion rv
// if rv is not nil); a conflict means it is no longer the object judged.
func (c *Collector) delete(ctx context.Context, d dependent, policy metav1.DeletionPropagation, rv *string) error {
	uid := d.obj.GetUID()
	err := d.m.client.Delete(ctx, d.obj.GetNamespace(), d.obj.GetName(), metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &uid, ResourceVersion: rv},
	})
	if apierrors.IsConflict(err) {
		return nil // a different object has the name now
	}
	return ignoreNotFound(err)
}

// orphanDependents removes owner from every dependent's ownerReferences,
// then the orphan finalizer from owner.
func (c *Collector) orphanDependents(ctx context.Context, m *monitor, owner metav1.Object) error {
	var errs []error
	for _, d := range c.dependents(owner.GetUID()) {
		err := d.m.client.Patch(ctx, d.obj.GetNamespace(), d.obj.GetName(), types.StrategicMergePatchType,
			removeOwnersPatch([]types.UID{owner.GetUID()}))
		if err = ignoreNotFound(err); err != nil {
			errs = append(errs, fmt.Errorf("orphaning %s: %w", d, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.log.Info("orphaned dependents", "object", dependent{m, owner}.String(), "reason", "OrphanDependents")
	return c.removeFinalizer(ctx, m, owner, finalizerOrphan)
}

// deleteDependentsFirst deletes owner's dependents and removes the
// foregroundDeletion finalizer once none that blocks owner deletion is
// left.
func (c *Collector) deleteDependentsFirst(ctx context.Context, m *monitor, owner metav1.Object) error {
	blocking := 0
	var errs []error
	for _, d := range c.dependents(owner.GetUID()) {
		if d.obj.GetDeletionTimestamp() == nil {
			if err := c.delete(ctx, d, metav1.DeletePropagationForeground, nil); err != nil {
				errs = append(errs, fmt.Errorf("deleting dependent %s: %w", d, err))
			}
		}
		for _, ref := range d.obj.GetOwnerReferences() {
			if ref.UID == owner.GetUID() && ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
				blocking++
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if blocking > 0 {
		// Their deletions enqueue owner again.
		return nil
	}
	c.log.Info("dependents deleted; letting owner go", "object", dependent{m, owner}.String(), "reason", "ForegroundDeletion")
	return c.removeFinalizer(ctx, m, owner, finalizerForeground)
}

// removeFinalizer drops fin from the live object, with a resourceVersion
// precondition so no concurrent finalizer change is lost.
func (c *Collector) removeFinalizer(ctx context.Context, m *monitor, obj metav1.Object, fin string) error {
	for range 5 {
		live, err := m.client.Get(ctx, obj.GetNamespace(), obj.GetName())
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("removing finalizer %s: %w", fin, err)
		}
		if live.GetUID() != obj.GetUID() || !slices.Contains(live.GetFinalizers(), fin) {
			return nil
		}
		rest := slices.DeleteFunc(slices.Clone(live.GetFinalizers()), func(f string) bool { return f == fin })
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
			"finalizers": rest, "resourceVersion": live.GetResourceVersion()}})
		err = m.client.Patch(ctx, obj.GetNamespace(), obj.GetName(), types.MergePatchType, patch)
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case apierrors.IsConflict(err):
			continue
		default:
			return fmt.Errorf("removing finalizer %s: %w", fin, err)
		}
	}
	return fmt.Errorf("removing finalizer %s: still conflicting after retries", fin)
}

// removeOwnersPatch is a strategic merge patch deleting the
// ownerReferences with the given UIDs.
func removeOwnersPatch(uids []types.UID) []byte {
	refs := make([]map[string]any, len(uids))
	for i, u := range uids {
		refs[i] = map[string]any{"$patch": "delete", "uid": string(u)}
	}
	data, _ := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": refs}})
	return data
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

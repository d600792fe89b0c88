package informer

import (
	"context"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
)

// FactoryOptions scope every informer a Factory makes.
type FactoryOptions struct {
	// Namespace limits informers of namespaced resources to one namespace;
	// "" means all namespaces.
	Namespace string
	// TweakListOptions adjusts every list and watch, e.g. a kubelet's
	// field selector spec.nodeName=<node>. Informers with different
	// filters need different factories.
	TweakListOptions func(*metav1.ListOptions)
	// ResyncPeriod is the default resync of handlers (0 = none).
	ResyncPeriod time.Duration
	// Logger for the informers; nil means slog.Default().
	Logger *slog.Logger
}

// Factory hands out one shared Informer per resource, so all controllers
// in a process watch each resource once (DESIGN rule 7).
type Factory struct {
	rest *rest.Client
	opts FactoryOptions

	mu        sync.Mutex
	informers map[typed.Resource]*Informer
	started   map[typed.Resource]bool
	wg        sync.WaitGroup
}

// NewFactory returns a Factory making informers over c.
func NewFactory(c *rest.Client, opts FactoryOptions) *Factory {
	return &Factory{
		rest:      c,
		opts:      opts,
		informers: map[typed.Resource]*Informer{},
		started:   map[typed.Resource]bool{},
	}
}

// InformerFor returns the shared informer for res, creating it with lw on
// first use (later calls ignore lw).
func (f *Factory) InformerFor(res typed.Resource, lw ListerWatcher) *Informer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if inf, ok := f.informers[res]; ok {
		return inf
	}
	inf := New(lw, Options{
		Resource:     schema.GroupResource{Group: res.Group, Resource: res.Resource},
		ResyncPeriod: f.opts.ResyncPeriod,
		Logger:       f.opts.Logger,
	})
	f.informers[res] = inf
	return inf
}

// Typed is a shared informer that knows its object type.
type Typed[T runtime.Object] struct {
	*Informer
}

// Lister reads the informer's cache as T.
func (t Typed[T]) Lister() Lister[T] { return NewLister[T](t.Informer) }

// For returns the shared informer for res, listing and watching through a
// typed client of T/L scoped by the factory's options.
func For[T runtime.Object, L runtime.Object](f *Factory, res typed.Resource) Typed[T] {
	f.mu.Lock()
	inf, ok := f.informers[res]
	f.mu.Unlock()
	if ok {
		return Typed[T]{inf}
	}
	c := typed.New[T, L](f.rest, res).Namespace(f.opts.Namespace)
	return Typed[T]{f.InformerFor(res, FromTyped[L](c, f.opts.TweakListOptions))}
}

// Start runs every informer created so far that is not running yet, each
// in a goroutine that ends when ctx does. Call it again after asking for
// more informers.
func (f *Factory) Start(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for res, inf := range f.informers {
		if f.started[res] {
			continue
		}
		f.started[res] = true
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := inf.Run(ctx); err != nil {
				inf.log.Error("informer did not run", "err", err)
			}
		}()
	}
}

// Wait blocks until every informer started by Start has returned (after
// their context ended).
func (f *Factory) Wait() { f.wg.Wait() }

// HasSynced reports whether every informer created so far has synced.
func (f *Factory) HasSynced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, inf := range f.informers {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

// WaitForCacheSync waits until every informer created so far has synced.
func (f *Factory) WaitForCacheSync(ctx context.Context) bool {
	return WaitForCacheSync(ctx, f)
}

// The shared informers for the resources minik8s serves.

// Namespaces is the shared namespaces informer.
func (f *Factory) Namespaces() Typed[*corev1.Namespace] {
	return For[*corev1.Namespace, *corev1.NamespaceList](f, typed.NamespacesResource)
}

// Nodes is the shared nodes informer.
func (f *Factory) Nodes() Typed[*corev1.Node] {
	return For[*corev1.Node, *corev1.NodeList](f, typed.NodesResource)
}

// Pods is the shared pods informer.
func (f *Factory) Pods() Typed[*corev1.Pod] {
	return For[*corev1.Pod, *corev1.PodList](f, typed.PodsResource)
}

// Services is the shared services informer.
func (f *Factory) Services() Typed[*corev1.Service] {
	return For[*corev1.Service, *corev1.ServiceList](f, typed.ServicesResource)
}

// Endpoints is the shared endpoints informer.
func (f *Factory) Endpoints() Typed[*corev1.Endpoints] {
	return For[*corev1.Endpoints, *corev1.EndpointsList](f, typed.EndpointsResource)
}

// ConfigMaps is the shared configmaps informer.
func (f *Factory) ConfigMaps() Typed[*corev1.ConfigMap] {
	return For[*corev1.ConfigMap, *corev1.ConfigMapList](f, typed.ConfigMapsResource)
}

// Secrets is the shared secrets informer.
func (f *Factory) Secrets() Typed[*corev1.Secret] {
	return For[*corev1.Secret, *corev1.SecretList](f, typed.SecretsResource)
}

// Events is the shared events informer.
func (f *Factory) Events() Typed[*corev1.Event] {
	return For[*corev1.Event, *corev1.EventList](f, typed.EventsResource)
}

// ReplicaSets is the shared replicasets informer.
func (f *Factory) ReplicaSets() Typed[*appsv1.ReplicaSet] {
	return For[*appsv1.ReplicaSet, *appsv1.ReplicaSetList](f, typed.ReplicaSetsResource)
}

// Deployments is the shared deployments informer.
func (f *Factory) Deployments() Typed[*appsv1.Deployment] {
	return For[*appsv1.Deployment, *appsv1.DeploymentList](f, typed.DeploymentsResource)
}

// Leases is the shared leases informer.
func (f *Factory) Leases() Typed[*coordinationv1.Lease] {
	return For[*coordinationv1.Lease, *coordinationv1.LeaseList](f, typed.LeasesResource)
}

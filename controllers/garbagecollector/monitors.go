package garbagecollector

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/typed"
)

// objectClient is what the collector needs to write any kind.
type objectClient interface {
	Get(ctx context.Context, ns, name string) (metav1.Object, error)
	Delete(ctx context.Context, ns, name string, opts metav1.DeleteOptions) error
	Patch(ctx context.Context, ns, name string, pt types.PatchType, data []byte) error
}

type typedClient[T runtime.Object, L runtime.Object] struct {
	c *typed.Client[T, L]
}

func (t typedClient[T, L]) Get(ctx context.Context, ns, name string) (metav1.Object, error) {
	obj, err := t.c.Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return meta.Accessor(obj)
}

func (t typedClient[T, L]) Delete(ctx context.Context, ns, name string, opts metav1.DeleteOptions) error {
	return t.c.Namespace(ns).Delete(ctx, name, opts)
}

func (t typedClient[T, L]) Patch(ctx context.Context, ns, name string, pt types.PatchType, data []byte) error {
	_, err := t.c.Namespace(ns).Patch(ctx, name, pt, data, metav1.PatchOptions{})
	return err
}

// monitor is one kind the collector watches.
type monitor struct {
	res    typed.Resource
	kind   schema.GroupVersionKind
	inf    *informer.Informer
	client objectClient
}

// key is the workqueue key of an object of this kind.
func (m *monitor) key(ns, name string) string {
	if ns == "" {
		return m.res.String() + "|" + name
	}
	return m.res.String() + "|" + ns + "/" + name
}

func newMonitor[T runtime.Object, L runtime.Object](t informer.Typed[T], c *typed.Client[T, L], kind schema.GroupVersionKind) *monitor {
	return &monitor{res: c.Resource(), kind: kind, inf: t.Informer, client: typedClient[T, L]{c}}
}

// monitors are every kind minik8s serves except events.
func monitors(f *informer.Factory, cs *typed.Clientset) []*monitor {
	core := corev1.SchemeGroupVersion.WithKind
	apps := appsv1.SchemeGroupVersion.WithKind
	coord := coordinationv1.SchemeGroupVersion.WithKind
	return []*monitor{
		newMonitor(f.Pods(), cs.Pods.Client, core("Pod")),
		newMonitor(f.ReplicaSets(), cs.ReplicaSets.Client, apps("ReplicaSet")),
		newMonitor(f.Deployments(), cs.Deployments.Client, apps("Deployment")),
		newMonitor(f.Services(), cs.Services, core("Service")),
		newMonitor(f.Endpoints(), cs.Endpoints, core("Endpoints")),
		newMonitor(f.ConfigMaps(), cs.ConfigMaps, core("ConfigMap")),
		newMonitor(f.Secrets(), cs.Secrets, core("Secret")),
		newMonitor(f.Leases(), cs.Leases, coord("Lease")),
		newMonitor(f.Nodes(), cs.Nodes, core("Node")),
		newMonitor(f.Namespaces(), cs.Namespaces, core("Namespace")),
	}
}

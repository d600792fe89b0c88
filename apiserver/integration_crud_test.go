package apiserver_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// itCRUDClient is the shape every client-go typed client has.
type itCRUDClient[T runtime.Object, L runtime.Object] interface {
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

type itObject interface {
	runtime.Object
	metav1.Object
}

// itCRUDCase describes one kind for runCRUD.
type itCRUDCase[T itObject, L runtime.Object] struct {
	client itCRUDClient[T, L]
	// make builds a valid object named name (generateName if name is "").
	make func(name string) T
	// key is the etcd key of the object called name.
	key func(name string) string
	// mutate changes something in the object's content for the update step
	// and check verifies it was stored.
	mutate func(T)
	check  func(T) error
	// lingers: a deleted object stays (with a deletionTimestamp) until a
	// controller lets it go (namespaces).
	lingers bool
}

func itListNames(t testing.TB, list runtime.Object) []string {
	t.Helper()
	items, err := meta.ExtractList(list)
	if err != nil {
		t.Fatalf("extract list %T: %v", list, err)
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		m, err := meta.Accessor(it)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.GetName())
	}
	return out
}

// itRunCRUD creates, reads, lists, updates, patches and deletes one object
// of a kind through client-go, checking server-owned metadata and that
// every resourceVersion is the etcd revision of the write.
func itRunCRUD[T itObject, L runtime.Object](t *testing.T, s *apiservertest.Server, name string, c itCRUDCase[T, L]) {
	ctx := itCtx(t)

	created, err := c.client.Create(ctx, c.make(name), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if created.GetUID() == "" {
		t.Errorf("create: uid not set")
	}
	if ts := created.GetCreationTimestamp(); ts.IsZero() {
		t.Errorf("create: creationTimestamp not set")
	}
	if created.GetName() != name {
		t.Errorf("create: name %q, want %q", created.GetName(), name)
	}
	rv1 := itRV(t, created.GetResourceVersion())
	if got := itEtcdRev(t, s, c.key(name)); got != rv1 {
		t.Errorf("create: resourceVersion %d, etcd ModRevision %d", rv1, got)
	}

	got, err := c.client.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.GetUID() != created.GetUID() || got.GetResourceVersion() != created.GetResourceVersion() {
		t.Errorf("get: uid/rv %s/%s, want %s/%s", got.GetUID(), got.GetResourceVersion(), created.GetUID(), created.GetResourceVersion())
	}

	list, err := c.client.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if n := itListNames(t, list); !slices.Contains(n, name) {
		t.Errorf("list: %v does not contain %s", n, name)
	}
	lm, _ := meta.ListAccessor(list)
	if itRV(t, lm.GetResourceVersion()) < rv1 {
		t.Errorf("list resourceVersion %s is older than the created object's %d", lm.GetResourceVersion(), rv1)
	}

	c.mutate(got)
	labels := got.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels["updated"] = "yes"
	got.SetLabels(labels)
	updated, err := c.client.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	rv2 := itRV(t, updated.GetResourceVersion())
	if rv2 <= rv1 {
		t.Errorf("update: resourceVersion %d did not advance past %d", rv2, rv1)
	}
	if e := itEtcdRev(t, s, c.key(name)); e != rv2 {
		t.Errorf("update: resourceVersion %d, etcd ModRevision %d", rv2, e)
	}
	if updated.GetUID() != created.GetUID() || !itPtr(updated.GetCreationTimestamp()).Equal(itPtr(created.GetCreationTimestamp())) {
		t.Errorf("update changed uid or creationTimestamp")
	}
	reread, err := c.client.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get after update: %v", err)
	}
	if err := c.check(reread); err != nil {
		t.Errorf("update not stored: %v", err)
	}
	if reread.GetLabels()["updated"] != "yes" {
		t.Errorf("update: labels %v", reread.GetLabels())
	}

	patched, err := c.client.Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"labels":{"patched":"yes"}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("patch: %v", err)
	}
	rv3 := itRV(t, patched.GetResourceVersion())
	if rv3 <= rv2 {
		t.Errorf("patch: resourceVersion %d did not advance past %d", rv3, rv2)
	}
	if e := itEtcdRev(t, s, c.key(name)); e != rv3 {
		t.Errorf("patch: resourceVersion %d, etcd ModRevision %d", rv3, e)
	}
	if l := patched.GetLabels(); l["patched"] != "yes" || l["updated"] != "yes" {
		t.Errorf("patch: labels %v", l)
	}

	// generateName: the server picks a unique name with the prefix.
	gen := c.make("")
	gen.SetGenerateName(strings.ReplaceAll(name, ".", "-") + "-")
	g1, err := c.client.Create(ctx, gen, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create with generateName: %v", err)
	}
	g2, err := c.client.Create(ctx, gen, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("second create with generateName: %v", err)
	}
	for _, g := range []T{g1, g2} {
		if !strings.HasPrefix(g.GetName(), gen.GetGenerateName()) || len(g.GetName()) <= len(gen.GetGenerateName()) {
			t.Errorf("generated name %q does not extend %q", g.GetName(), gen.GetGenerateName())
		}
	}
	if g1.GetName() == g2.GetName() {
		t.Errorf("two creates with generateName got the same name %q", g1.GetName())
	}

	if err := c.client.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	after, err := c.client.Get(ctx, name, metav1.GetOptions{})
	if c.lingers {
		if err != nil {
			t.Fatalf("get after delete: %v", err)
		}
		if after.GetDeletionTimestamp() == nil {
			t.Errorf("deleted object lingers without a deletionTimestamp")
		}
	} else {
		if !apierrors.IsNotFound(err) {
			t.Fatalf("get after delete: want NotFound, got %v", err)
		}
		if resp, err := s.EtcdClient().Get(ctx, c.key(name)); err != nil || len(resp.Kvs) != 0 {
			t.Errorf("etcd still holds %s after delete (%v)", c.key(name), err)
		}
		if err := c.client.Delete(ctx, name, metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("second delete: want NotFound, got %v", err)
		}
	}
}

func itNSKey(resource, ns string) func(string) string {
	return func(name string) string { return "/registry/" + resource + "/" + ns + "/" + name }
}

func itClusterKey(resource string) func(string) string {
	return func(name string) string { return "/registry/" + resource + "/" + name }
}

func itMeta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

func itDeployment(name string, replicas int32, app string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: itMeta(name),
		Spec: appsv1.DeploymentSpec{
			Replicas: itPtr(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "web", Image: "minik8s.local/web:v1"},
				}},
			},
		},
	}
}

func itReplicaSet(name string, replicas int32, app string) *appsv1.ReplicaSet {
	d := itDeployment(name, replicas, app)
	return &appsv1.ReplicaSet{ObjectMeta: d.ObjectMeta,
		Spec: appsv1.ReplicaSetSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template}}
}

func itService(name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: itMeta(name), Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"},
		Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
	}}
}

// TestIntegrationCRUDEveryKind runs the full CRUD cycle for every kind the
// server serves, once with protobuf request bodies (client-go's default)
// and once with JSON.
func TestIntegrationCRUDEveryKind(t *testing.T) {
	s := apiservertest.Start(t)
	itBodyEncodings(t, s, func(t *testing.T, cs *kubernetes.Clientset, sfx string) {
		ns := "crud-" + sfx
		itNamespace(t, cs, ns)
		core, apps := cs.CoreV1(), cs.AppsV1()

		t.Run("Namespace", func(t *testing.T) {
			itRunCRUD(t, s, "crud-ns-"+sfx, itCRUDCase[*corev1.Namespace, *corev1.NamespaceList]{
				client: core.Namespaces(), key: itClusterKey("namespaces"), lingers: true,
				make: func(n string) *corev1.Namespace { return &corev1.Namespace{ObjectMeta: itMeta(n)} },
				mutate: func(o *corev1.Namespace) {
					o.Annotations = map[string]string{"note": "changed"}
				},
				check: func(o *corev1.Namespace) error {
					if o.Annotations["note"] != "changed" {
						return fmt.Errorf("annotations %v", o.Annotations)
					}
					return nil
				},
			})
		})
		t.Run("Pod", func(t *testing.T) {
			itRunCRUD(t, s, "pod1", itCRUDCase[*corev1.Pod, *corev1.PodList]{
				client: core.Pods(ns), key: itNSKey("pods", ns),
				make:   func(n string) *corev1.Pod { return itPod(n, nil) },
				mutate: func(o *corev1.Pod) { o.Spec.Containers[0].Image = "minik8s.local/busybox:1.36" },
				check: func(o *corev1.Pod) error {
					if o.Spec.Containers[0].Image != "minik8s.local/busybox:1.36" {
						return fmt.Errorf("image %q", o.Spec.Containers[0].Image)
					}
					return nil
				},
			})
		})
		t.Run("Service", func(t *testing.T) {
			itRunCRUD(t, s, "svc1", itCRUDCase[*corev1.Service, *corev1.ServiceList]{
				client: core.Services(ns), key: itNSKey("services", ns),
				make:   itService,
				mutate: func(o *corev1.Service) { o.Spec.Ports[0].Port = 81 },
				check: func(o *corev1.Service) error {
					if o.Spec.Ports[0].Port != 81 || o.Spec.ClusterIP == "" {
						return fmt.Errorf("ports %v clusterIP %q", o.Spec.Ports, o.Spec.ClusterIP)
					}
					return nil
				},
			})
		})
		t.Run("Endpoints", func(t *testing.T) {
			itRunCRUD(t, s, "ep1", itCRUDCase[*corev1.Endpoints, *corev1.EndpointsList]{
				client: core.Endpoints(ns), key: itNSKey("endpoints", ns),
				make: func(n string) *corev1.Endpoints {
					return &corev1.Endpoints{ObjectMeta: itMeta(n), Subsets: []corev1.EndpointSubset{{
						Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5"}},
						Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
					}}}
				},
				mutate: func(o *corev1.Endpoints) { o.Subsets[0].Addresses[0].IP = "10.244.1.6" },
				check: func(o *corev1.Endpoints) error {
					if o.Subsets[0].Addresses[0].IP != "10.244.1.6" {
						return fmt.Errorf("subsets %v", o.Subsets)
					}
					return nil
				},
			})
		})
		t.Run("ConfigMap", func(t *testing.T) {
			itRunCRUD(t, s, "cm1", itCRUDCase[*corev1.ConfigMap, *corev1.ConfigMapList]{
				client: core.ConfigMaps(ns), key: itNSKey("configmaps", ns),
				make: func(n string) *corev1.ConfigMap {
					return &corev1.ConfigMap{ObjectMeta: itMeta(n), Data: map[string]string{"a": "1"}}
				},
				mutate: func(o *corev1.ConfigMap) { o.Data["a"] = "2" },
				check: func(o *corev1.ConfigMap) error {
					if o.Data["a"] != "2" {
						return fmt.Errorf("data %v", o.Data)
					}
					return nil
				},
			})
		})
		t.Run("Secret", func(t *testing.T) {
			itRunCRUD(t, s, "secret1", itCRUDCase[*corev1.Secret, *corev1.SecretList]{
				client: core.Secrets(ns), key: itNSKey("secrets", ns),
				make: func(n string) *corev1.Secret {
					return &corev1.Secret{ObjectMeta: itMeta(n), Data: map[string][]byte{"k": []byte("v1")}}
				},
				mutate: func(o *corev1.Secret) { o.Data["k"] = []byte("v2") },
				check: func(o *corev1.Secret) error {
					if string(o.Data["k"]) != "v2" {
						return fmt.Errorf("data %q", o.Data)
					}
					return nil
				},
			})
		})
		t.Run("Node", func(t *testing.T) {
			itRunCRUD(t, s, "node-"+sfx, itCRUDCase[*corev1.Node, *corev1.NodeList]{
				client: core.Nodes(), key: itClusterKey("nodes"),
				make: func(n string) *corev1.Node {
					return &corev1.Node{ObjectMeta: itMeta(n), Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}}}
				},
				mutate: func(o *corev1.Node) { o.Spec.Unschedulable = true },
				check: func(o *corev1.Node) error {
					if !o.Spec.Unschedulable {
						return fmt.Errorf("spec %+v", o.Spec)
					}
					return nil
				},
			})
		})
		t.Run("Event", func(t *testing.T) {
			itRunCRUD(t, s, "ev1", itCRUDCase[*corev1.Event, *corev1.EventList]{
				client: core.Events(ns), key: itNSKey("events", ns),
				make: func(n string) *corev1.Event {
					return &corev1.Event{ObjectMeta: itMeta(n),
						InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "pod1"},
						Reason:         "Testing", Message: "hello", Type: corev1.EventTypeNormal, Count: 1,
						Source: corev1.EventSource{Component: "integration-test"}}
				},
				mutate: func(o *corev1.Event) { o.Count = 2 },
				check: func(o *corev1.Event) error {
					if o.Count != 2 {
						return fmt.Errorf("count %d", o.Count)
					}
					return nil
				},
			})
		})
		t.Run("ReplicaSet", func(t *testing.T) {
			itRunCRUD(t, s, "rs1", itCRUDCase[*appsv1.ReplicaSet, *appsv1.ReplicaSetList]{
				client: apps.ReplicaSets(ns), key: itNSKey("replicasets", ns),
				make:   func(n string) *appsv1.ReplicaSet { return itReplicaSet(n, 2, "rs") },
				mutate: func(o *appsv1.ReplicaSet) { o.Spec.Replicas = itPtr(int32(3)) },
				check: func(o *appsv1.ReplicaSet) error {
					if *o.Spec.Replicas != 3 {
						return fmt.Errorf("replicas %d", *o.Spec.Replicas)
					}
					return nil
				},
			})
		})
		t.Run("Deployment", func(t *testing.T) {
			itRunCRUD(t, s, "deploy1", itCRUDCase[*appsv1.Deployment, *appsv1.DeploymentList]{
				client: apps.Deployments(ns), key: itNSKey("deployments", ns),
				make:   func(n string) *appsv1.Deployment { return itDeployment(n, 2, "dep") },
				mutate: func(o *appsv1.Deployment) { o.Spec.Template.Spec.Containers[0].Image = "minik8s.local/web:v2" },
				check: func(o *appsv1.Deployment) error {
					if img := o.Spec.Template.Spec.Containers[0].Image; img != "minik8s.local/web:v2" {
						return fmt.Errorf("image %q", img)
					}
					return nil
				},
			})
		})
		t.Run("Lease", func(t *testing.T) {
			itRunCRUD(t, s, "lease1", itCRUDCase[*coordinationv1.Lease, *coordinationv1.LeaseList]{
				client: cs.CoordinationV1().Leases(ns), key: itNSKey("leases", ns),
				make: func(n string) *coordinationv1.Lease {
					return &coordinationv1.Lease{ObjectMeta: itMeta(n), Spec: coordinationv1.LeaseSpec{
						HolderIdentity: itPtr("node-a"), LeaseDurationSeconds: itPtr(int32(40))}}
				},
				mutate: func(o *coordinationv1.Lease) { o.Spec.HolderIdentity = itPtr("node-b") },
				check: func(o *coordinationv1.Lease) error {
					if o.Spec.HolderIdentity == nil || *o.Spec.HolderIdentity != "node-b" {
						return fmt.Errorf("holder %v", o.Spec.HolderIdentity)
					}
					return nil
				},
			})
		})
	})
}

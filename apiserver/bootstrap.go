package apiserver

import (
	"context"
	"fmt"
	"net"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/storage"
)

// systemNamespaces exist in every cluster.
var systemNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease"}

// bootstrap creates the built-in objects if they are missing: the system
// namespaces and the `kubernetes` Service in default (first service IP,
// port 443) with Endpoints pointing at this server. Safe on every start.
func (s *Server) bootstrap(ctx context.Context, firstIP net.IP) error {
	for _, name := range systemNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := s.ensure(ctx, "namespaces", ns); err != nil {
			return err
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: firstIP.String(),
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(int32(s.opts.SecurePort))}},
		},
	}
	if err := s.ensure(ctx, "services", svc); err != nil {
		return err
	}
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: s.opts.AdvertiseAddress}},
			Ports:     []corev1.EndpointPort{{Name: "https", Port: int32(s.opts.SecurePort), Protocol: corev1.ProtocolTCP}},
		}},
	}
	if err := s.ensure(ctx, "endpoints", ep); err != nil {
		return err
	}
	return s.reconcileEndpoints(ctx, ep)
}

// reconcileEndpoints points an existing kubernetes Endpoints at this
// server: a previous run may have listened on another address or port.
// An unchanged object is not rewritten.
func (s *Server) reconcileEndpoints(ctx context.Context, ep *corev1.Endpoints) error {
	res := s.api.Lookup("", "v1", "endpoints")
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	want := ep.DeepCopy()
	s.api.Scheme.Default(want)
	err := s.stores[res].GuaranteedUpdate(ctx, res.Key(want.Namespace, want.Name), res.New(), nil,
		func(cur runtime.Object) (runtime.Object, error) {
			e := cur.(*corev1.Endpoints)
			e.Subsets = want.Subsets
			return e, nil
		}, nil)
	if err != nil {
		return fmt.Errorf("updating endpoints %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

// ensure creates obj through the normal create pipeline (defaults,
// validation, hooks) unless it exists already.
func (s *Server) ensure(ctx context.Context, resource string, obj runtime.Object) error {
	res := s.api.Lookup("", "v1", resource)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, _ := meta.Accessor(obj)
	if err := s.stores[res].Get(ctx, res.Key(m.GetNamespace(), m.GetName()), res.New()); err == nil {
		return nil // exists: never re-run allocation hooks for it
	} else if !storage.IsNotFound(err) {
		return fmt.Errorf("reading %s %s: %w", resource, m.GetName(), err)
	}
	s.api.Scheme.Default(obj)
	_, err := s.api.Create(ctx, res, obj)
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %s: %w", resource, err)
	}
	return nil
}

package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/allocator"
	"github.com/minik8s/minik8s/apiserver/rest"
	"github.com/minik8s/minik8s/apiserver/storage"
)

// firstServiceIP is the first usable address of the service range; the
// kubernetes Service always gets it.
func firstServiceIP(cidr string) (net.IP, error) {
	a, err := allocator.FirstIP(cidr)
	if err != nil {
		return nil, err
	}
	return net.IP(a.AsSlice()), nil
}

// serviceAllocators hands out cluster IPs and node ports to Services as
// they are written, and takes them back when they are deleted. Both
// allocators keep their bitmaps in etcd, so several API servers and
// restarts never hand out a value twice.
type serviceAllocators struct {
	ips   *allocator.ClusterIP
	ports *allocator.NodePort
}

func (s *Server) installServiceAllocators(ctx context.Context, _ net.IP) error {
	ips, err := allocator.NewClusterIP(s.client, s.opts.ServiceClusterIPRange)
	if err != nil {
		return fmt.Errorf("cluster IP allocator: %w", err)
	}
	ports, err := allocator.NewNodePort(s.client, s.opts.NodePortRange)
	if err != nil {
		return fmt.Errorf("node port allocator: %w", err)
	}
	sa := &serviceAllocators{ips: ips, ports: ports}
	if err := sa.repair(ctx, s.stores[s.api.Lookup("", "v1", "services")]); err != nil {
		return err
	}
	s.api.Hooks["services"] = rest.Hooks{
		BeforeCreate: sa.beforeCreate,
		CheckCreate:  sa.checkCreate,
		BeforeUpdate: sa.beforeUpdate,
		AfterDelete:  sa.afterDelete,
	}
	return nil
}

// repair rebuilds both bitmaps from the Services in etcd, dropping values
// leaked by a crash between allocation and write.
func (sa *serviceAllocators) repair(ctx context.Context, store storage.Interface) error {
	list := &corev1.ServiceList{}
	if err := store.GetList(ctx, "/registry/services/", storage.ListOptions{}, list); err != nil {
		return fmt.Errorf("listing services for allocator repair: %w", err)
	}
	var ips []netip.Addr
	var ports []int
	for _, svc := range list.Items {
		if ip, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil {
			ips = append(ips, ip)
		}
		ports = append(ports, serviceNodePorts(&svc)...)
	}
	if _, err := sa.ips.Repair(ctx, ips); err != nil {
		return fmt.Errorf("repairing cluster IP allocations: %w", err)
	}
	if _, err := sa.ports.Repair(ctx, ports); err != nil {
		return fmt.Errorf("repairing node port allocations: %w", err)
	}
	return nil
}

func needsClusterIP(s *corev1.Service) bool {
	return s.Spec.Type != corev1.ServiceTypeExternalName && s.Spec.ClusterIP != corev1.ClusterIPNone
}

func needsNodePorts(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer
}

// serviceNodePorts returns the node port numbers svc uses, each once: two
// ServicePorts that differ only in protocol (53/TCP and 53/UDP) may share
// one node port, and it is one allocation.
func serviceNodePorts(svc *corev1.Service) []int {
	var out []int
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 && !slices.Contains(out, int(p.NodePort)) {
			out = append(out, int(p.NodePort))
		}
	}
	return out
}

// sharedNodePort is the node port a create gives a port that asks for none
// (p, at index i), as Kubernetes does: the node port of a port with the same
// port number and another protocol (53/TCP and 53/UDP of a DNS Service get
// one node port), or 0 for a fresh one. It never picks a value another port
// of the Service uses with p's protocol. Ports before i have their node
// ports by then; later ones only if the client asked for them.
func sharedNodePort(svc *corev1.Service, i int) int32 {
	p := svc.Spec.Ports[i]
	for j, q := range svc.Spec.Ports {
		if j == i || q.Port != p.Port || q.NodePort == 0 {
			continue
		}
		clash := slices.ContainsFunc(svc.Spec.Ports, func(r corev1.ServicePort) bool {
			return r.NodePort == q.NodePort && r.Protocol == p.Protocol
		})
		if !clash {
			return q.NodePort
		}
	}
	return 0
}

// allocationError turns an allocator failure into the 422 a client expects,
// naming the field.
func allocationError(svc *corev1.Service, path *field.Path, value any, err error) error {
	var msg string
	switch {
	case errors.Is(err, allocator.ErrAllocated):
		// Kubernetes' wording.
		msg = "provided IP is already allocated"
		if path.String() != "spec.clusterIP" {
			msg = "provided port is already allocated"
		}
	case errors.Is(err, allocator.ErrNotInRange), errors.Is(err, allocator.ErrFull):
		msg = err.Error()
	default:
		return err
	}
	return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name,
		field.ErrorList{field.Invalid(path, value, msg)})
}

// txn collects allocations so a failed write can give them all back.
type txn struct {
	sa    *serviceAllocators
	ips   []netip.Addr
	ports []int
}

func (t *txn) undo() {
	ctx := context.Background()
	for _, ip := range t.ips {
		_ = t.sa.ips.Release(ctx, ip)
	}
	for _, p := range t.ports {
		_ = t.sa.ports.Release(ctx, p)
	}
}

func (t *txn) clusterIP(ctx context.Context, svc *corev1.Service) error {
	path := field.NewPath("spec", "clusterIP")
	if svc.Spec.ClusterIP == "" {
		ip, err := t.sa.ips.AllocateNext(ctx)
		if err != nil {
			return allocationError(svc, path, "", err)
		}
		t.ips = append(t.ips, ip)
		svc.Spec.ClusterIP = ip.String()
	} else {
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil {
			return allocationError(svc, path, svc.Spec.ClusterIP, &allocator.Error{Err: allocator.ErrNotInRange,
				What: "cluster IP", Value: svc.Spec.ClusterIP, Range: t.sa.ips.CIDR().String()})
		}
		if err := t.sa.ips.Allocate(ctx, ip); err != nil {
			return allocationError(svc, path, svc.Spec.ClusterIP, err)
		}
		t.ips = append(t.ips, ip)
	}
	svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	return nil
}

// nodePorts gives every port of svc a node port. A node port number is
// allocated once per Service: ServicePorts that differ in protocol may
// share it (validation refuses two with the same protocol), so a number
// another port of this Service already holds, or that is in keep (the
// numbers the Service owned before an update), is not allocated again. On
// create a port that asks for none shares the node port of a port with the
// same number (sharedNodePort), as in Kubernetes.
func (t *txn) nodePorts(ctx context.Context, svc *corev1.Service, keep map[int32]bool, create bool) error {
	held := map[int32]bool{}
	for p := range keep {
		held[p] = true
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
		if p.NodePort == 0 && create {
			p.NodePort = sharedNodePort(svc, i)
		}
		switch {
		case p.NodePort == 0:
			n, err := t.sa.ports.AllocateNext(ctx)
			if err != nil {
				return allocationError(svc, path, 0, err)
			}
			t.ports = append(t.ports, n)
			p.NodePort = int32(n)
		case held[p.NodePort]:
		default:
			if err := t.sa.ports.Allocate(ctx, int(p.NodePort)); err != nil {
				return allocationError(svc, path, p.NodePort, err)
			}
			t.ports = append(t.ports, int(p.NodePort))
		}
		held[p.NodePort] = true
	}
	return nil
}

func (sa *serviceAllocators) beforeCreate(ctx context.Context, obj runtime.Object) (func(), error) {
	svc := obj.(*corev1.Service)
	t := &txn{sa: sa}
	if needsClusterIP(svc) {
		if err := t.clusterIP(ctx, svc); err != nil {
			return nil, err
		}
	}
	if needsNodePorts(svc) {
		if err := t.nodePorts(ctx, svc, nil, true); err != nil {
			t.undo()
			return nil, err
		}
	}
	return t.undo, nil
}

// checkCreate is beforeCreate for dry runs: it fails where beforeCreate
// would (a requested value out of range or taken, a range full), and fills
// in the values a real create would pick, as Kubernetes shows them, but
// reserves nothing: they are only what is free now, and a real create
// may get others.
func (sa *serviceAllocators) checkCreate(ctx context.Context, obj runtime.Object) error {
	svc := obj.(*corev1.Service)
	if needsClusterIP(svc) {
		path := field.NewPath("spec", "clusterIP")
		if svc.Spec.ClusterIP == "" {
			ip, err := sa.ips.PeekNext(ctx)
			if err != nil {
				return allocationError(svc, path, "", err)
			}
			svc.Spec.ClusterIP = ip.String()
		} else {
			ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
			if err != nil || !sa.ips.CIDR().Contains(ip) {
				return allocationError(svc, path, svc.Spec.ClusterIP, &allocator.Error{Err: allocator.ErrNotInRange,
					What: "cluster IP", Value: svc.Spec.ClusterIP, Range: sa.ips.CIDR().String()})
			}
			if taken, err := sa.ips.Has(ctx, ip); err != nil {
				return err
			} else if taken {
				return allocationError(svc, path, svc.Spec.ClusterIP, allocator.ErrAllocated)
			}
		}
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	}
	if needsNodePorts(svc) {
		// First the values the client asked for, each number once however
		// many ports (of different protocols) share it.
		var requested []int
		for i, p := range svc.Spec.Ports {
			if p.NodePort == 0 || slices.Contains(requested, int(p.NodePort)) {
				continue
			}
			path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
			if !sa.ports.Range().Contains(int(p.NodePort)) {
				return allocationError(svc, path, p.NodePort, &allocator.Error{Err: allocator.ErrNotInRange,
					What: "node port", Value: fmt.Sprint(p.NodePort), Range: sa.ports.Range().String()})
			}
			if taken, err := sa.ports.Has(ctx, int(p.NodePort)); err != nil {
				return err
			} else if taken {
				return allocationError(svc, path, p.NodePort, allocator.ErrAllocated)
			}
			requested = append(requested, int(p.NodePort))
		}
		// Then the ports the server picks for, in the order nodePorts
		// does: a shared node port if there is one, else a fresh one.
		// Fresh ones are placeholders -1, -2, ... until peeked.
		var freshAt []int // the port index of each fresh pick
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort != 0 {
				continue
			}
			if p.NodePort = sharedNodePort(svc, i); p.NodePort == 0 {
				freshAt = append(freshAt, i)
				p.NodePort = int32(-len(freshAt))
			}
		}
		if len(freshAt) > 0 {
			free, err := sa.ports.PeekNext(ctx, len(freshAt), requested)
			if err != nil {
				path := field.NewPath("spec", "ports").Index(freshAt[len(free)]).Child("nodePort")
				return allocationError(svc, path, 0, err)
			}
			for i := range svc.Spec.Ports {
				if p := &svc.Spec.Ports[i]; p.NodePort < 0 {
					p.NodePort = int32(free[-p.NodePort-1])
				}
			}
		}
	}
	return nil
}

func (sa *serviceAllocators) beforeUpdate(ctx context.Context, newObj, oldObj runtime.Object) (func(bool), error) {
	svc, old := newObj.(*corev1.Service), oldObj.(*corev1.Service)
	t := &txn{sa: sa}
	// A Service that gains a cluster IP (ExternalName -> ClusterIP).
	if needsClusterIP(svc) && (old.Spec.ClusterIP == "" || old.Spec.ClusterIP == corev1.ClusterIPNone) && svc.Spec.ClusterIP == "" {
		if err := t.clusterIP(ctx, svc); err != nil {
			return nil, err
		}
	}
	owned := map[int32]bool{}
	for _, p := range old.Spec.Ports {
		if p.NodePort != 0 {
			owned[p.NodePort] = true
		}
	}
	if needsNodePorts(svc) {
		if err := t.nodePorts(ctx, svc, owned, false); err != nil {
			t.undo()
			return nil, err
		}
	} else {
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
	}
	return func(stored bool) {
		if !stored {
			t.undo()
			return
		}
		// Give back what the Service no longer uses; a node port two
		// ports shared stays while either of them still uses it.
		still := serviceNodePorts(svc)
		for p := range owned {
			if !slices.Contains(still, int(p)) {
				_ = sa.ports.Release(context.Background(), int(p))
			}
		}
		if old.Spec.ClusterIP != svc.Spec.ClusterIP {
			if ip, err := netip.ParseAddr(old.Spec.ClusterIP); err == nil {
				_ = sa.ips.Release(context.Background(), ip)
			}
		}
	}, nil
}

func (sa *serviceAllocators) afterDelete(ctx context.Context, obj runtime.Object) {
	svc := obj.(*corev1.Service)
	if ip, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil {
		_ = sa.ips.Release(ctx, ip)
	}
	// Each number once: releasing a shared node port a second time could
	// free it from under a Service that took it in between.
	for _, p := range serviceNodePorts(svc) {
		_ = sa.ports.Release(ctx, p)
	}
}

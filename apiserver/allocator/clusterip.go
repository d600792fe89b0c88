package allocator

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Defaults and etcd keys.
const (
	DefaultServiceCIDR = "10.96.0.0/12"
	ServiceIPsKey      = "/registry/ranges/serviceips"
	// maxHostBits bounds the bitmap (2^20 offsets = 128 KiB), the same
	// limit Kubernetes puts on --service-cluster-ip-range (/12 for IPv4,
	// /108 for IPv6).
	maxHostBits = 20
)

// ClusterIP allocates Service cluster IPs from one CIDR. Offset 0 is the
// first usable address (network + 1); for IPv4 the broadcast address is
// excluded as well. The first usable address is reserved for the
// "kubernetes" Service: AllocateNext never returns it, Allocate does.
type ClusterIP struct {
	r      *bitmapRange
	prefix netip.Prefix
}

// ParseServiceCIDR validates a --service-cluster-ip-range value and
// returns it masked (10.96.0.5/12 becomes 10.96.0.0/12).
func ParseServiceCIDR(cidr string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("service CIDR %q: %w", cidr, err)
	}
	p = p.Masked()
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("service CIDR %q: IPv4-mapped IPv6 ranges are not supported", cidr)
	}
	host := p.Addr().BitLen() - p.Bits()
	if host > maxHostBits {
		return netip.Prefix{}, fmt.Errorf("service CIDR %q is too large: at most %d host bits (/%d)", cidr, maxHostBits, p.Addr().BitLen()-maxHostBits)
	}
	if p.Addr().Is4() && host < 2 || host < 1 {
		return netip.Prefix{}, fmt.Errorf("service CIDR %q is too small: it has no usable addresses", cidr)
	}
	return p, nil
}

// FirstIP returns the first usable address of cidr (10.96.0.1 for
// 10.96.0.0/12): the ClusterIP of the "kubernetes" Service, and a SAN of
// the API server's serving certificate.
func FirstIP(cidr string) (netip.Addr, error) {
	p, err := ParseServiceCIDR(cidr)
	if err != nil {
		return netip.Addr{}, err
	}
	return p.Addr().Next(), nil
}

// NewClusterIP returns an allocator for cidr stored under ServiceIPsKey.
// It does not touch etcd until used.
func NewClusterIP(client *clientv3.Client, cidr string) (*ClusterIP, error) {
	p, err := ParseServiceCIDR(cidr)
	if err != nil {
		return nil, err
	}
	host := p.Addr().BitLen() - p.Bits()
	size := 1<<host - 1 // minus the network address
	if p.Addr().Is4() {
		size-- // minus broadcast
	}
	return &ClusterIP{
		r: newBitmapRange(client, ServiceIPsKey, p.String(), size,
			bandOffset(size, 16, 256, 16), 1),
		prefix: p,
	}, nil
}

// CIDR returns the range this allocator serves.
func (a *ClusterIP) CIDR() netip.Prefix { return a.prefix }

// Size returns the number of allocatable addresses (the reserved first
// one included).
func (a *ClusterIP) Size() int { return a.r.size }

func (a *ClusterIP) offset(ip netip.Addr) (int, error) {
	ip = ip.Unmap()
	notIn := &Error{Err: ErrNotInRange, What: "cluster IP", Value: ip.String(), Range: a.prefix.String()}
	if !ip.IsValid() || !a.prefix.Contains(ip) {
		if !ip.IsValid() {
			notIn.Value = "<invalid>"
		}
		return 0, notIn
	}
	// The prefix has at most 20 host bits, so the low 32 bits hold the
	// whole host part and the subtraction cannot borrow beyond them.
	b, base := ip.As16(), a.prefix.Addr().As16()
	off := int(binary.BigEndian.Uint32(b[12:])-binary.BigEndian.Uint32(base[12:])) - 1
	if off < 0 || off >= a.r.size {
		return 0, notIn // network or broadcast address
	}
	return off, nil
}

func (a *ClusterIP) addr(off int) netip.Addr {
	b := a.prefix.Addr().As16()
	binary.BigEndian.PutUint32(b[12:], binary.BigEndian.Uint32(b[12:])+uint32(off)+1)
	ip := netip.AddrFrom16(b)
	if a.prefix.Addr().Is4() {
		ip = ip.Unmap()
	}
	return ip
}

// Allocate reserves ip (a user-chosen spec.clusterIP, or FirstIP for the
// kubernetes Service). ErrNotInRange, ErrAllocated.
func (a *ClusterIP) Allocate(ctx context.Context, ip netip.Addr) error {
	off, err := a.offset(ip)
	if err != nil {
		return err
	}
	ok, err := a.r.allocate(ctx, off)
	if err != nil {
		return err
	}
	if !ok {
		return &Error{Err: ErrAllocated, What: "cluster IP", Value: ip.Unmap().String(), Range: a.prefix.String()}
	}
	return nil
}

// AllocateNext reserves and returns a free IP, preferring the upper part
// of the range. ErrFull when none is left.
func (a *ClusterIP) AllocateNext(ctx context.Context) (netip.Addr, error) {
	off, ok, err := a.r.allocateNext(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	if !ok {
		return netip.Addr{}, &Error{Err: ErrFull, What: "cluster IP", Range: a.prefix.String()}
	}
	return a.addr(off), nil
}

// PeekNext returns an IP AllocateNext could return now, without reserving
// it (for dry runs: another create may take it first). ErrFull when none
// is left.
func (a *ClusterIP) PeekNext(ctx context.Context) (netip.Addr, error) {
	offs, ok, err := a.r.peek(ctx, 1, nil)
	if err != nil {
		return netip.Addr{}, err
	}
	if !ok {
		return netip.Addr{}, &Error{Err: ErrFull, What: "cluster IP", Range: a.prefix.String()}
	}
	return a.addr(offs[0]), nil
}

// Release frees ip. Releasing a free IP, or one outside the range (the
// range was changed since it was allocated), is a no-op so that deleting
// a Service always succeeds.
func (a *ClusterIP) Release(ctx context.Context, ip netip.Addr) error {
	off, err := a.offset(ip)
	if err != nil {
		return nil
	}
	return a.r.release(ctx, off)
}

// Has reports whether ip is allocated; false for IPs outside the range.
func (a *ClusterIP) Has(ctx context.Context, ip netip.Addr) (bool, error) {
	off, err := a.offset(ip)
	if err != nil {
		return false, nil
	}
	return a.r.has(ctx, off)
}

// Free returns how many addresses are not allocated.
func (a *ClusterIP) Free(ctx context.Context) (int, error) { return a.r.free(ctx) }

// RepairResult reports what Repair changed.
type RepairResult[T any] struct {
	// Leaked were allocated but used by no object; they are free now.
	Leaked []T
	// Pending were allocated less than RepairGrace ago and used by no
	// object yet (a create in flight); they stay allocated.
	Pending []T
	// Added were in use but not allocated; they are allocated now.
	Added []T
	// Duplicates appear more than once in inUse: two objects share a
	// value, which an operator must fix.
	Duplicates []T
	// OutOfRange are in use but outside the range (the range was
	// changed); they are not tracked.
	OutOfRange []T
}

// Repair rebuilds the bitmap from the IPs the existing Services use, as
// the API server does at start: leaked IPs are freed, missing ones
// allocated, and a bitmap stored for a different range is replaced.
// Allocations younger than RepairGrace are kept (see RepairResult.Pending),
// so running Repair while other API servers create Services is safe; run
// it periodically to collect those once they are old enough.
func (a *ClusterIP) Repair(ctx context.Context, inUse []netip.Addr) (RepairResult[netip.Addr], error) {
	var res RepairResult[netip.Addr]
	var offs []int
	for _, ip := range inUse {
		off, err := a.offset(ip)
		if err != nil {
			res.OutOfRange = append(res.OutOfRange, ip)
			continue
		}
		offs = append(offs, off)
	}
	ro, err := a.r.repair(ctx, offs)
	if err != nil {
		return res, err
	}
	res.Leaked, res.Pending, res.Added, res.Duplicates = mapAll(ro.leaked, a.addr), mapAll(ro.pending, a.addr), mapAll(ro.added, a.addr), mapAll(ro.duplicates, a.addr)
	return res, nil
}

func mapAll[T any](offs []int, f func(int) T) []T {
	if len(offs) == 0 {
		return nil
	}
	out := make([]T, len(offs))
	for i, o := range offs {
		out[i] = f(o)
	}
	return out
}

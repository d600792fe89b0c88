package allocator

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Defaults and etcd keys.
const (
	DefaultNodePortRange = "30000-32767"
	NodePortsKey         = "/registry/ranges/servicenodeports"
)

// PortRange is an inclusive range of ports.
type PortRange struct {
	Base, Size int
}

// Max returns the highest port of the range.
func (p PortRange) Max() int { return p.Base + p.Size - 1 }

// Contains reports whether port is in the range.
func (p PortRange) Contains(port int) bool { return port >= p.Base && port <= p.Max() }

func (p PortRange) String() string { return fmt.Sprintf("%d-%d", p.Base, p.Max()) }

// ParsePortRange parses a --service-node-port-range value: "30000-32767"
// or a single port.
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	base, err := strconv.Atoi(strings.TrimSpace(lo))
	if err != nil {
		return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
	}
	last := base
	if isRange {
		if last, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
			return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
		}
	}
	if base < 1 || last > 65535 || last < base {
		return PortRange{}, fmt.Errorf("port range %q: want 1 <= first <= last <= 65535", s)
	}
	return PortRange{Base: base, Size: last - base + 1}, nil
}

// NodePort allocates Service node ports.
type NodePort struct {
	r  *bitmapRange
	pr PortRange
}

// NewNodePort returns an allocator for portRange (e.g. "30000-32767")
// stored under NodePortsKey. It does not touch etcd until used.
func NewNodePort(client *clientv3.Client, portRange string) (*NodePort, error) {
	pr, err := ParsePortRange(portRange)
	if err != nil {
		return nil, err
	}
	return &NodePort{
		r:  newBitmapRange(client, NodePortsKey, pr.String(), pr.Size, bandOffset(pr.Size, 16, 128, 32), 0),
		pr: pr,
	}, nil
}

// Range returns the range this allocator serves.
func (a *NodePort) Range() PortRange { return a.pr }

func (a *NodePort) offset(port int) (int, error) {
	if !a.pr.Contains(port) {
		return 0, &Error{Err: ErrNotInRange, What: "node port", Value: strconv.Itoa(port), Range: a.pr.String()}
	}
	return port - a.pr.Base, nil
}

func (a *NodePort) port(off int) int { return a.pr.Base + off }

// Allocate reserves a user-chosen port. ErrNotInRange, ErrAllocated.
func (a *NodePort) Allocate(ctx context.Context, port int) error {
	off, err := a.offset(port)
	if err != nil {
		return err
	}
	ok, err := a.r.allocate(ctx, off)
	if err != nil {
		return err
	}
	if !ok {
		return &Error{Err: ErrAllocated, What: "node port", Value: strconv.Itoa(port), Range: a.pr.String()}
	}
	return nil
}

// AllocateNext reserves and returns a free port, preferring the upper part
// of the range. ErrFull when none is left.
func (a *NodePort) AllocateNext(ctx context.Context) (int, error) {
	off, ok, err := a.r.allocateNext(ctx)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, &Error{Err: ErrFull, What: "node port", Range: a.pr.String()}
	}
	return a.port(off), nil
}

// PeekNext returns n distinct ports that n AllocateNext calls could return
// now, none of them in exclude (ports the same object asks for), without
// reserving them (for dry runs). With ErrFull it also returns the ports
// that were free, fewer than n.
func (a *NodePort) PeekNext(ctx context.Context, n int, exclude []int) ([]int, error) {
	var taken []int
	for _, p := range exclude {
		if off, err := a.offset(p); err == nil {
			taken = append(taken, off)
		}
	}
	offs, ok, err := a.r.peek(ctx, n, taken)
	if err != nil {
		return nil, err
	}
	ports := mapAll(offs, a.port)
	if !ok {
		return ports, &Error{Err: ErrFull, What: "node port", Range: a.pr.String()}
	}
	return ports, nil
}

// Release frees port; a no-op for free or out-of-range ports.
func (a *NodePort) Release(ctx context.Context, port int) error {
	off, err := a.offset(port)
	if err != nil {
		return nil
	}
	return a.r.release(ctx, off)
}

// Has reports whether port is allocated; false outside the range.
func (a *NodePort) Has(ctx context.Context, port int) (bool, error) {
	off, err := a.offset(port)
	if err != nil {
		return false, nil
	}
	return a.r.has(ctx, off)
}

// Free returns how many ports are not allocated.
func (a *NodePort) Free(ctx context.Context) (int, error) { return a.r.free(ctx) }

// Repair rebuilds the bitmap from the node ports existing Services use;
// see ClusterIP.Repair.
func (a *NodePort) Repair(ctx context.Context, inUse []int) (RepairResult[int], error) {
	var res RepairResult[int]
	var offs []int
	for _, p := range inUse {
		off, err := a.offset(p)
		if err != nil {
			res.OutOfRange = append(res.OutOfRange, p)
			continue
		}
		offs = append(offs, off)
	}
	ro, err := a.r.repair(ctx, offs)
	if err != nil {
		return res, err
	}
	res.Leaked, res.Pending, res.Added, res.Duplicates = mapAll(ro.leaked, a.port), mapAll(ro.pending, a.port), mapAll(ro.added, a.port), mapAll(ro.duplicates, a.port)
	return res, nil
}

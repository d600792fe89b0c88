package allocator

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/minik8s/minik8s/apiserver/etcd/etcdtest"
)

// newClients returns n independent etcd clients to one fresh member, as n
// API server processes would have.
func newClients(t *testing.T, n int) []*clientv3.Client {
	t.Helper()
	e := etcdtest.StartEmbedded(t)
	out := []*clientv3.Client{e.Client()}
	for len(out) < n {
		c, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		out = append(out, c)
	}
	return out
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// allocAPI lets the same scenarios run against both allocators.
type allocAPI struct {
	conflicts func() int64
	next      func(ctx context.Context) (string, error)
	has       func(ctx context.Context, v string) (bool, error)
	release   func(ctx context.Context, v string) error
}

func clusterIPAPI(t *testing.T, c *clientv3.Client, cidr string) allocAPI {
	a, err := NewClusterIP(c, cidr)
	if err != nil {
		t.Fatal(err)
	}
	return allocAPI{
		conflicts: a.r.conflicts.Load,
		next: func(ctx context.Context) (string, error) {
			ip, err := a.AllocateNext(ctx)
			return ip.String(), err
		},
		has:     func(ctx context.Context, v string) (bool, error) { return a.Has(ctx, netip.MustParseAddr(v)) },
		release: func(ctx context.Context, v string) error { return a.Release(ctx, netip.MustParseAddr(v)) },
	}
}

func nodePortAPI(t *testing.T, c *clientv3.Client, r string) allocAPI {
	a, err := NewNodePort(c, r)
	if err != nil {
		t.Fatal(err)
	}
	atoi := func(s string) int { var p int; fmt.Sscan(s, &p); return p }
	return allocAPI{
		conflicts: a.r.conflicts.Load,
		next: func(ctx context.Context) (string, error) {
			p, err := a.AllocateNext(ctx)
			return fmt.Sprint(p), err
		},
		has:     func(ctx context.Context, v string) (bool, error) { return a.Has(ctx, atoi(v)) },
		release: func(ctx context.Context, v string) error { return a.Release(ctx, atoi(v)) },
	}
}

// TestConcurrentAllocateNext: 200 concurrent AllocateNext calls spread over
// 4 allocator instances (own etcd clients) never return a value twice, even
// when the range is barely larger than the demand.
func TestConcurrentAllocateNext(t *testing.T) {
	cases := []struct {
		name  string
		mk    func(t *testing.T, c *clientv3.Client) allocAPI
		never string // a value that must not be handed out
	}{
		{"cluster IP /24", func(t *testing.T, c *clientv3.Client) allocAPI { return clusterIPAPI(t, c, "10.96.0.0/24") }, "10.96.0.1"},
		{"cluster IP default /12", func(t *testing.T, c *clientv3.Client) allocAPI { return clusterIPAPI(t, c, DefaultServiceCIDR) }, "10.96.0.1"},
		{"node port 30000-30209", func(t *testing.T, c *clientv3.Client) allocAPI { return nodePortAPI(t, c, "30000-30209") }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			clients := newClients(t, 4)
			var allocs []allocAPI
			for _, cl := range clients {
				allocs = append(allocs, c.mk(t, cl))
			}
			const total = 200
			got := make([]string, total)
			var wg sync.WaitGroup
			for i := range total {
				wg.Go(func() {
					v, err := allocs[i%len(allocs)].next(ctx)
					if err != nil {
						t.Errorf("AllocateNext #%d: %v", i, err)
					}
					got[i] = v
				})
			}
			wg.Wait()
			var conflicts int64
			for _, a := range allocs {
				conflicts += a.conflicts()
			}
			t.Logf("%d allocations, %d lost compare-and-swap rounds retried", total, conflicts)
			seen := map[string]int{}
			for i, v := range got {
				if j, dup := seen[v]; dup {
					t.Fatalf("value %s handed out twice (calls %d and %d)", v, j, i)
				}
				seen[v] = i
				if v == c.never {
					t.Fatalf("reserved value %s handed out", v)
				}
			}
			// A fresh instance (a restarted API server) sees every one.
			fresh := c.mk(t, clients[0])
			for _, v := range got {
				if ok, err := fresh.has(ctx, v); !ok || err != nil {
					t.Fatalf("restarted allocator does not see %s: %v", v, err)
				}
			}
		})
	}
}

func TestClusterIPLifecycle(t *testing.T) {
	ctx := testCtx(t)
	clients := newClients(t, 2)
	const cidr = "10.96.0.0/29" // usable .1-.6; .1 reserved for kubernetes
	a, err := NewClusterIP(clients[0], cidr)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := FirstIP(cidr)
	if err := a.Allocate(ctx, first); err != nil {
		t.Fatalf("allocate kubernetes Service IP: %v", err)
	}
	var got []netip.Addr
	for range 5 {
		ip, err := a.AllocateNext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip)
	}
	slices.SortFunc(got, netip.Addr.Compare)
	want := []string{"10.96.0.2", "10.96.0.3", "10.96.0.4", "10.96.0.5", "10.96.0.6"}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
	_, err = a.AllocateNext(ctx)
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), cidr) {
		t.Fatalf("full range: %v", err)
	}
	if n, _ := a.Free(ctx); n != 0 {
		t.Fatalf("Free = %d on a full range", n)
	}

	// Errors for specific requests name the value and the range.
	specific := []struct {
		ip   string
		want error
		msg  string
	}{
		{"10.96.0.4", ErrAllocated, "cluster IP 10.96.0.4 is already allocated"},
		{"10.96.0.7", ErrNotInRange, "cluster IP 10.96.0.7 is not in the valid range 10.96.0.0/29"},
		{"10.96.0.0", ErrNotInRange, "cluster IP 10.96.0.0 is not in the valid range 10.96.0.0/29"},
		{"192.168.1.1", ErrNotInRange, "cluster IP 192.168.1.1 is not in the valid range 10.96.0.0/29"},
	}
	for _, s := range specific {
		err := a.Allocate(ctx, netip.MustParseAddr(s.ip))
		if !errors.Is(err, s.want) || err.Error() != s.msg {
			t.Errorf("Allocate(%s) = %v, want %q", s.ip, err, s.msg)
		}
	}

	// Release, then the value is reused.
	if err := a.Release(ctx, netip.MustParseAddr("10.96.0.4")); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx, netip.MustParseAddr("10.96.0.4")); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if err := a.Release(ctx, netip.MustParseAddr("172.16.0.1")); err != nil {
		t.Fatalf("release out of range: %v", err)
	}
	if ok, _ := a.Has(ctx, netip.MustParseAddr("10.96.0.4")); ok {
		t.Fatal("released IP still allocated")
	}
	ip, err := a.AllocateNext(ctx)
	if err != nil || ip.String() != "10.96.0.4" {
		t.Fatalf("after release: %v %v, want 10.96.0.4", ip, err)
	}

	// Restart: a new instance over another client sees all allocations.
	b, _ := NewClusterIP(clients[1], cidr)
	for _, s := range []string{"10.96.0.1", "10.96.0.2", "10.96.0.6"} {
		if ok, err := b.Has(ctx, netip.MustParseAddr(s)); !ok || err != nil {
			t.Errorf("restarted allocator: Has(%s) = %v %v", s, ok, err)
		}
		if err := b.Allocate(ctx, netip.MustParseAddr(s)); !errors.Is(err, ErrAllocated) {
			t.Errorf("restarted allocator: Allocate(%s) = %v", s, err)
		}
	}
	if _, err := b.AllocateNext(ctx); !errors.Is(err, ErrFull) {
		t.Errorf("restarted allocator: %v", err)
	}
}

func TestNodePortLifecycle(t *testing.T) {
	ctx := testCtx(t)
	clients := newClients(t, 1)
	a, err := NewNodePort(clients[0], "30000-30003")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Allocate(ctx, 30002); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{30002: true}
	for range 3 {
		p, err := a.AllocateNext(ctx)
		if err != nil || seen[p] || !a.Range().Contains(p) {
			t.Fatalf("AllocateNext = %d %v", p, err)
		}
		seen[p] = true
	}
	if _, err := a.AllocateNext(ctx); !errors.Is(err, ErrFull) || err.Error() != "range 30000-30003 is full: no node ports available" {
		t.Fatalf("full: %v", err)
	}
	if err := a.Allocate(ctx, 30002); !errors.Is(err, ErrAllocated) || err.Error() != "node port 30002 is already allocated" {
		t.Fatalf("dup: %v", err)
	}
	if err := a.Allocate(ctx, 80); !errors.Is(err, ErrNotInRange) || err.Error() != "node port 80 is not in the valid range 30000-30003" {
		t.Fatalf("out of range: %v", err)
	}
	if err := a.Release(ctx, 30001); err != nil {
		t.Fatal(err)
	}
	if p, err := a.AllocateNext(ctx); err != nil || p != 30001 {
		t.Fatalf("reuse: %d %v", p, err)
	}
	b, _ := NewNodePort(clients[0], "30000-30003")
	if ok, _ := b.Has(ctx, 30001); !ok {
		t.Fatal("restart lost an allocation")
	}
}

// TestRepair: leaks older than RepairGrace are freed, younger ones kept,
// missing ones added; a bitmap for another range is replaced.
func TestRepair(t *testing.T) {
	ctx := testCtx(t)
	clients := newClients(t, 1)
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	a, _ := NewClusterIP(clients[0], "10.96.0.0/24")
	a.r.now = clock
	ip := netip.MustParseAddr

	for _, s := range []string{"10.96.0.1", "10.96.0.10", "10.96.0.11", "10.96.0.12"} {
		if err := a.Allocate(ctx, ip(s)); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(RepairGrace + time.Second)
	// .13 is allocated "just now" by a create whose Service is not stored yet.
	if err := a.Allocate(ctx, ip("10.96.0.13")); err != nil {
		t.Fatal(err)
	}
	res, err := a.Repair(ctx, []netip.Addr{ip("10.96.0.1"), ip("10.96.0.10"), ip("10.96.0.20"), ip("10.96.0.20"), ip("10.97.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got []netip.Addr, want ...string) {
		t.Helper()
		var g []string
		for _, a := range got {
			g = append(g, a.String())
		}
		if !slices.Equal(g, want) {
			t.Errorf("%s = %v, want %v", name, g, want)
		}
	}
	check("Leaked", res.Leaked, "10.96.0.11", "10.96.0.12")
	check("Pending", res.Pending, "10.96.0.13")
	check("Added", res.Added, "10.96.0.20")
	check("Duplicates", res.Duplicates, "10.96.0.20")
	check("OutOfRange", res.OutOfRange, "10.97.0.1")
	for s, want := range map[string]bool{"10.96.0.1": true, "10.96.0.10": true, "10.96.0.11": false, "10.96.0.12": false, "10.96.0.13": true, "10.96.0.20": true} {
		if ok, _ := a.Has(ctx, ip(s)); ok != want {
			t.Errorf("after repair Has(%s) = %v, want %v", s, ok, want)
		}
	}

	// Once the grace period has passed, the in-flight value counts as leaked.
	now = now.Add(RepairGrace + time.Second)
	res, err = a.Repair(ctx, []netip.Addr{ip("10.96.0.1"), ip("10.96.0.10"), ip("10.96.0.20")})
	if err != nil {
		t.Fatal(err)
	}
	check("Leaked (2nd)", res.Leaked, "10.96.0.13")
	check("Pending (2nd)", res.Pending)
	if n, _ := a.Free(ctx); n != 254-3 {
		t.Errorf("Free = %d, want %d", n, 254-3)
	}

	// The range flag changed: operations refuse, Repair replaces the bitmap.
	b, _ := NewClusterIP(clients[0], "10.100.0.0/24")
	if err := b.Allocate(ctx, ip("10.100.0.5")); !errors.Is(err, ErrRangeChanged) {
		t.Fatalf("allocate with changed range: %v", err)
	}
	res2, err := b.Repair(ctx, []netip.Addr{ip("10.96.0.10"), ip("10.100.0.9")})
	if err != nil {
		t.Fatal(err)
	}
	check("OutOfRange (new range)", res2.OutOfRange, "10.96.0.10")
	check("Added (new range)", res2.Added, "10.100.0.9")
	if err := b.Allocate(ctx, ip("10.100.0.9")); !errors.Is(err, ErrAllocated) {
		t.Fatalf("after repair: %v", err)
	}
	if err := b.Allocate(ctx, ip("10.100.0.5")); err != nil {
		t.Fatalf("after repair: %v", err)
	}

	// Repair on an empty store creates the record.
	np, _ := NewNodePort(clients[0], DefaultNodePortRange)
	pres, err := np.Repair(ctx, []int{30080, 80})
	if err != nil || !slices.Equal(pres.Added, []int{30080}) || !slices.Equal(pres.OutOfRange, []int{80}) {
		t.Fatalf("node port repair: %+v %v", pres, err)
	}
	if ok, _ := np.Has(ctx, 30080); !ok {
		t.Fatal("repaired node port not allocated")
	}
	resp, err := clients[0].Get(ctx, NodePortsKey)
	if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), `"range":"30000-32767"`) {
		t.Fatalf("stored record: %v %v", resp, err)
	}
}

// TestPeekNext: peeking picks free values the way AllocateNext would,
// distinct and clear of the excluded ones, and writes nothing.
func TestPeekNext(t *testing.T) {
	ctx := testCtx(t)
	c := newClients(t, 1)[0]
	ports, err := NewNodePort(c, "30000-30003")
	if err != nil {
		t.Fatal(err)
	}
	if err := ports.Allocate(ctx, 30000); err != nil {
		t.Fatal(err)
	}
	rev := func() int64 {
		resp, err := c.Get(ctx, NodePortsKey)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("read %s: %v", NodePortsKey, err)
		}
		return resp.Kvs[0].ModRevision
	}
	before := rev()
	got, err := ports.PeekNext(ctx, 2, []int{30001})
	if err != nil || len(got) != 2 || got[0] == got[1] {
		t.Fatalf("PeekNext(2, exclude 30001) = %v %v, want two distinct ports", got, err)
	}
	for _, p := range got {
		if p != 30002 && p != 30003 {
			t.Errorf("peeked %d: 30000 is allocated and 30001 excluded", p)
		}
	}
	got, err = ports.PeekNext(ctx, 3, []int{30001})
	if !errors.Is(err, ErrFull) || len(got) != 2 {
		t.Errorf("PeekNext(3) with 2 free = %v %v, want the 2 and ErrFull", got, err)
	}
	if rev() != before {
		t.Errorf("PeekNext wrote the bitmap")
	}
	for _, p := range []int{30001, 30002, 30003} {
		if ok, _ := ports.Has(ctx, p); ok {
			t.Errorf("PeekNext reserved %d", p)
		}
	}

	ips, err := NewClusterIP(c, "10.0.0.0/30") // two usable, the first reserved
	if err != nil {
		t.Fatal(err)
	}
	ip, err := ips.PeekNext(ctx)
	if err != nil || ip.String() != "10.0.0.2" {
		t.Fatalf("ClusterIP PeekNext = %v %v, want 10.0.0.2 (10.0.0.1 is only for the kubernetes Service)", ip, err)
	}
	if ok, _ := ips.Has(ctx, ip); ok {
		t.Errorf("ClusterIP PeekNext reserved %s", ip)
	}
	if _, err := ips.AllocateNext(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ips.PeekNext(ctx); !errors.Is(err, ErrFull) {
		t.Errorf("PeekNext on a full range: %v, want ErrFull", err)
	}
}

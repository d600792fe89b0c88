package leaderelection

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	"github.com/minik8s/minik8s/client/workqueue/clocktest"
)

// fakeClock is the shared manually advanced clock.
type fakeClock = clocktest.FakeClock

func newFakeClock() *fakeClock { return clocktest.New(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) }

const waitBound = 10 * time.Second

var leaseGR = coordinationv1.Resource("leases")

// fakeLeaseClient is an in-memory Lease store with the API server's
// optimistic concurrency: an Update whose resourceVersion is stale fails
// with Conflict.
type fakeLeaseClient struct {
	mu    sync.Mutex
	lease *coordinationv1.Lease
	rv    int
	clock *fakeClock
	// fail, when set, makes every call fail with it.
	fail error
	// beforeUpdate runs (once) before an Update is applied, to simulate a
	// concurrent writer.
	beforeUpdate func(*fakeLeaseClient)
	// writes records who wrote and at what fake time.
	writes []write
	calls  int
}

type write struct {
	holder string
	at     time.Time
}

func (f *fakeLeaseClient) Get(_ context.Context, name string, _ metav1.GetOptions) (*coordinationv1.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return nil, f.fail
	}
	if f.lease == nil || f.lease.Name != name {
		return nil, apierrors.NewNotFound(leaseGR, name)
	}
	return f.lease.DeepCopy(), nil
}

func (f *fakeLeaseClient) Create(_ context.Context, l *coordinationv1.Lease, _ metav1.CreateOptions) (*coordinationv1.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return nil, f.fail
	}
	if f.lease != nil {
		return nil, apierrors.NewAlreadyExists(leaseGR, l.Name)
	}
	f.storeLocked(l)
	return f.lease.DeepCopy(), nil
}

func (f *fakeLeaseClient) Update(_ context.Context, l *coordinationv1.Lease, _ metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return nil, f.fail
	}
	if hook := f.beforeUpdate; hook != nil {
		f.beforeUpdate = nil
		hook(f)
	}
	if f.lease == nil {
		return nil, apierrors.NewNotFound(leaseGR, l.Name)
	}
	if l.ResourceVersion != f.lease.ResourceVersion {
		return nil, apierrors.NewConflict(leaseGR, l.Name, nil)
	}
	f.storeLocked(l)
	return f.lease.DeepCopy(), nil
}

func (f *fakeLeaseClient) storeLocked(l *coordinationv1.Lease) {
	f.rv++
	f.lease = l.DeepCopy()
	f.lease.ResourceVersion = strconv.Itoa(f.rv)
	f.writes = append(f.writes, write{holder: deref(l.Spec.HolderIdentity), at: f.clock.Now()})
}

// setHolder writes the lease directly, as another process would.
func (f *fakeLeaseClient) setHolder(holder string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := metav1.NewMicroTime(f.clock.Now())
	d := int32(15)
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: DefaultNamespace, Name: "ctrl"}}
	if f.lease != nil {
		l = f.lease.DeepCopy()
	}
	l.Spec.HolderIdentity = &holder
	l.Spec.RenewTime = &now
	l.Spec.LeaseDurationSeconds = &d
	f.storeLocked(l)
}

func (f *fakeLeaseClient) snapshot() (holder string, transitions int32, writes []write, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease != nil {
		holder = deref(f.lease.Spec.HolderIdentity)
		transitions = deref(f.lease.Spec.LeaseTransitions)
	}
	return holder, transitions, append([]write(nil), f.writes...), f.calls
}

func (f *fakeLeaseClient) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// stepWhen waits until n goroutines wait on the clock, then advances it
// by d, firing due timers.
func stepWhen(t *testing.T, c *fakeClock, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for c.Waiting() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d waiters on the clock", c.Waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
	c.Step(d)
}

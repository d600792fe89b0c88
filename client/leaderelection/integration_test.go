package leaderelection_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/leaderelection"
)

// TestHandoverAgainstAPIServer: two candidates against a real API server;
// one leads, the other takes over once the first steps down.
func TestHandoverAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cs := s.Clientset(t)
	leases := cs.Leases.Namespace(leaderelection.DefaultNamespace)

	type cand struct {
		e       *leaderelection.Elector
		leading chan struct{}
		done    chan error
		cancel  context.CancelFunc
	}
	start := func(id string) *cand {
		c := &cand{leading: make(chan struct{}), done: make(chan error, 1)}
		e, err := leaderelection.New(leaderelection.Config{
			Client: leases, Name: "test-controller", Identity: id,
			// Short periods keep the test quick; nothing asserts them.
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond,
			ReleaseOnCancel: true,
			Logger:          slog.New(slog.DiscardHandler),
			OnStartedLeading: func(ctx context.Context) {
				close(c.leading)
				<-ctx.Done()
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		c.e = e
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		go func() { c.done <- e.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-c.done })
		return c
	}
	waitLeading := func(c *cand, id string) {
		t.Helper()
		select {
		case <-c.leading:
		case <-time.After(time.Minute):
			t.Fatalf("%s never led", id)
		}
	}

	a := start("a")
	waitLeading(a, "a")
	b := start("b")
	// Once b has looked at the lease and seen a, it must be a follower.
	for deadline := time.Now().Add(time.Minute); b.e.Leader() != "a"; {
		if time.Now().After(deadline) {
			t.Fatalf("b never observed a as leader (sees %q)", b.e.Leader())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx := context.Background()
	l, err := leases.Get(ctx, "test-controller", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "a" {
		t.Fatalf("lease holder: %v %v", l, err)
	}
	select {
	case <-b.leading:
		t.Fatal("b leads while a holds the lease")
	default:
	}
	if b.e.IsLeader() {
		t.Fatal("b reports leadership while a holds the lease")
	}
	a.cancel()
	if err := <-a.done; err != nil {
		t.Errorf("a.Run = %v, want nil after cancel", err)
	}
	a.done <- nil // for cleanup
	waitLeading(b, "b")
	l, err = leases.Get(ctx, "test-controller", metav1.GetOptions{})
	if err != nil || *l.Spec.HolderIdentity != "b" || l.Spec.LeaseTransitions == nil || *l.Spec.LeaseTransitions != 1 {
		t.Fatalf("after handover: %+v %v", l.Spec, err)
	}
}

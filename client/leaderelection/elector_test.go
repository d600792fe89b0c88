package leaderelection

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

const (
	testLease = 15 * time.Second
	testRenew = 10 * time.Second
	testRetry = 2 * time.Second
	// step is longer than the longest jittered retry (2.4s), so every
	// candidate makes exactly one attempt per step.
	step = 2500 * time.Millisecond
)

// candidate runs one Elector and reports what its callbacks saw.
type candidate struct {
	e       *Elector
	started chan struct{} // OnStartedLeading began
	stopped chan struct{} // OnStoppedLeading ran
	runErr  chan error    // Run returned
	cancel  context.CancelFunc

	mu             sync.Mutex
	leaderCtxEnded bool
	orderOK        bool // leader ctx ended before OnStoppedLeading
	newLeaders     []string
}

func startCandidate(t *testing.T, client *fakeLeaseClient, clock *fakeClock, id string, release bool) *candidate {
	t.Helper()
	c := &candidate{started: make(chan struct{}), stopped: make(chan struct{}), runErr: make(chan error, 1)}
	e, err := New(Config{
		Client: client, Name: "ctrl", Identity: id,
		LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry,
		ReleaseOnCancel: release,
		Clock:           clock,
		Logger:          slog.New(slog.DiscardHandler),
		OnStartedLeading: func(ctx context.Context) {
			close(c.started)
			<-ctx.Done()
			c.mu.Lock()
			c.leaderCtxEnded = true
			c.mu.Unlock()
		},
		OnStoppedLeading: func() {
			c.mu.Lock()
			c.orderOK = c.leaderCtxEnded
			c.mu.Unlock()
			close(c.stopped)
		},
		OnNewLeader: func(id string) {
			c.mu.Lock()
			c.newLeaders = append(c.newLeaders, id)
			c.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.e = e
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.runErr <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.runErr:
		case <-time.After(waitBound):
			t.Errorf("%s: Run did not return", id)
		}
	})
	return c
}

func (c *candidate) isStarted() bool {
	select {
	case <-c.started:
		return true
	default:
		return false
	}
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitBound):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func waitRun(t *testing.T, c *candidate) error {
	t.Helper()
	select {
	case err := <-c.runErr:
		c.runErr <- err // leave it for cleanup
		return err
	case <-time.After(waitBound):
		t.Fatal("Run did not return")
		return nil
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{Client: &fakeLeaseClient{}, Name: "n", Identity: "i", OnStartedLeading: func(context.Context) {}}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"defaults are valid", func(*Config) {}, ""},
		{"no client", func(c *Config) { c.Client = nil }, "Client is required"},
		{"no name", func(c *Config) { c.Name = "" }, "Name is required"},
		{"no identity", func(c *Config) { c.Identity = "" }, "Identity is required"},
		{"no callback", func(c *Config) { c.OnStartedLeading = nil }, "OnStartedLeading is required"},
		{"lease not longer than renew", func(c *Config) { c.LeaseDuration = 10 * time.Second }, "must be longer than RenewDeadline"},
		{"renew too close to retry", func(c *Config) { c.RetryPeriod = 9 * time.Second }, "must be longer than 1.2×RetryPeriod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			e, err := New(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if e.cfg.Namespace != DefaultNamespace || e.cfg.LeaseDuration != DefaultLeaseDuration {
					t.Errorf("defaults not applied: %+v", e.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestAcquireAndRelease(t *testing.T) {
	clock := newFakeClock()
	client := &fakeLeaseClient{clock: clock}
	a := startCandidate(t, client, clock, "a", true)
	waitFor(t, a.started, "a to lead")
	if !a.e.IsLeader() || a.e.Leader() != "a" {
		t.Errorf("IsLeader=%v Leader=%q", a.e.IsLeader(), a.e.Leader())
	}
	holder, transitions, _, _ := client.snapshot()
	if holder != "a" || transitions != 0 {
		t.Errorf("lease holder=%q transitions=%d, want a/0", holder, transitions)
	}
	// Renewals move renewTime forward while a leads.
	for range 3 {
		stepWhen(t, clock, 1, testRetry)
	}
	stepWhen(t, clock, 1, 0) // wait until the third renewal has been written
	_, _, writes, _ := client.snapshot()
	if len(writes) != 4 {
		t.Errorf("writes = %d, want create + 3 renewals", len(writes))
	}
	a.cancel()
	if err := waitRun(t, a); err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	waitFor(t, a.stopped, "OnStoppedLeading")
	if holder, _, _, _ := client.snapshot(); holder != "" {
		t.Errorf("lease still held by %q after release", holder)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.orderOK {
		t.Error("OnStoppedLeading ran before the leader's context ended")
	}
	if a.e.IsLeader() {
		t.Error("IsLeader after stop")
	}
}

func TestTakeoverOnlyAfterExpiry(t *testing.T) {
	clock := newFakeClock()
	client := &fakeLeaseClient{clock: clock}
	client.setHolder("ghost") // a holder that will never renew
	t0 := clock.Now()

	b := startCandidate(t, client, clock, "b", false)
	for i := 0; !b.isStarted(); i++ {
		if i > 20 {
			t.Fatal("b never took over the expired lease")
		}
		stepWhen(t, clock, 1, step)
	}
	_, transitions, writes, _ := client.snapshot()
	took := writes[len(writes)-1]
	if took.holder != "b" {
		t.Fatalf("last write by %q", took.holder)
	}
	if took.at.Before(t0.Add(testLease)) {
		t.Errorf("took over %v after the last renewal seen, before the %v lease ran out", took.at.Sub(t0), testLease)
	}
	if took.at.After(t0.Add(testLease + step)) {
		t.Errorf("took over %v after expiry; should be within one retry", took.at.Sub(t0.Add(testLease)))
	}
	if transitions != 1 {
		t.Errorf("leaseTransitions = %d, want 1", transitions)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if strings.Join(b.newLeaders, ",") != "ghost,b" {
		t.Errorf("OnNewLeader saw %v, want [ghost b]", b.newLeaders)
	}
}

func TestStandbyWaitsWhileLeaderRenews(t *testing.T) {
	clock := newFakeClock()
	client := &fakeLeaseClient{clock: clock}
	a := startCandidate(t, client, clock, "a", true)
	waitFor(t, a.started, "a to lead")
	b := startCandidate(t, client, clock, "b", false)

	// Far longer than a lease: b must not take over from a live leader.
	for range 20 {
		stepWhen(t, clock, 2, step)
	}
	if b.isStarted() {
		t.Fatal("b started leading while a was renewing")
	}
	_, _, writes, calls := client.snapshot()
	for _, w := range writes {
		if w.holder != "a" {
			t.Fatalf("write by %q while a leads", w.holder)
		}
	}
	if calls < 40 {
		t.Errorf("only %d lease calls: candidates are not retrying", calls)
	}

	// a steps down and releases: b takes over at its next attempt.
	a.cancel()
	waitFor(t, a.stopped, "a to stop")
	for i := 0; !b.isStarted(); i++ {
		if i > 3 {
			t.Fatal("b did not take the released lease")
		}
		stepWhen(t, clock, 1, step)
	}
	if holder, transitions, _, _ := client.snapshot(); holder != "b" || transitions != 1 {
		t.Errorf("holder=%q transitions=%d, want b/1", holder, transitions)
	}
}

func TestRenewFailureEndsLeadership(t *testing.T) {
	clock := newFakeClock()
	client := &fakeLeaseClient{clock: clock}
	a := startCandidate(t, client, clock, "a", false)
	waitFor(t, a.started, "a to lead")
	_, _, _, before := client.snapshot()
	client.setFail(errors.New("apiserver unreachable"))

	var err error
	for i := 0; err == nil; i++ {
		if i > 10 {
			t.Fatal("leadership not lost after renewals kept failing")
		}
		// Step only while a is waiting for its next attempt; stop once
		// Run has returned.
		deadline := time.Now().Add(waitBound)
		for err == nil && clock.Waiting() == 0 {
			select {
			case err = <-a.runErr:
				a.runErr <- err
			case <-time.After(time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("a neither waits nor returns")
			}
		}
		if err == nil {
			stepWhen(t, clock, 1, testRetry)
		}
	}
	if !strings.Contains(err.Error(), "no successful renewal") || !strings.Contains(err.Error(), "apiserver unreachable") {
		t.Errorf("Run error = %v", err)
	}
	_, _, _, after := client.snapshot()
	// Attempts at +2s ... +10s: the fifth reaches RenewDeadline.
	if attempts := after - before; attempts != 5 {
		t.Errorf("renew attempts = %d, want 5 (RenewDeadline/RetryPeriod)", attempts)
	}
	waitFor(t, a.stopped, "OnStoppedLeading")
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.orderOK {
		t.Error("OnStoppedLeading ran before the leader's context ended")
	}
}

func TestLeaseTakenByOtherEndsLeadership(t *testing.T) {
	clock := newFakeClock()
	client := &fakeLeaseClient{clock: clock}
	a := startCandidate(t, client, clock, "a", true)
	waitFor(t, a.started, "a to lead")
	client.setHolder("intruder")
	stepWhen(t, clock, 1, testRetry)
	err := waitRun(t, a)
	if err == nil || !strings.Contains(err.Error(), `held by another candidate "intruder"`) {
		t.Fatalf("Run error = %v", err)
	}
	// a must not "release" a lease it no longer holds.
	if holder, _, _, _ := client.snapshot(); holder != "intruder" {
		t.Errorf("holder = %q, want intruder untouched", holder)
	}
}

func TestConcurrentWriterWinsRound(t *testing.T) {
	clock := newFakeClock()
	client := &fakeLeaseClient{clock: clock}
	client.setHolder("old")
	stepWhen(t, clock, 0, time.Hour) // old's lease is long expired...
	e, err := New(Config{Client: client, Name: "ctrl", Identity: "me", Clock: clock,
		Logger: slog.New(slog.DiscardHandler), OnStartedLeading: func(context.Context) {}})
	if err != nil {
		t.Fatal(err)
	}
	// ...but we have only just observed it, so first let it age by our clock.
	if ok, _ := e.tryAcquireOrRenew(context.Background()); ok {
		t.Fatal("acquired a lease only just observed")
	}
	stepWhen(t, clock, 0, DefaultLeaseDuration)
	// Between our read and our write, someone else takes it.
	client.beforeUpdate = func(f *fakeLeaseClient) {
		f.mu.Unlock()
		f.setHolder("racer")
		f.mu.Lock()
	}
	ok, err := e.tryAcquireOrRenew(context.Background())
	if ok || !apierrors.IsConflict(err) {
		t.Fatalf("tryAcquireOrRenew = %v, %v; want a lost round with Conflict", ok, err)
	}
	if holder, _, _, _ := client.snapshot(); holder != "racer" {
		t.Errorf("holder = %q, want racer", holder)
	}
}

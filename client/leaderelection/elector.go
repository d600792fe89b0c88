package leaderelection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	"github.com/minik8s/minik8s/client/workqueue"
)

// LeaseClient reads and writes Leases in one namespace;
// typed.Clientset.Leases.Namespace(ns) is one.
type LeaseClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error)
	Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error)
	Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error)
}

// Kubernetes' defaults: a dead leader is replaced within about 15s, a live
// one gives up if it cannot renew for 10s, and candidates poll every 2s.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
	// DefaultNamespace is where component leases live.
	DefaultNamespace = "kube-system"
)

// jitter stretches retry waits by up to 20% so candidates drift apart.
const jitter = 0.2

// Config describes one candidate.
type Config struct {
	// Client reads and writes Leases in Namespace.
	Client LeaseClient
	// Namespace and Name identify the Lease; Namespace "" means kube-system.
	Namespace, Name string
	// Identity is this candidate's unique name (hostname + random suffix).
	Identity string

	// LeaseDuration is how long others wait after the last renewal seen
	// before taking over. RenewDeadline is how long the leader keeps
	// retrying a failed renewal before giving up; it must be shorter than
	// LeaseDuration so the leader stops before anyone else can start.
	// RetryPeriod is the wait between attempts. Zero means the default.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration

	// OnStartedLeading runs the leader's work; ctx is cancelled when
	// leadership is lost or Run's context ends, and it must then return.
	OnStartedLeading func(ctx context.Context)
	// OnStoppedLeading, if set, is called after OnStartedLeading has
	// returned, when leadership ended. Not called if we never led.
	OnStoppedLeading func()
	// OnNewLeader, if set, is called with the holder's identity whenever
	// a different holder is observed (including ourselves). Keep it quick.
	OnNewLeader func(identity string)

	// ReleaseOnCancel gives the Lease up when Run's context ends, so a
	// successor need not wait LeaseDuration. Only safe if the leader's
	// work has really stopped when OnStartedLeading returns.
	ReleaseOnCancel bool

	// Clock is the time source; nil means the wall clock. Tests pass theirs.
	Clock workqueue.Clock
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Elector runs one candidate's election loop.
type Elector struct {
	cfg   Config
	clock workqueue.Clock
	log   *slog.Logger

	mu       sync.Mutex
	leader   string // last observed holder
	isLeader bool

	// observed is the Lease as last read or written, and observedAt is
	// when (by our clock) we first saw that version of its record.
	observed   *coordinationv1.Lease
	observedAt time.Time
}

// New validates cfg and returns an Elector.
func New(cfg Config) (*Elector, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = DefaultRenewDeadline
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = DefaultRetryPeriod
	}
	switch {
	case cfg.Client == nil:
		return nil, errors.New("leader election: Client is required")
	case cfg.Name == "":
		return nil, errors.New("leader election: Name is required")
	case cfg.Identity == "":
		return nil, errors.New("leader election: Identity is required")
	case cfg.OnStartedLeading == nil:
		return nil, errors.New("leader election: OnStartedLeading is required")
	case cfg.LeaseDuration <= cfg.RenewDeadline:
		return nil, fmt.Errorf("leader election: LeaseDuration (%v) must be longer than RenewDeadline (%v)", cfg.LeaseDuration, cfg.RenewDeadline)
	case float64(cfg.RenewDeadline) <= (1+jitter)*float64(cfg.RetryPeriod):
		return nil, fmt.Errorf("leader election: RenewDeadline (%v) must be longer than %v×RetryPeriod (%v)", cfg.RenewDeadline, 1+jitter, cfg.RetryPeriod)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = workqueue.RealClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Elector{
		cfg:   cfg,
		clock: clock,
		log:   log.With("component", "leaderelection", "lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity),
	}, nil
}

// IsLeader reports whether this candidate currently leads.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.isLeader
}

// Leader is the last observed holder's identity ("" if none).
func (e *Elector) Leader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// Run campaigns until it wins, leads until it loses or ctx ends, and
// returns. It returns nil when ctx ended and an error when leadership was
// lost; components usually exit then, since their caches and queues were
// built for a leader.
func (e *Elector) Run(ctx context.Context) error {
	if !e.acquire(ctx) {
		return nil
	}
	e.log.Info("became leader")
	leaderCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.cfg.OnStartedLeading(leaderCtx)
	}()
	lostErr := e.renew(ctx)
	cancel()
	// Wait for the leader's work to stop before anything else: releasing
	// the Lease while it still runs would let a successor overlap with it.
	wg.Wait()
	e.setLeader(false)
	if lostErr == nil && e.cfg.ReleaseOnCancel {
		e.release()
	}
	if e.cfg.OnStoppedLeading != nil {
		e.cfg.OnStoppedLeading()
	}
	if lostErr != nil {
		e.log.Warn("lost leadership", "err", lostErr)
	} else {
		e.log.Info("stopped leading")
	}
	return lostErr
}

// acquire retries every RetryPeriod until the Lease is ours (true) or ctx
// ends (false).
func (e *Elector) acquire(ctx context.Context) bool {
	for {
		ok, err := e.tryAcquireOrRenew(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Debug("could not acquire lease", "err", err)
		}
		if ok {
			return true
		}
		if !e.wait(ctx, e.jittered()) {
			return false
		}
	}
}

// renew keeps the Lease until a renewal has failed for RenewDeadline or
// another holder shows up (error), or ctx ends (nil).
func (e *Elector) renew(ctx context.Context) error {
	lastRenew := e.clock.Now()
	for {
		if !e.wait(ctx, e.cfg.RetryPeriod) {
			return nil
		}
		ok, err := e.tryAcquireOrRenew(ctx)
		if ctx.Err() != nil {
			return nil
		}
		now := e.clock.Now()
		if ok {
			lastRenew = now
			continue
		}
		if errors.Is(err, errHeldByOther) {
			return fmt.Errorf("lease %s/%s: %w", e.cfg.Namespace, e.cfg.Name, err)
		}
		if now.Sub(lastRenew) >= e.cfg.RenewDeadline {
			return fmt.Errorf("lease %s/%s: no successful renewal for %v: %w", e.cfg.Namespace, e.cfg.Name, now.Sub(lastRenew), err)
		}
		e.log.Warn("renewal failed; retrying", "err", err)
	}
}

var errHeldByOther = errors.New("lease is held by another candidate")

// tryAcquireOrRenew makes one attempt to create, take over or renew the
// Lease. It reports whether we hold it afterwards.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RenewDeadline)
	defer cancel()
	now := e.clock.Now()
	micro := metav1.NewMicroTime(now)
	durSecs := int32(e.cfg.LeaseDuration.Round(time.Second) / time.Second)

	lease, err := e.cfg.Client.Get(ctx, e.cfg.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		zero := int32(0)
		fresh := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.cfg.Namespace, Name: e.cfg.Name},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       &e.cfg.Identity,
				LeaseDurationSeconds: &durSecs,
				AcquireTime:          &micro,
				RenewTime:            &micro,
				LeaseTransitions:     &zero,
			},
		}
		created, err := e.cfg.Client.Create(ctx, fresh, metav1.CreateOptions{})
		if err != nil {
			// AlreadyExists: another candidate created it first.
			return false, fmt.Errorf("create lease %s/%s: %w", e.cfg.Namespace, e.cfg.Name, err)
		}
		e.observe(created, now)
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("get lease %s/%s: %w", e.cfg.Namespace, e.cfg.Name, err)
	}
	e.observe(lease, now)

	holder := deref(lease.Spec.HolderIdentity)
	if holder != "" && holder != e.cfg.Identity && !e.expired(lease, now) {
		return false, fmt.Errorf("%w %q", errHeldByOther, holder)
	}

	next := lease.DeepCopy()
	if holder != e.cfg.Identity {
		// Taking over (expired or released): a new term begins.
		transitions := deref(lease.Spec.LeaseTransitions) + 1
		next.Spec.LeaseTransitions = &transitions
		next.Spec.AcquireTime = &micro
	}
	next.Spec.HolderIdentity = &e.cfg.Identity
	next.Spec.LeaseDurationSeconds = &durSecs
	next.Spec.RenewTime = &micro
	// next carries the resourceVersion we read: if anyone wrote in between,
	// the server answers Conflict and we lose this round.
	updated, err := e.cfg.Client.Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return false, fmt.Errorf("update lease %s/%s: %w", e.cfg.Namespace, e.cfg.Name, err)
	}
	e.observe(updated, now)
	return true, nil
}

// observe records the Lease as seen at now. observedAt moves only when the
// record changed, so a holder that stopped renewing expires by our clock.
func (e *Elector) observe(lease *coordinationv1.Lease, now time.Time) {
	e.mu.Lock()
	changed := e.observed == nil || !sameRecord(e.observed, lease)
	if changed {
		e.observed = lease.DeepCopy()
		e.observedAt = now
	}
	holder := deref(lease.Spec.HolderIdentity)
	newLeader := holder != e.leader
	e.leader = holder
	e.isLeader = holder == e.cfg.Identity
	e.mu.Unlock()
	if newLeader && holder != "" && e.cfg.OnNewLeader != nil {
		e.cfg.OnNewLeader(holder)
	}
}

func (e *Elector) setLeader(v bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.isLeader = v
}

// expired reports whether the holder has had LeaseDuration (its own
// declared duration if set) since we saw its record last change.
func (e *Elector) expired(lease *coordinationv1.Lease, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.cfg.LeaseDuration
	if s := deref(lease.Spec.LeaseDurationSeconds); s > 0 {
		d = time.Duration(s) * time.Second
	}
	return !now.Before(e.observedAt.Add(d))
}

// release hands the Lease back so a successor can take it at once. Best
// effort: on failure the Lease simply expires.
func (e *Elector) release() {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RenewDeadline)
	defer cancel()
	lease, err := e.cfg.Client.Get(ctx, e.cfg.Name, metav1.GetOptions{})
	if err != nil || deref(lease.Spec.HolderIdentity) != e.cfg.Identity {
		return
	}
	next := lease.DeepCopy()
	now := metav1.NewMicroTime(e.clock.Now())
	one := int32(1)
	next.Spec.HolderIdentity = nil
	next.Spec.LeaseDurationSeconds = &one
	next.Spec.RenewTime = &now
	if _, err := e.cfg.Client.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		e.log.Warn("could not release lease", "err", err)
	}
}

// wait sleeps d by the elector's clock; false if ctx ended first.
func (e *Elector) wait(ctx context.Context, d time.Duration) bool {
	fire, release := e.clock.TimerAt(e.clock.Now().Add(d))
	defer release()
	select {
	case <-ctx.Done():
		return false
	case <-fire:
		return true
	}
}

func (e *Elector) jittered() time.Duration {
	return e.cfg.RetryPeriod + time.Duration(rand.Float64()*jitter*float64(e.cfg.RetryPeriod))
}

func sameRecord(a, b *coordinationv1.Lease) bool {
	return deref(a.Spec.HolderIdentity) == deref(b.Spec.HolderIdentity) &&
		microEqual(a.Spec.RenewTime, b.Spec.RenewTime) &&
		deref(a.Spec.LeaseTransitions) == deref(b.Spec.LeaseTransitions) &&
		a.ResourceVersion == b.ResourceVersion
}

func microEqual(a, b *metav1.MicroTime) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

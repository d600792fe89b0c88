package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/controllers/events"
)

// WaitTimeout bounds every wait in the controllers' tests. It is generous
// because the machine is shared; nothing asserts how fast things happen.
const WaitTimeout = 90 * time.Second

// Env is a running API server and an admin client for it.
type Env struct {
	T      *testing.T
	Server *apiservertest.Server
	// Config is the admin REST config (copy it before changing it).
	Config *rest.Config
	// CS is an admin clientset for the test's own reads and writes.
	CS *typed.Clientset
	// Ctx ends when the test ends.
	Ctx context.Context
}

// Start runs an API server for the test. It skips under -short.
func Start(t *testing.T) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	s := apiservertest.Start(t)
	cfg := s.RESTConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &Env{T: t, Server: s, Config: cfg, Ctx: ctx}
	e.CS = e.Clientset("test")
	return e
}

// Clientset returns a new clientset with its own user agent.
func (e *Env) Clientset(agent string) *typed.Clientset {
	e.T.Helper()
	cfg := *e.Config
	cfg.UserAgent = agent
	cs, err := typed.NewForConfig(&cfg)
	if err != nil {
		e.T.Fatal(err)
	}
	return cs
}

// Factory returns a new informer factory over cs.
func (e *Env) Factory(cs *typed.Clientset) *informer.Factory {
	return informer.NewFactory(cs.REST, informer.FactoryOptions{Logger: Logger("informer")})
}

// Namespace creates a namespace for the test.
func (e *Env) Namespace(name string) string {
	e.T.Helper()
	_, err := e.CS.Namespaces.Create(e.Ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		e.T.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

// Logger returns a logger for a component under test: quiet (warnings
// only) unless MINIK8S_TEST_LOG is set.
func Logger(component string) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("MINIK8S_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test-component", component)
}

// Eventually polls cond until it reports true, failing the test after
// WaitTimeout with what and cond's last error. Errors from cond are not
// fatal: they say why it is "not yet" (and are ignored once ok is true).
func Eventually(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Go runs f in a goroutine owned by the test: the returned function
// cancels f's context and waits for it, and runs at cleanup too.
func Go(t testing.TB, parent context.Context, f func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(WaitTimeout):
				panic(fmt.Sprintf("%s: goroutine did not stop", t.Name()))
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Recorder returns an event recorder writing to the API server as
// component, running until the test ends.
func (e *Env) Recorder(cs *typed.Clientset, component string) events.Recorder {
	b := events.NewBroadcaster(events.Config{Sink: events.ClientSink(cs.Events), Component: component, Logger: Logger(component)})
	Go(e.T, e.Ctx, b.Run)
	return b.Recorder()
}

// Run starts f's informers and runs each function until the returned stop
// is called (or the test ends); stop waits for all of them and for the
// informers.
func (e *Env) Run(f *informer.Factory, runs ...func(ctx context.Context)) (stop func()) {
	return Go(e.T, e.Ctx, func(ctx context.Context) {
		var wg sync.WaitGroup
		for _, r := range runs {
			wg.Go(func() { r(ctx) })
		}
		f.Start(ctx)
		wg.Wait()
		f.Wait()
	})
}

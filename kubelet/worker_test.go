package kubelet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

// unitKubelet is a kubelet on the fake runtime with no API server: enough
// for converge, volumes and config building.
func unitKubelet(t *testing.T, rt runtime.Runtime, configs ConfigSource) *Kubelet {
	t.Helper()
	k := &Kubelet{
		cfg:     Config{NodeName: "n1", RootDir: t.TempDir(), SyncInterval: time.Second, ResyncInterval: 10 * time.Second},
		rt:      rt,
		configs: configs,
		clock:   realClock{},
		log:     testLog(),
		nodeIP:  "192.0.2.10",
		metrics: getMetrics(),
	}
	k.backoff = NewBackoff(k.clock, backoffInitial, backoffMax, backoffReset)
	k.probes = NewProbeManager(alwaysProber{}, k.clock, k.log, func(types.UID) {})
	return k
}

// A new pod gets its sandbox and its containers in one converge: waiting
// for another sync in between cost every pod up to a SyncInterval.
func TestConvergeStartsContainersWithTheSandbox(t *testing.T) {
	fake := runtime.NewFake()
	k := unitKubelet(t, fake, mapConfigs{})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u-web"},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "a", Image: "img:1"}, {Name: "b", Image: "img:1"}}},
	}
	w := newPodWorker(k, pod.UID, pod.Namespace, pod.Name)
	ctx := context.Background()
	state, err := k.podRuntimeState(ctx, pod.UID)
	if err != nil {
		t.Fatal(err)
	}
	acted, _, err := w.converge(ctx, pod, state)
	if err != nil || !acted {
		t.Fatalf("converge: acted %v err %v", acted, err)
	}
	calls := fake.Calls()
	if n := count(calls, "RunPodSandbox"); n != 1 {
		t.Errorf("%d sandboxes started, want 1: %v", n, calls)
	}
	if n := count(calls, "StartContainer"); n != 2 {
		t.Errorf("%d containers started in the first converge, want 2: %v", n, calls)
	}
	state, _ = k.podRuntimeState(ctx, pod.UID)
	st := w.status(pod, state)
	if st.Phase != corev1.PodRunning || st.PodIP == "" {
		t.Errorf("after one converge: phase %s podIP %q", st.Phase, st.PodIP)
	}
	for _, c := range state.containers {
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container %s is %s", c.GetMetadata().GetName(), c.State)
		}
	}
}

func count(calls []string, name string) int {
	n := 0
	for _, c := range calls {
		if c == name || strings.HasPrefix(c, name+" ") {
			n++
		}
	}
	return n
}

// slowSandboxes is a runtime whose RunPodSandbox takes a while and counts
// how many calls are in flight.
type slowSandboxes struct {
	*runtime.Fake
	mu             sync.Mutex
	inFlight, peak int
}

func (s *slowSandboxes) RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig) (string, error) {
	s.mu.Lock()
	s.inFlight++
	s.peak = max(s.peak, s.inFlight)
	s.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
	return s.Fake.RunPodSandbox(ctx, cfg)
}

func TestSandboxStartsAreBounded(t *testing.T) {
	rt := &slowSandboxes{Fake: runtime.NewFake()}
	k := unitKubelet(t, rt, mapConfigs{})
	k.sandboxSlots = make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprint("p", i), Uid: fmt.Sprint("u", i)}}
			if _, err := k.runPodSandbox(context.Background(), cfg); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if sb, _, _ := rt.Counts(); sb != 8 || rt.peak != 2 {
		t.Errorf("%d sandboxes started, at most %d at once; want 8, at most 2", sb, rt.peak)
	}
	// A waiting start gives up with its context.
	k.sandboxSlots <- struct{}{}
	k.sandboxSlots <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := k.runPodSandbox(ctx, &runtimeapi.PodSandboxConfig{}); err == nil {
		t.Error("started a sandbox with every slot taken")
	}
}

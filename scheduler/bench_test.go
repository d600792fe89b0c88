package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/scheduler/framework"
	st "github.com/minik8s/minik8s/scheduler/internal/schedtest"
	"github.com/minik8s/minik8s/scheduler/plugins"
)

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type nopBinder struct{}

func (nopBinder) Bind(context.Context, *corev1.Binding, metav1.CreateOptions) error { return nil }

type nopRecorder struct{}

func (nopRecorder) Event(runtime.Object, string, string, string) {}

// BenchmarkScheduleOne measures the scheduling cycle alone (snapshot,
// filter, score, assume; the binding is a no-op) on clusters of 100, 1000
// and 5000 nodes, with pods of ten ReplicaSets so spreading is scored. It
// reports pods/s; it asserts nothing.
func BenchmarkScheduleOne(b *testing.B) {
	for _, numNodes := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", numNodes), func(b *testing.B) {
			cs, err := typed.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1"})
			if err != nil {
				b.Fatal(err)
			}
			fw, err := framework.New(framework.Config{
				Plugins: append(plugins.Default(nopBinder{})[:9:9], plugins.DefaultBinder{Client: nopBinder{}}),
				Weights: plugins.DefaultWeights(),
			})
			if err != nil {
				b.Fatal(err)
			}
			s, err := New(Config{Client: cs, Framework: fw, Recorder: nopRecorder{}, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			for i := range numNodes {
				s.cache.AddNode(st.Node(fmt.Sprintf("node-%05d", i), "32", "128Gi", 1000,
					st.NodeLabels("topology.kubernetes.io/zone", fmt.Sprintf("zone-%d", i%3))))
			}
			ctx := context.Background()
			pods := make([]*corev1.Pod, b.N)
			for i := range pods {
				p := st.Pod("bench", fmt.Sprintf("pod-%d", i), st.Container("10m", "16Mi"), st.OwnedBy(fmt.Sprintf("rs-%d", i%10)))
				p.UID = types.UID(fmt.Sprintf("uid-%d", i))
				pods[i] = p
			}
			b.ReportAllocs()
			cpu0 := processCPU()
			b.ResetTimer()
			for _, p := range pods {
				s.queue.Add(p)
				qp, err := s.queue.Pop(ctx)
				if err != nil {
					b.Fatal(err)
				}
				s.scheduleOne(ctx, qp)
			}
			s.async.Wait()
			b.StopTimer()
			// On a shared machine wall time says little; CPU time per pod
			// (user+sys of the whole process, GC included) says what 2
			// idle cores would do.
			cpu := processCPU() - cpu0
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pods/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/pod")
			if st := s.cache.Stats(); st.Pods != b.N {
				b.Fatalf("%d pods in the cache after scheduling %d", st.Pods, b.N)
			}
		})
	}
}

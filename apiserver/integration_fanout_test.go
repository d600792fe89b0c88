package apiserver_test

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestIntegrationWatchFanOut: many watchers of one resource, while several
// writers change it, each see every change exactly once and in revision
// order. A watcher the server closes (for falling behind) resumes from the
// last resourceVersion it saw, as a client-go reflector does; resuming must
// not lose or repeat anything.
func TestIntegrationWatchFanOut(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	itNamespace(t, cs, "fanout")
	cms := cs.CoreV1().ConfigMaps("fanout")
	l, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	startRV := l.ResourceVersion

	const watchers, writers, writesEach = 20, 4, 50
	type result struct {
		rvs     []string
		resumes int
		err     error
	}
	results := make([]result, watchers)
	total := writers * writesEach
	var wg sync.WaitGroup
	for i := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			rv := startRV
			deadline := time.After(90 * time.Second)
			for len(r.rvs) < total {
				w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
				if err != nil {
					r.err = err
					return
				}
			stream:
				for len(r.rvs) < total {
					select {
					case ev, ok := <-w.ResultChan():
						if !ok {
							r.resumes++
							break stream
						}
						if ev.Type == watch.Error {
							r.err = fmt.Errorf("error event after %d: %+v", len(r.rvs), ev.Object)
							w.Stop()
							return
						}
						cm := ev.Object.(*corev1.ConfigMap)
						rv = cm.ResourceVersion
						r.rvs = append(r.rvs, rv)
					case <-deadline:
						r.err = fmt.Errorf("only %d of %d events within 90s", len(r.rvs), total)
						w.Stop()
						return
					}
				}
				w.Stop()
			}
		}()
	}

	var mu sync.Mutex
	var written []string
	var wwg sync.WaitGroup
	for wr := range writers {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			name := fmt.Sprintf("w%d", wr)
			cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"n": "0"}}, metav1.CreateOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			written = append(written, cm.ResourceVersion)
			mu.Unlock()
			for n := 1; n < writesEach; n++ {
				cm.Data["n"] = fmt.Sprint(n)
				if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				written = append(written, cm.ResourceVersion)
				mu.Unlock()
			}
		}()
	}
	wwg.Wait()
	wg.Wait()
	sort.Slice(written, func(i, j int) bool { return itRV(t, written[i]) < itRV(t, written[j]) })
	resumes := 0
	for i, r := range results {
		resumes += r.resumes
		if r.err != nil {
			t.Errorf("watcher %d: %v", i, r.err)
			continue
		}
		if !slices.Equal(r.rvs, written) {
			t.Errorf("watcher %d saw %d events, not the %d writes in order (first difference at %d)", i, len(r.rvs), len(written), firstDiff(r.rvs, written))
		}
	}
	t.Logf("%d watchers x %d events, %d resumes after the server closed a watch", watchers, total, resumes)
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

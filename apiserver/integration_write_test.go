package apiserver_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestIntegrationStaleUpdateConflicts: an update carrying an old
// resourceVersion is refused with 409 Conflict and changes nothing.
func TestIntegrationStaleUpdateConflicts(t *testing.T) {
	s := apiservertest.Start(t)
	itBodyEncodings(t, s, func(t *testing.T, cs *kubernetes.Clientset, sfx string) {
		ctx := itCtx(t)
		cms := cs.CoreV1().ConfigMaps("default")
		cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "stale-" + sfx}, Data: map[string]string{"v": "0"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stale := cm.DeepCopy()
		cm.Data["v"] = "1"
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		stale.Data["v"] = "stale"
		_, err = cms.Update(ctx, stale, metav1.UpdateOptions{})
		st := itWantStatus(t, err, 409, metav1.StatusReasonConflict)
		if st.Details == nil || st.Details.Name != "stale-"+sfx || st.Details.Kind != "configmaps" {
			t.Errorf("conflict details %+v", st.Details)
		}
		if !apierrors.IsConflict(err) {
			t.Errorf("client-go does not see a conflict: %v", err)
		}
		got, err := cms.Get(ctx, "stale-"+sfx, metav1.GetOptions{})
		if err != nil || got.Data["v"] != "1" {
			t.Fatalf("after refused update: %v %v", got.Data, err)
		}
		// A patch with a stale resourceVersion in it conflicts too.
		_, err = cms.Patch(ctx, "stale-"+sfx, types.MergePatchType,
			[]byte(`{"metadata":{"resourceVersion":"`+stale.ResourceVersion+`"},"data":{"v":"p"}}`), metav1.PatchOptions{})
		itWantStatus(t, err, 409, metav1.StatusReasonConflict)
		// Without a resourceVersion the update is unconditional.
		stale.ResourceVersion = ""
		if _, err := cms.Update(ctx, stale, metav1.UpdateOptions{}); err != nil {
			t.Errorf("unconditional update: %v", err)
		}
	})
}

// TestIntegrationConcurrentCounter: 50 writers each add 1 to a counter in
// one ConfigMap 20 times with read-modify-write and retry on 409; no
// increment may be lost, so the counter ends at exactly 1000.
func TestIntegrationConcurrentCounter(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	cms := cs.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "counter"},
		Data: map[string]string{"n": "0"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const writers, perWriter = 50, 20
	// retry.DefaultRetry gives up after 5 conflicts, which 50 writers on one
	// key easily exceed; the point here is that retrying works, so retry
	// until it does: exponential backoff with jitter spreads the writers out
	// (60 steps of x1.15 from 5ms: a writer that keeps losing waits a few
	// minutes in all before giving up; 30 steps ran out once on a machine at
	// load 30). No Cap: wait.Backoff ends the retries once the cap is reached.
	backoff := wait.Backoff{Steps: 60, Duration: 5 * time.Millisecond, Factor: 1.15, Jitter: 1}
	var conflicts sync.Map
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for range perWriter {
				err := retry.RetryOnConflict(backoff, func() error {
					cm, err := cms.Get(ctx, "counter", metav1.GetOptions{})
					if err != nil {
						return err
					}
					v, err := strconv.Atoi(cm.Data["n"])
					if err != nil {
						return err
					}
					cm.Data["n"] = strconv.Itoa(v + 1)
					_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
					if apierrors.IsConflict(err) {
						n++
					}
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
			conflicts.Store(w, n)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("writer failed: %v", err)
	}
	cm, err := cms.Get(ctx, "counter", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["n"] != strconv.Itoa(writers*perWriter) {
		t.Fatalf("counter = %s, want %d", cm.Data["n"], writers*perWriter)
	}
	total := 0
	conflicts.Range(func(_, v any) bool { total += v.(int); return true })
	t.Logf("1000 increments, %d conflicts retried", total)
}

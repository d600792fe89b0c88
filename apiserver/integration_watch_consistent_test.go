package apiserver_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestIntegrationWatchUnsetRVIsConsistent: a watch with no resourceVersion
// starts "at the most recent state" (Kubernetes semantics), so its initial
// ADDED events must include a write acknowledged just before the watch.
func TestIntegrationWatchUnsetRVIsConsistent(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	cms := cs.CoreV1().ConfigMaps("default")
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}, Data: map[string]string{"v": "0"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		cm.Data["v"] = fmt.Sprint(i)
		if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		wi, err := cms.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=fresh"})
		if err != nil {
			t.Fatal(err)
		}
		ev := next(t, wi)
		wi.Stop()
		if ev.typ != watch.Added || ev.data != fmt.Sprint(i) || ev.rv != cm.ResourceVersion {
			t.Fatalf("round %d: watch without resourceVersion started with %v, want ADDED fresh@%s v=%d (state older than an acknowledged write)",
				i, ev, cm.ResourceVersion, i)
		}
	}
}

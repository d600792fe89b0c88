package scheduler

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
)

func nodeAt(name, rv string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
}

func TestDeliveryTrackerWaitsForVersions(t *testing.T) {
	tr := newDeliveryTracker()
	var added []string
	h := tr.wrap(informer.Handler{
		AddFunc:    func(obj runtime.Object) { added = append(added, obj.(*corev1.Node).Name) },
		UpdateFunc: func(_, obj runtime.Object) {},
		DeleteFunc: func(any) {},
	})
	h.AddFunc(nodeAt("already", "5"))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- tr.waitFor(ctx, map[string]uint64{"already": 5, "late": 9, "updated": 12, "gone": 7, "tombstoned": 3})
	}()
	notYet := func(what string) {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("waitFor returned (%v) %s", err, what)
		case <-time.After(20 * time.Millisecond):
		}
	}
	notYet("before anything was delivered")
	h.AddFunc(nodeAt("late", "9"))
	h.AddFunc(nodeAt("updated", "8"))
	notYet("with updated delivered at an older version")
	h.UpdateFunc(nodeAt("updated", "8"), nodeAt("updated", "12"))
	h.DeleteFunc(nodeAt("gone", "7"))
	notYet("without the tombstone")
	h.DeleteFunc(informer.DeletedFinalStateUnknown{Key: "tombstoned", Obj: nodeAt("tombstoned", "1")})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("waitFor did not return once everything was delivered")
	}
	if len(added) != 3 {
		t.Errorf("the wrapped handler got adds %v", added)
	}

	// Nothing left to wait for returns at once; a cancelled wait returns
	// the context's error.
	if err := tr.waitFor(ctx, map[string]uint64{"late": 9}); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if err := tr.waitFor(cctx, map[string]uint64{"never": 1}); err == nil {
		t.Error("waitFor of an undelivered key returned nil after cancel")
	}
	tr.stop()
	h.AddFunc(nodeAt("after-stop", "20")) // must not panic or record
}

func TestStatusWritesKeepOnlyTheLatest(t *testing.T) {
	var w statusWrites
	first := w.begin("uid")
	if !w.latest("uid", first) {
		t.Fatal("the only write is not the latest")
	}
	second := w.begin("uid")
	if w.latest("uid", first) || !w.latest("uid", second) {
		t.Fatal("a later write does not supersede an earlier one")
	}
	w.end("uid", first) // must not drop the newer one
	if !w.latest("uid", second) {
		t.Fatal("ending the superseded write forgot the latest")
	}
	w.end("uid", second)
	if w.latest("uid", first) || len(w.byPod) != 0 {
		t.Fatalf("ended writes are remembered: %v", w.byPod)
	}
}

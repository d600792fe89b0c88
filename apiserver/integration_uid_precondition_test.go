package apiserver_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestIntegrationUIDPrecondition: a uid in an update or patch body must
// match the stored object's, so a writer that still holds a deleted pod
// cannot change the pod recreated under its name (the kubelet's status
// patches rely on it).
func TestIntegrationUIDPrecondition(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	pods := cs.CoreV1().Pods("default")
	newPod := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "minik8s.local/busybox:1.35"}}},
		}
	}
	old, err := pods.Create(ctx, newPod(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "p", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	cur, err := pods.Create(ctx, newPod(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stale := `{"metadata":{"uid":"` + string(old.UID) + `"},"status":{"message":"from the old pod"}}`
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"merge patch of status", func() error {
			_, err := pods.Patch(ctx, "p", types.MergePatchType, []byte(stale), metav1.PatchOptions{}, "status")
			return err
		}},
		{"merge patch of labels", func() error {
			_, err := pods.Patch(ctx, "p", types.MergePatchType,
				[]byte(`{"metadata":{"uid":"`+string(old.UID)+`","labels":{"a":"b"}}}`), metav1.PatchOptions{})
			return err
		}},
		{"update without resourceVersion", func() error {
			p := cur.DeepCopy()
			p.UID, p.ResourceVersion, p.Labels = old.UID, "", map[string]string{"a": "b"}
			_, err := pods.Update(ctx, p, metav1.UpdateOptions{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !apierrors.IsConflict(err) {
				t.Fatalf("a write with the old pod's uid: %v, want 409 Conflict", err)
			}
		})
	}
	got, err := pods.Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != cur.UID || got.Status.Message != "" || len(got.Labels) != 0 || got.ResourceVersion != cur.ResourceVersion {
		t.Errorf("the new pod changed: uid %s (want %s), message %q, labels %v, rv %s (want %s)",
			got.UID, cur.UID, got.Status.Message, got.Labels, got.ResourceVersion, cur.ResourceVersion)
	}
	// The matching uid is accepted.
	if _, err := pods.Patch(ctx, "p", types.MergePatchType,
		[]byte(`{"metadata":{"uid":"`+string(cur.UID)+`"},"status":{"message":"ok"}}`), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("a status patch with the current uid: %v", err)
	}
}

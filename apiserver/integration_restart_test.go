package apiserver_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestIntegrationRestartKeepsState: objects, their uids and resource
// versions survive a restart on the same data dir, the admin token still
// works, and the kubernetes Service/Endpoints describe the restarted server
// (which listens on a new port in tests).
func TestIntegrationRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	s := apiservertest.StartIn(t, dir)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	cm, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "keep"},
		Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc1, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := s.AdminToken
	s.Stop()

	s2 := apiservertest.StartIn(t, dir)
	if s2.AdminToken != token {
		t.Errorf("admin token changed across restart")
	}
	cs2 := itClientset(t, s2, false)
	got, err := cs2.CoreV1().ConfigMaps("default").Get(ctx, "keep", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != cm.UID || got.ResourceVersion != cm.ResourceVersion || got.Data["k"] != "v" {
		t.Errorf("after restart: uid %s rv %s data %v, want %s %s", got.UID, got.ResourceVersion, got.Data, cm.UID, cm.ResourceVersion)
	}
	svc2, err := cs2.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc2.UID != svc1.UID || svc2.Spec.ClusterIP != "10.96.0.1" {
		t.Errorf("kubernetes service re-created or moved: uid %s->%s ip %s", svc1.UID, svc2.UID, svc2.Spec.ClusterIP)
	}
	ep, err := cs2.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := s2.URL[len("https://"):]
	if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 1 || len(ep.Subsets[0].Ports) != 1 ||
		fmt.Sprintf("%s:%d", ep.Subsets[0].Addresses[0].IP, ep.Subsets[0].Ports[0].Port) != want {
		t.Errorf("kubernetes endpoints after restart %+v, want %s (the restarted server)", ep.Subsets, want)
	}
}

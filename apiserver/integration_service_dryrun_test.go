package apiserver_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestIntegrationServiceDryRunChecksAllocation: a server-side dry run
// (kubectl apply --dry-run=server) of a Service must fail the way the real
// create would when its clusterIP or nodePort is taken, and write nothing.
// (Unlike Kubernetes it does not show the values a real create would pick:
// that would need the allocators to reserve without writing.)
func TestIntegrationServiceDryRunChecksAllocation(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	svcs := cs.CoreV1().Services("default")
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	taken := itService("dry-taken")
	taken.Spec.ClusterIP = "10.96.0.1" // the kubernetes Service has it
	_, err := svcs.Create(ctx, taken, dry)
	st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
	itWantField(t, st, "spec.clusterIP")
	np := itService("dry-nodeport")
	np.Spec.Type = "NodePort"
	np.Spec.Ports[0].NodePort = 30999
	real := np.DeepCopy()
	real.Name = "real-nodeport"
	if _, err := svcs.Create(ctx, real, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = svcs.Create(ctx, np, dry)
	st = itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
	itWantField(t, st, "spec.ports[0].nodePort")
	if _, err := svcs.Create(ctx, itService("dry-new"), dry); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs.Get(ctx, "dry-new", metav1.GetOptions{}); err == nil {
		t.Fatal("a dry-run create stored the Service")
	}
}

package apiserver_test

import (
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestIntegrationServiceDryRunChecksAllocation: a server-side dry run
// (kubectl apply --dry-run=server) of a Service must fail the way the real
// create would when its clusterIP or nodePort is taken, and write nothing.
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

// TestIntegrationServiceDryRunShowsAllocations: like Kubernetes, a dry-run
// create returns the Service as a real create would, with a cluster IP and
// node ports filled in, but reserves nothing: etcd does not change.
func TestIntegrationServiceDryRunShowsAllocations(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	svcs := cs.CoreV1().Services("default")
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	serviceRange := netip.MustParsePrefix("10.96.0.0/12")
	before := itEtcdHead(t, s)

	out, err := svcs.Create(ctx, itService("dry-clusterip"), dry)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(out.Spec.ClusterIP)
	if err != nil || !serviceRange.Contains(ip) || ip.String() == "10.96.0.1" {
		t.Errorf("dry-run clusterIP %q, want a free address of %s", out.Spec.ClusterIP, serviceRange)
	}
	if !slices.Equal(out.Spec.ClusterIPs, []string{out.Spec.ClusterIP}) {
		t.Errorf("clusterIPs = %v, want [clusterIP]", out.Spec.ClusterIPs)
	}
	if out.ResourceVersion != "" || out.UID == "" {
		t.Errorf("dry-run create: resourceVersion %q uid %q, want none and one", out.ResourceVersion, out.UID)
	}

	// Two ports the server picks for, one the client asks for: the picks
	// are distinct, in range, and not the requested one.
	np := itService("dry-nodeport")
	np.Spec.Type = corev1.ServiceTypeNodePort
	np.Spec.Ports = []corev1.ServicePort{
		{Name: "a", Port: 80, TargetPort: intstr.FromInt32(8080)},
		{Name: "b", Port: 81, TargetPort: intstr.FromInt32(8081), NodePort: 30500},
		{Name: "c", Port: 82, TargetPort: intstr.FromInt32(8082)},
	}
	out, err = svcs.Create(ctx, np, dry)
	if err != nil {
		t.Fatal(err)
	}
	p := out.Spec.Ports
	if out.Spec.ClusterIP == "" || p[1].NodePort != 30500 {
		t.Errorf("dry-run NodePort Service: clusterIP %q, requested nodePort %d", out.Spec.ClusterIP, p[1].NodePort)
	}
	for _, i := range []int{0, 2} {
		if p[i].NodePort < 30000 || p[i].NodePort > 32767 || p[i].NodePort == 30500 {
			t.Errorf("ports[%d].nodePort = %d, want a free port of 30000-32767", i, p[i].NodePort)
		}
	}
	if p[0].NodePort == p[2].NodePort {
		t.Errorf("two ports were shown the same node port %d", p[0].NodePort)
	}

	// A port asked for twice fails as the real create would.
	dup := np.DeepCopy()
	dup.Spec.Ports[2].NodePort = 30500
	_, err = svcs.Create(ctx, dup, dry)
	st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
	itWantField(t, st, "spec.ports[2].nodePort")

	if after := itEtcdHead(t, s); after != before {
		t.Errorf("dry-run creates wrote to etcd: revision %d -> %d", before, after)
	}
	for _, name := range []string{"dry-clusterip", "dry-nodeport"} {
		if _, err := svcs.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("get %s after a dry run: %v, want NotFound", name, err)
		}
	}
	// Nothing was reserved: a real create may take what the dry run showed.
	real := itService("real")
	real.Spec.Type = corev1.ServiceTypeNodePort
	real.Spec.ClusterIP = out.Spec.ClusterIP
	real.Spec.Ports[0].NodePort = p[0].NodePort
	if _, err := svcs.Create(ctx, real, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating with the values a dry run showed: %v", err)
	}
}

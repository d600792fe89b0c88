package apiserver_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// itDNSService is a NodePort Service with 53/TCP and 53/UDP, asking for
// tcpNode and udpNode (0: the server picks).
func itDNSService(name string, tcpNode, udpNode int32) *corev1.Service {
	svc := itService(name)
	svc.Spec.Type = corev1.ServiceTypeNodePort
	svc.Spec.Ports = []corev1.ServicePort{
		{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53), NodePort: tcpNode},
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53), NodePort: udpNode},
	}
	return svc
}

func itNodePorts(svc *corev1.Service) []int32 {
	var out []int32
	for _, p := range svc.Spec.Ports {
		out = append(out, p.NodePort)
	}
	return out
}

// itNodePortTaken checks that another Service cannot have port (TCP and
// UDP), with Kubernetes' 422.
func itNodePortTaken(t *testing.T, svcs typedcorev1.ServiceInterface, port int32) {
	t.Helper()
	for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
		other := itNodePortService("np-other", port)
		other.Spec.Ports[0].Protocol = proto
		_, err := svcs.Create(itCtx(t), other, metav1.CreateOptions{})
		st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itWantField(t, st, "spec.ports[0].nodePort")
		if !strings.Contains(st.Message, "provided port is already allocated") {
			t.Errorf("node port %d/%s taken: message %q", port, proto, st.Message)
		}
	}
}

// itNodePortFree checks that another Service can have port, and deletes
// that Service again.
func itNodePortFree(t *testing.T, svcs typedcorev1.ServiceInterface, port int32) {
	t.Helper()
	if _, err := svcs.Create(itCtx(t), itNodePortService("np-other", port), metav1.CreateOptions{}); err != nil {
		t.Fatalf("node port %d should be free: %v", port, err)
	}
	if err := svcs.Delete(itCtx(t), "np-other", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestIntegrationServiceNodePortAcrossProtocols: as in Kubernetes, one
// Service may use one node port for ports of different protocols (a DNS
// Service on 30053/TCP and 30053/UDP). It is one allocation, held while
// any port uses it; other Services still cannot have it, and one protocol
// cannot have it twice.
func TestIntegrationServiceNodePortAcrossProtocols(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	svcs := cs.CoreV1().Services("default")

	dns, err := svcs.Create(ctx, itDNSService("dns", 30053, 30053), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("30053/TCP and 30053/UDP in one Service: %v", err)
	}
	if got := itNodePorts(dns); got[0] != 30053 || got[1] != 30053 {
		t.Fatalf("nodePorts %v, want [30053 30053]", got)
	}
	itNodePortTaken(t, svcs, 30053)

	t.Run("one protocol twice", func(t *testing.T) {
		svc := itDNSService("dup", 30060, 30060)
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "other-tcp", Port: 54, Protocol: corev1.ProtocolTCP,
			TargetPort: intstr.FromInt32(54), NodePort: 30060})
		_, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
		st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itWantField(t, st, "spec.ports[2].nodePort")
		_, err = svcs.Create(ctx, svc, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itNodePortFree(t, svcs, 30060)
	})

	t.Run("dry run", func(t *testing.T) {
		out, err := svcs.Create(ctx, itDNSService("dns-dry", 30070, 30070), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatalf("dry run: %v", err)
		}
		if got := itNodePorts(out); got[0] != 30070 || got[1] != 30070 {
			t.Errorf("dry run nodePorts %v", got)
		}
		_, err = svcs.Create(ctx, itDNSService("dns-dry", 30053, 30053), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itWantField(t, st, "spec.ports[0].nodePort")
		// The server's pick is shared too, and shown as such.
		out, err = svcs.Create(ctx, itDNSService("dns-dry", 0, 0), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatalf("dry run: %v", err)
		}
		if got := itNodePorts(out); got[0] == 0 || got[0] != got[1] {
			t.Errorf("dry run of 53/TCP and 53/UDP without nodePorts: %v, want one node port for both", got)
		}
	})

	t.Run("server picks one node port per port number", func(t *testing.T) {
		// Kubernetes gives 53/TCP and 53/UDP one node port when the client
		// names none; a port with another number gets its own.
		svc := itDNSService("dns-auto", 0, 0)
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP,
			TargetPort: intstr.FromInt32(9153)})
		got, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		np := itNodePorts(got)
		if np[0] == 0 || np[0] != np[1] || np[2] == 0 || np[2] == np[0] {
			t.Fatalf("nodePorts %v, want [n n m] with m != n", np)
		}
		itNodePortTaken(t, svcs, np[0])
		// One port asks, the other shares it.
		svc = itDNSService("dns-half", 0, 30080)
		got, err = svcs.Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if np := itNodePorts(got); np[0] != 30080 || np[1] != 30080 {
			t.Errorf("nodePorts %v, want [30080 30080]", np)
		}
		for _, name := range []string{"dns-auto", "dns-half"} {
			if err := svcs.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		itNodePortFree(t, svcs, np[0])
		itNodePortFree(t, svcs, np[2])
		itNodePortFree(t, svcs, 30080)
	})

	t.Run("update keeps a shared node port while a port uses it", func(t *testing.T) {
		cur, err := svcs.Get(ctx, "dns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Drop the UDP port: 30053 stays the Service's.
		cur.Spec.Ports = cur.Spec.Ports[:1]
		if cur, err = svcs.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		itNodePortTaken(t, svcs, 30053)
		// Add it back on the same node port: no second allocation.
		cur.Spec.Ports = append(cur.Spec.Ports, corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP,
			TargetPort: intstr.FromInt32(53), NodePort: 30053})
		if cur, err = svcs.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("adding 53/UDP on the Service's own 30053: %v", err)
		}
		// Move TCP away: UDP still uses 30053.
		cur.Spec.Ports[0].NodePort = 30054
		if cur, err = svcs.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		itNodePortTaken(t, svcs, 30053)
		itNodePortTaken(t, svcs, 30054)
		// Both on 30054 now: 30053 is given back.
		cur.Spec.Ports[1].NodePort = 30054
		if cur, err = svcs.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("moving UDP onto TCP's node port: %v", err)
		}
		itNodePortFree(t, svcs, 30053)
		itNodePortTaken(t, svcs, 30054)
		// One protocol twice is refused on update too.
		cur.Spec.Ports = append(cur.Spec.Ports, corev1.ServicePort{Name: "other", Port: 54, Protocol: corev1.ProtocolUDP,
			TargetPort: intstr.FromInt32(54), NodePort: 30054})
		_, err = svcs.Update(ctx, cur, metav1.UpdateOptions{})
		st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itWantField(t, st, "spec.ports[2].nodePort")
	})

	t.Run("ClusterIP to NodePort with one node port for both", func(t *testing.T) {
		svc := itDNSService("dns-later", 0, 0)
		svc.Spec.Type = corev1.ServiceTypeClusterIP
		cur, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.Type = corev1.ServiceTypeNodePort
		cur.Spec.Ports[0].NodePort, cur.Spec.Ports[1].NodePort = 30090, 30090
		if cur, err = svcs.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if np := itNodePorts(cur); np[0] != 30090 || np[1] != 30090 {
			t.Errorf("nodePorts %v", np)
		}
		itNodePortTaken(t, svcs, 30090)
		if err := svcs.Delete(ctx, "dns-later", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		itNodePortFree(t, svcs, 30090)
	})

	t.Run("delete frees the shared node port", func(t *testing.T) {
		if err := svcs.Delete(ctx, "dns", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		itNodePortFree(t, svcs, 30053)
		itNodePortFree(t, svcs, 30054)
		// And the pair can be had again.
		if _, err := svcs.Create(ctx, itDNSService("dns", 30054, 30054), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	})
}

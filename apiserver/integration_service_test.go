package apiserver_test

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/minik8s/minik8s/apiserver"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

var serviceCIDR = netip.MustParsePrefix("10.96.0.0/12")

func itNodePortService(name string, nodePort int32) *corev1.Service {
	svc := itService(name)
	svc.Spec.Type = corev1.ServiceTypeNodePort
	svc.Spec.Ports[0].NodePort = nodePort
	return svc
}

func checkClusterIP(t testing.TB, svc *corev1.Service) netip.Addr {
	t.Helper()
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !serviceCIDR.Contains(ip) {
		t.Fatalf("service %s clusterIP %q is not in %s", svc.Name, svc.Spec.ClusterIP, serviceCIDR)
	}
	if ip == netip.MustParseAddr("10.96.0.1") {
		t.Fatalf("service %s got the kubernetes service's IP", svc.Name)
	}
	if len(svc.Spec.ClusterIPs) != 1 || svc.Spec.ClusterIPs[0] != svc.Spec.ClusterIP {
		t.Errorf("service %s clusterIPs %v, want [%s]", svc.Name, svc.Spec.ClusterIPs, svc.Spec.ClusterIP)
	}
	return ip
}

// TestIntegrationServiceAllocation covers cluster IP and node port
// allocation: ranges, conflicts, immutability, release on delete and
// concurrency.
func TestIntegrationServiceAllocation(t *testing.T) {
	s := apiservertest.Start(t)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	svcs := cs.CoreV1().Services("default")

	a, err := svcs.Create(ctx, itService("alloc-a"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkClusterIP(t, a)
	if a.Spec.Ports[0].NodePort != 0 {
		t.Errorf("ClusterIP service got nodePort %d", a.Spec.Ports[0].NodePort)
	}

	np, err := svcs.Create(ctx, itNodePortService("alloc-np", 0), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkClusterIP(t, np)
	port := np.Spec.Ports[0].NodePort
	if port < 30000 || port > 32767 {
		t.Fatalf("nodePort %d not in 30000-32767", port)
	}

	t.Run("taken nodePort", func(t *testing.T) {
		_, err := svcs.Create(ctx, itNodePortService("alloc-dup", port), metav1.CreateOptions{})
		st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itWantField(t, st, "spec.ports[0].nodePort")
		if _, err := svcs.Get(ctx, "alloc-dup", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("refused service was stored: %v", err)
		}
	})

	t.Run("nodePort out of range", func(t *testing.T) {
		_, err := svcs.Create(ctx, itNodePortService("alloc-range", 80), metav1.CreateOptions{})
		st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itWantField(t, st, "spec.ports[0].nodePort")
	})

	t.Run("taken clusterIP", func(t *testing.T) {
		svc := itService("alloc-ipdup")
		svc.Spec.ClusterIP = a.Spec.ClusterIP
		_, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
		st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itWantField(t, st, "spec.clusterIP")
		svc.Spec.ClusterIP = "192.168.7.7"
		_, err = svcs.Create(ctx, svc, metav1.CreateOptions{})
		st = itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itWantField(t, st, "spec.clusterIP")
	})

	t.Run("explicit clusterIP", func(t *testing.T) {
		svc := itService("alloc-explicit")
		svc.Spec.ClusterIP = "10.100.200.10"
		got, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ClusterIP != "10.100.200.10" {
			t.Errorf("explicit clusterIP became %q", got.Spec.ClusterIP)
		}
	})

	t.Run("clusterIP immutable", func(t *testing.T) {
		cur, err := svcs.Get(ctx, "alloc-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.ClusterIP = "10.100.0.99"
		cur.Spec.ClusterIPs = []string{"10.100.0.99"}
		_, err = svcs.Update(ctx, cur, metav1.UpdateOptions{})
		st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itWantField(t, st, "spec.clusterIP")
		// Leaving clusterIP out of an update keeps it (kubectl replace).
		cur.Spec.ClusterIP, cur.Spec.ClusterIPs = "", nil
		cur.Labels = map[string]string{"x": "y"}
		upd, err := svcs.Update(ctx, cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if upd.Spec.ClusterIP != a.Spec.ClusterIP {
			t.Errorf("update without clusterIP: %q, want %q", upd.Spec.ClusterIP, a.Spec.ClusterIP)
		}
		// The refused IP was not taken from the pool.
		svc := itService("alloc-after-immutable")
		svc.Spec.ClusterIP = "10.100.0.99"
		if _, err := svcs.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Errorf("IP of a refused update is still held: %v", err)
		}
	})

	t.Run("delete frees nodePort and IP", func(t *testing.T) {
		if err := svcs.Delete(ctx, "alloc-np", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		again := itNodePortService("alloc-np2", port)
		again.Spec.ClusterIP = np.Spec.ClusterIP
		got, err := svcs.Create(ctx, again, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("nodePort %d / IP %s not freed by delete: %v", port, np.Spec.ClusterIP, err)
		}
		if got.Spec.Ports[0].NodePort != port {
			t.Errorf("nodePort %d, want %d", got.Spec.Ports[0].NodePort, port)
		}
	})

	t.Run("type change releases nodePort", func(t *testing.T) {
		cur, err := svcs.Get(ctx, "alloc-np2", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.Type = corev1.ServiceTypeClusterIP
		cur.Spec.Ports[0].NodePort = 0
		cur, err = svcs.Update(ctx, cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cur.Spec.Ports[0].NodePort != 0 {
			t.Errorf("ClusterIP service kept nodePort %d", cur.Spec.Ports[0].NodePort)
		}
		if _, err := svcs.Create(ctx, itNodePortService("alloc-np3", port), metav1.CreateOptions{}); err != nil {
			t.Errorf("nodePort %d not released by the type change: %v", port, err)
		}
	})

	t.Run("updates allocate and keep node ports", func(t *testing.T) {
		cur, err := svcs.Create(ctx, itService("alloc-upd"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.Type = corev1.ServiceTypeNodePort
		cur, err = svcs.Update(ctx, cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p0 := cur.Spec.Ports[0].NodePort
		if p0 < 30000 || p0 > 32767 {
			t.Fatalf("ClusterIP -> NodePort: nodePort %d", p0)
		}
		cur.Spec.Ports = append(cur.Spec.Ports, corev1.ServicePort{Name: "extra", Port: 90, TargetPort: intstr.FromInt32(90)})
		cur, err = svcs.Update(ctx, cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cur.Spec.Ports[0].NodePort != p0 || cur.Spec.Ports[1].NodePort == 0 || cur.Spec.Ports[1].NodePort == p0 {
			t.Fatalf("adding a port: nodePorts %d,%d (first was %d)", cur.Spec.Ports[0].NodePort, cur.Spec.Ports[1].NodePort, p0)
		}
		// Moving to a node port another Service holds is refused, and
		// the Service keeps the one it had.
		other, err := svcs.Get(ctx, "alloc-np3", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.Ports[0].NodePort = other.Spec.Ports[0].NodePort
		_, err = svcs.Update(ctx, cur, metav1.UpdateOptions{})
		st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itWantField(t, st, "spec.ports[0].nodePort")
		_, err = svcs.Create(ctx, itNodePortService("alloc-steal", p0), metav1.CreateOptions{})
		itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
	})

	t.Run("failed creates leak nothing", func(t *testing.T) {
		// The same name again: allocation happens, the write fails with
		// AlreadyExists, and the allocation must be given back.
		for range 3 {
			dup := itNodePortService("alloc-np3", 0)
			_, err := svcs.Create(ctx, dup, metav1.CreateOptions{})
			itWantStatus(t, err, 409, metav1.StatusReasonAlreadyExists)
		}
		explicit := itNodePortService("alloc-np3", 31999)
		explicit.Spec.ClusterIP = "10.100.50.50"
		_, err := svcs.Create(ctx, explicit, metav1.CreateOptions{})
		itWantStatus(t, err, 409, metav1.StatusReasonAlreadyExists)
		explicit.Name = "alloc-np4"
		if _, err := svcs.Create(ctx, explicit, metav1.CreateOptions{}); err != nil {
			t.Errorf("IP/port of a create that failed with AlreadyExists is still held: %v", err)
		}
	})

	t.Run("headless and ExternalName", func(t *testing.T) {
		h := itService("alloc-headless")
		h.Spec.ClusterIP = corev1.ClusterIPNone
		got, err := svcs.Create(ctx, h, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("headless service clusterIP %q", got.Spec.ClusterIP)
		}
		e := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "alloc-ext"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}}
		got, err = svcs.Create(ctx, e, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ClusterIP != "" {
			t.Errorf("ExternalName service got clusterIP %q", got.Spec.ClusterIP)
		}
	})

	t.Run("concurrent creates", func(t *testing.T) {
		const n = 20
		ips := make([]string, n)
		ports := make([]int32, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				svc, err := svcs.Create(ctx, itNodePortService(fmt.Sprintf("conc-%02d", i), 0), metav1.CreateOptions{})
				if err == nil {
					ips[i], ports[i] = svc.Spec.ClusterIP, svc.Spec.Ports[0].NodePort
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		seenIP, seenPort := map[string]int{}, map[int32]int{}
		all, err := svcs.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range all.Items {
			if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
				seenIP[ip]++
			}
			for _, p := range svc.Spec.Ports {
				if p.NodePort != 0 {
					seenPort[p.NodePort]++
				}
			}
		}
		for i := range n {
			if errs[i] != nil {
				t.Errorf("create %d: %v", i, errs[i])
				continue
			}
			if seenIP[ips[i]] != 1 {
				t.Errorf("clusterIP %s held by %d services", ips[i], seenIP[ips[i]])
			}
			if seenPort[ports[i]] != 1 {
				t.Errorf("nodePort %d held by %d services", ports[i], seenPort[ports[i]])
			}
		}
	})
}

// TestIntegrationServiceAllocationSurvivesRestart: after the API server
// restarts on the same data, new Services never get an IP or node port an
// existing Service holds, and explicit requests for taken values fail.
func TestIntegrationServiceAllocationSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := apiservertest.StartIn(t, dir)
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	held := map[string]string{}
	heldPorts := map[int32]string{}
	for i := range 10 {
		svc, err := cs.CoreV1().Services("default").Create(ctx, itNodePortService(fmt.Sprintf("before-%d", i), 0), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		held[svc.Spec.ClusterIP] = svc.Name
		heldPorts[svc.Spec.Ports[0].NodePort] = svc.Name
	}
	// Free one in the middle: it may be handed out again after the restart.
	if err := cs.CoreV1().Services("default").Delete(ctx, "before-4", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for ip, n := range held {
		if n == "before-4" {
			delete(held, ip)
		}
	}
	for p, n := range heldPorts {
		if n == "before-4" {
			delete(heldPorts, p)
		}
	}
	s.Stop()

	s2 := apiservertest.StartIn(t, dir)
	cs2 := itClientset(t, s2, false)
	svcs := cs2.CoreV1().Services("default")
	k, err := svcs.Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || k.Spec.ClusterIP != "10.96.0.1" {
		t.Fatalf("kubernetes service after restart: %v %v", k, err)
	}
	held["10.96.0.1"] = "kubernetes"
	for i := range 20 {
		svc, err := svcs.Create(ctx, itNodePortService(fmt.Sprintf("after-%d", i), 0), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if other, ok := held[svc.Spec.ClusterIP]; ok {
			t.Errorf("after restart %s got clusterIP %s, which %s holds", svc.Name, svc.Spec.ClusterIP, other)
		}
		if other, ok := heldPorts[svc.Spec.Ports[0].NodePort]; ok {
			t.Errorf("after restart %s got nodePort %d, which %s holds", svc.Name, svc.Spec.Ports[0].NodePort, other)
		}
		held[svc.Spec.ClusterIP] = svc.Name
		heldPorts[svc.Spec.Ports[0].NodePort] = svc.Name
	}
	for ip, owner := range held {
		svc := itService("explicit-" + owner)
		svc.Spec.ClusterIP = ip
		_, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
		st := itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
		itWantField(t, st, "spec.clusterIP")
	}
}

// TestIntegrationServiceRangeFull uses a tiny service range so that running
// out of IPs is reachable: the error is a 422, not a 500, and an IP given
// back can be allocated again.
func TestIntegrationServiceRangeFull(t *testing.T) {
	s := apiservertest.Start(t, func(o *apiserver.Options) {
		o.ServiceClusterIPRange = "10.97.0.0/29"
		o.NodePortRange = "30100-30102"
	})
	cs := itClientset(t, s, false)
	ctx := itCtx(t)
	svcs := cs.CoreV1().Services("default")
	var created []string
	var lastErr error
	for i := range 10 {
		svc, err := svcs.Create(ctx, itService(fmt.Sprintf("fill-%d", i)), metav1.CreateOptions{})
		if err != nil {
			lastErr = err
			break
		}
		created = append(created, svc.Name)
	}
	if lastErr == nil {
		t.Fatalf("10 services fit in a /29")
	}
	st := itWantStatus(t, lastErr, 422, metav1.StatusReasonInvalid)
	itWantField(t, st, "spec.clusterIP")
	t.Logf("a /29 held %d services besides kubernetes", len(created))
	if len(created) < 4 {
		t.Errorf("only %d services fit in a /29", len(created))
	}
	if err := svcs.Delete(ctx, created[0], metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs.Create(ctx, itService("refill"), metav1.CreateOptions{}); err != nil {
		t.Errorf("freed IP not reusable: %v", err)
	}

	// Node ports: three in the range.
	if err := svcs.Delete(ctx, created[1], metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := svcs.Delete(ctx, created[2], metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	two := itNodePortService("np-two", 0)
	two.Spec.Ports = append(two.Spec.Ports, corev1.ServicePort{Name: "b", Port: 81, TargetPort: intstr.FromInt32(81)})
	if _, err := svcs.Create(ctx, two, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Needs two more ports, one is left: fails as a whole, and gives back
	// the one it got.
	two.Name = "np-two-more"
	_, err := svcs.Create(ctx, two, metav1.CreateOptions{})
	st = itWantStatus(t, err, 422, metav1.StatusReasonInvalid)
	itWantField(t, st, "spec.ports[1].nodePort")
	if _, err := svcs.Create(ctx, itNodePortService("np-last", 0), metav1.CreateOptions{}); err != nil {
		t.Errorf("a failed multi-port create kept a node port: %v", err)
	}
}

//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/proxy"
	"github.com/minik8s/minik8s/proxy/proxytest"
)

func pxService(t *testing.T, ctx context.Context, cs *typed.Clientset, name string, typ corev1.ServiceType, ports ...corev1.ServicePort) *corev1.Service {
	t.Helper()
	s, err := cs.Services.Namespace("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Type: typ, Ports: ports},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
	return s
}

// pxSetEndpoints writes the Endpoints of a service (as the endpoints
// controller would from pod readiness): one subset, ready ips, one port.
func pxSetEndpoints(t *testing.T, ctx context.Context, cs *typed.Clientset, name string, port corev1.EndpointPort, ips ...string) {
	t.Helper()
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if len(ips) > 0 {
		ss := corev1.EndpointSubset{Ports: []corev1.EndpointPort{port}}
		for _, ip := range ips {
			ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: ip})
		}
		ep.Subsets = []corev1.EndpointSubset{ss}
	}
	client := cs.Endpoints.Namespace("default")
	cur, err := client.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if _, err := client.Create(ctx, ep, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create endpoints %s: %v", name, err)
		}
		return
	}
	cur.Subsets = ep.Subsets
	if _, err := client.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update endpoints %s: %v", name, err)
	}
}

func TestProxyServiceTraffic(t *testing.T) {
	n := newPxNode(t)
	pod1 := n.addPod("10.244.1.2")
	pod2 := n.addPod("10.244.1.3")
	pxServeHTTP(t, pod1, "0.0.0.0:8080", "pod-1")
	pxServeHTTP(t, pod2, "0.0.0.0:8080", "pod-2")
	pxServeUDP(t, pod1, "0.0.0.0:5353", "pod-1")
	pxServeUDP(t, pod2, "0.0.0.0:5353", "pod-2")

	c := newPxCluster(t)
	stopProxy := c.startProxy(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	httpPort := corev1.EndpointPort{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}
	web := pxService(t, ctx, c.cs, "web", corev1.ServiceTypeNodePort,
		corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP})
	empty := pxService(t, ctx, c.cs, "empty", corev1.ServiceTypeNodePort,
		corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP})
	dns := pxService(t, ctx, c.cs, "dns", corev1.ServiceTypeClusterIP,
		corev1.ServicePort{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(5353), Protocol: corev1.ProtocolUDP})
	pxSetEndpoints(t, ctx, c.cs, "web", httpPort, "10.244.1.2", "10.244.1.3")
	pxSetEndpoints(t, ctx, c.cs, "dns", corev1.EndpointPort{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP}, "10.244.1.2")

	webURL := fmt.Sprintf("http://%s:80/", web.Spec.ClusterIP)
	webNodePort := web.Spec.Ports[0].NodePort
	t.Logf("web: cluster IP %s, node port %d; empty: cluster IP %s, node port %d; dns: %s",
		web.Spec.ClusterIP, webNodePort, empty.Spec.ClusterIP, empty.Spec.Ports[0].NodePort, dns.Spec.ClusterIP)

	webChain := proxy.ServiceChainName("default/web:http", "tcp")
	pxEventually(t, "rules for web with two endpoints", func() string {
		save := proxytest.Exec(t, n.node, "iptables-save", "-t", "nat")
		if got := strings.Count(save, "-A "+webChain+" -m comment --comment \"default/web:http -> "); got != 2 {
			return fmt.Sprintf("%s has %d endpoint rules", webChain, got)
		}
		return ""
	})

	t.Run("ClusterIP from the node reaches both pods", func(t *testing.T) {
		counts := pxDistribution(t, n.node, webURL, 100)
		t.Logf("100 requests to %s from the node: %v", webURL, counts)
		if counts["pod-1"] == 0 || counts["pod-2"] == 0 || counts["pod-1"]+counts["pod-2"] != 100 {
			t.Errorf("distribution %v: want both pods and nothing else", counts)
		}
	})

	t.Run("ClusterIP from an off-cluster client through the node", func(t *testing.T) {
		counts := pxDistribution(t, n.client, webURL, 20)
		t.Logf("20 requests from the client: %v", counts)
		if counts["pod-1"]+counts["pod-2"] != 20 {
			t.Errorf("distribution %v", counts)
		}
	})

	for _, tc := range []struct{ name, from, addr string }{
		{"NodePort on the node address from an off-cluster client", n.client, pxNodeIP},
		{"NodePort on the node address from the node", n.node, pxNodeIP},
		{"NodePort on 127.0.0.1 from the node", n.node, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := fmt.Sprintf("http://%s:%d/", tc.addr, webNodePort)
			counts := pxDistribution(t, tc.from, url, 20)
			t.Logf("20 requests to %s: %v", url, counts)
			if counts["pod-1"]+counts["pod-2"] != 20 {
				t.Errorf("distribution %v", counts)
			}
		})
	}

	t.Run("no endpoints: connection refused, not a timeout", func(t *testing.T) {
		for _, tc := range []struct{ from, addr string }{
			{n.node, net.JoinHostPort(empty.Spec.ClusterIP, "80")},
			{n.client, net.JoinHostPort(pxNodeIP, fmt.Sprint(empty.Spec.Ports[0].NodePort))},
		} {
			start := time.Now()
			r := pxCurl(tc.from, "http://"+tc.addr+"/")
			took := time.Since(start)
			t.Logf("curl %s: exit %d after %s: %s", tc.addr, r.exit, took.Round(time.Millisecond), r.stderr)
			if r.exit != 7 {
				t.Errorf("curl %s from %s: exit %d (%s), want 7 (could not connect; 28 would be a timeout)", tc.addr, tc.from, r.exit, r.stderr)
			}
			var dialErr error
			if err := proxy.InNetns(tc.from, func() error {
				conn, err := net.DialTimeout("tcp", tc.addr, 10*time.Second)
				if err == nil {
					conn.Close()
				}
				dialErr = err
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(dialErr, syscall.ECONNREFUSED) {
				t.Errorf("dial %s from %s: %v, want connection refused", tc.addr, tc.from, dialErr)
			}
		}
	})

	t.Run("UDP: stale conntrack entry flushed when its endpoint goes", func(t *testing.T) {
		dst := net.JoinHostPort(dns.Spec.ClusterIP, "53")
		const srcPort = 40053
		pxEventually(t, "a UDP answer from pod-1", func() string {
			r, err := pxUDPAsk(n.node, srcPort, dst)
			if err != nil || r != "pod-1" {
				return fmt.Sprintf("reply %q, err %v", r, err)
			}
			return ""
		})
		// pod-1 keeps running and answering: without the flush the flow
		// (same source port) would stay DNATed to it.
		pxSetEndpoints(t, ctx, c.cs, "dns", corev1.EndpointPort{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP}, "10.244.1.3")
		pxEventually(t, "the same UDP flow to reach pod-2", func() string {
			r, err := pxUDPAsk(n.node, srcPort, dst)
			if err != nil || r != "pod-2" {
				return fmt.Sprintf("reply %q, err %v", r, err)
			}
			return ""
		})
	})

	t.Run("scale down: traffic follows the endpoints", func(t *testing.T) {
		pxSetEndpoints(t, ctx, c.cs, "web", httpPort, "10.244.1.3")
		pxEventually(t, "only pod-2 answering", func() string {
			counts := pxDistribution(t, n.node, webURL, 10)
			if counts["pod-2"] != 10 {
				return fmt.Sprintf("distribution %v", counts)
			}
			return ""
		})
	})

	t.Run("session affinity ClientIP sticks to one pod", func(t *testing.T) {
		s, err := c.cs.Services.Namespace("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		if _, err := c.cs.Services.Namespace("default").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		pxSetEndpoints(t, ctx, c.cs, "web", httpPort, "10.244.1.2", "10.244.1.3")
		pxEventually(t, "affinity rules for two endpoints", func() string {
			save := proxytest.Exec(t, n.node, "iptables-save", "-t", "nat")
			if got := pxChainRules(save, webChain, "default/web:http -> "); got != 4 {
				return fmt.Sprintf("%s has %d endpoint rules, want 4 (2 affinity + 2 fan-out)", webChain, got)
			}
			if !strings.Contains(save, "--rcheck") {
				return "no affinity rule"
			}
			return ""
		})
		counts := pxDistribution(t, n.node, webURL, 30)
		t.Logf("30 requests with ClientIP affinity: %v", counts)
		if len(counts) != 1 {
			t.Errorf("with ClientIP affinity one client reached %v, want a single pod", counts)
		}
	})

	// Stop the proxy, then its --cleanup leaves no trace in the node.
	stopProxy()
	cmdOut, err := runProxyCleanup(t, n.node)
	if err != nil {
		t.Fatalf("proxy --cleanup: %v: %s", err, cmdOut)
	}
	for _, table := range []string{"nat", "filter"} {
		if save := proxytest.Exec(t, n.node, "iptables-save", "-t", table); strings.Contains(save, "KUBE-") {
			t.Errorf("%s still has KUBE- rules after --cleanup:\n%s", table, save)
		}
	}
}

// pxChainRules counts the rules of chain in iptables-save output whose
// text contains fragment.
func pxChainRules(save, chain, fragment string) int {
	n := 0
	for _, l := range strings.Split(save, "\n") {
		if strings.HasPrefix(l, "-A "+chain+" ") && strings.Contains(l, fragment) {
			n++
		}
	}
	return n
}

package proxy_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/proxy"
	"github.com/minik8s/minik8s/proxy/proxytest"
)

const waitTimeout = 90 * time.Second

// eventually polls cond until it returns "" (done) or the timeout, then
// fails with cond's last complaint.
func eventually(t *testing.T, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proxyKubeconfig writes a kubeconfig that authenticates as the proxy's
// own user, not the admin.
func proxyKubeconfig(t *testing.T, s *apiservertest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kube-proxy.kubeconfig")
	ca, err := os.ReadFile(filepath.Join(s.DataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: %s\n    certificate-authority-data: %s\nusers:\n- name: u\n  user:\n    token: %s\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
		s.URL, base64.StdEncoding.EncodeToString(ca), s.Token("system:kube-proxy"))
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func adminClient(t *testing.T, s *apiservertest.Server) *typed.Clientset {
	t.Helper()
	cs := s.Clientset(t)
	return cs
}

func save(t *testing.T, netns, table string) string {
	t.Helper()
	out, err := proxytest.ExecErr(netns, "iptables-save", "-t", table)
	if err != nil {
		t.Fatalf("iptables-save: %v: %s", err, out)
	}
	return out
}

func rules(save, chain string) []string {
	var out []string
	for _, l := range strings.Split(save, "\n") {
		if strings.HasPrefix(l, "-A "+chain+" ") {
			out = append(out, l)
		}
	}
	return out
}

var dnatTo = regexp.MustCompile(`--to-destination (\S+)`)

// backends lists the DNAT targets reachable from a KUBE-SVC chain.
func backends(save, svcChain string) []string {
	var out []string
	for _, r := range rules(save, svcChain) {
		f := strings.Fields(r)
		target := f[len(f)-1]
		if !strings.HasPrefix(target, "KUBE-SEP-") {
			continue
		}
		for _, sr := range rules(save, target) {
			if m := dnatTo.FindStringSubmatch(sr); m != nil {
				out = append(out, m[1])
			}
		}
	}
	return out
}

func setEndpoints(t *testing.T, ctx context.Context, cs *typed.Clientset, name string, ips ...string) {
	t.Helper()
	ep, err := cs.Endpoints.Namespace("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ss := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}}
	for _, ip := range ips {
		ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: ip})
	}
	ep.Subsets = nil
	if len(ips) > 0 {
		ep.Subsets = []corev1.EndpointSubset{ss}
	}
	if _, err := cs.Endpoints.Namespace("default").Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestProxyAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, an API server and a proxy")
	}
	netns := proxytest.Netns(t)
	s := apiservertest.Start(t)
	cs := adminClient(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The proxy, as the binary runs it (flags → Options.Run), with its
	// kernel work in the private namespace.
	metricsAddr := freePort(t)
	o := proxy.DefaultOptions()
	o.Kubeconfig = proxyKubeconfig(t, s)
	o.HostnameOverride = "node-1"
	o.ClusterCIDR = "10.244.0.0/16"
	o.MinSyncPeriod = 100 * time.Millisecond
	o.SyncPeriod = 2 * time.Second
	o.MetricsBindAddress = metricsAddr
	o.Netns = netns
	o.LogLevel = "warn"
	if os.Getenv("MINIK8S_TEST_LOG") != "" {
		o.LogLevel = "debug"
	}
	proxyCtx, stopProxy := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(proxyCtx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopProxy()
			if err := <-done; err != nil {
				t.Errorf("proxy returned: %v", err)
			}
		}
	}
	defer stop()

	svc, err := cs.Services.Namespace("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeNodePort,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clusterIP, nodePort := svc.Spec.ClusterIP, svc.Spec.Ports[0].NodePort
	if clusterIP == "" || nodePort == 0 {
		t.Fatalf("service got cluster IP %q and node port %d", clusterIP, nodePort)
	}
	svcChain := proxy.ServiceChainName("default/web:http", "tcp")

	// No endpoints yet: REJECT in the filter table, no service chain.
	eventually(t, "REJECT for a service without endpoints", func() string {
		f := save(t, netns, "filter")
		if !strings.Contains(f, "-d "+clusterIP+"/32") || !strings.Contains(f, "default/web:http has no endpoints") {
			return "no REJECT rule yet:\n" + f
		}
		return ""
	})

	if _, err := cs.Endpoints.Namespace("default").Create(ctx, &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5"}},
			Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wantBackends := func(want ...string) func() string {
		return func() string {
			n := save(t, netns, "nat")
			got := backends(n, svcChain)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				return fmt.Sprintf("backends %v, want %v", got, want)
			}
			if len(want) > 0 {
				if !strings.Contains(strings.Join(rules(n, "KUBE-SERVICES"), "\n"), "-j "+svcChain) {
					return "no cluster IP rule in KUBE-SERVICES"
				}
				np := strings.Join(rules(n, "KUBE-NODEPORTS"), "\n")
				if !strings.Contains(np, fmt.Sprintf("--dport %d", nodePort)) || !strings.Contains(np, "-j "+svcChain) {
					return "no node port rule:\n" + np
				}
			}
			return ""
		}
	}
	eventually(t, "one backend", wantBackends("10.244.1.5:8080"))
	if f := save(t, netns, "filter"); strings.Contains(f, "default/web:http has no endpoints") {
		t.Error("REJECT rule stayed after endpoints appeared")
	}

	// Scale up, then down: the rules follow.
	setEndpoints(t, ctx, cs, "web", "10.244.1.5", "10.244.2.6", "10.244.3.7")
	eventually(t, "three backends", wantBackends("10.244.1.5:8080", "10.244.2.6:8080", "10.244.3.7:8080"))
	setEndpoints(t, ctx, cs, "web", "10.244.3.7")
	eventually(t, "one backend after scale-down", wantBackends("10.244.3.7:8080"))
	stale := proxy.EndpointChainName("default/web:http", "tcp", "10.244.1.5:8080")
	if strings.Contains(save(t, netns, "nat"), ":"+stale+" ") {
		t.Errorf("endpoint chain %s of a removed endpoint still exists", stale)
	}

	// A rule removed by hand comes back with the periodic full resync.
	if out, err := proxytest.ExecErr(netns, "iptables", "-t", "nat", "-D", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"); err != nil {
		t.Fatalf("deleting the PREROUTING jump: %v: %s", err, out)
	}
	eventually(t, "the PREROUTING jump to be restored", func() string {
		if len(rules(save(t, netns, "nat"), "PREROUTING")) == 0 {
			return "PREROUTING has no jump"
		}
		return ""
	})

	// Health and metrics.
	resp, err := http.Get("http://" + metricsAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"healthy":true`) {
		t.Errorf("/healthz = %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`kubeproxy_sync_proxy_rules_duration_seconds_count [1-9]`),
		regexp.MustCompile(`kubeproxy_sync_proxy_rules_iptables_total\{table="nat"\} [1-9]`),
		regexp.MustCompile(`kubeproxy_sync_proxy_rules_iptables_total\{table="filter"\} [1-9]`),
		regexp.MustCompile(`minik8s_proxy_endpoints [1-9]`),
		regexp.MustCompile(`kubeproxy_sync_proxy_rules_endpoint_changes_total [1-9]`),
	} {
		if !want.Match(body) {
			t.Errorf("/metrics has no match for %s", want)
		}
	}

	// Deleting the service removes its chains.
	if err := cs.Services.Namespace("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the service's rules to go", func() string {
		n := save(t, netns, "nat")
		if strings.Contains(n, svcChain) || strings.Contains(n, clusterIP+"/32") {
			return "rules of the deleted service remain"
		}
		return ""
	})

	// Stop, then --cleanup (the binary's code path) leaves nothing.
	stop()
	c := proxy.DefaultOptions()
	c.Cleanup = true
	c.Netns = netns
	c.LogLevel = "warn"
	if err := c.Run(ctx); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	for _, table := range []string{"nat", "filter"} {
		if out := save(t, netns, table); strings.Contains(out, "KUBE-") {
			t.Errorf("%s table still has KUBE- chains or rules after cleanup:\n%s", table, out)
		}
	}
}

func init() {
	// Keep the API server's informer chatter out of test output.
	if os.Getenv("MINIK8S_TEST_LOG") == "" {
		slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
}

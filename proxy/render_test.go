package proxy

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

var update = flag.Bool("update", false, "rewrite proxy/testdata/*.golden from the current output")

// svc builds a Service; mutate adjusts it.
func svc(ns, name, clusterIP string, ports []corev1.ServicePort, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: clusterIP,
			Ports:     ports,
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func tcpPort(name string, port, target int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(target)}
}

// eps builds Endpoints with one subset of ready ips and ports.
func eps(ns, name string, ips []string, ports ...corev1.EndpointPort) *corev1.Endpoints {
	ss := corev1.EndpointSubset{Ports: ports}
	for _, ip := range ips {
		ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: ip})
	}
	return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Subsets: []corev1.EndpointSubset{ss}}
}

func epPort(name string, port int32, proto corev1.Protocol) corev1.EndpointPort {
	return corev1.EndpointPort{Name: name, Port: port, Protocol: proto}
}

func nodePort(np int32) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = np + int32(i)
		}
	}
}

type renderCase struct {
	name      string
	services  []*corev1.Service
	endpoints []*corev1.Endpoints
	opts      RenderOptions
	// current, if set, is what the kernel holds: Plan writes only the
	// difference (chain names map to hash 0, i.e. "exists, differs").
	current []string
}

func renderCases() []renderCase {
	cidr := netip.MustParsePrefix("10.244.0.0/16")
	timeout := int32(600)
	return []renderCase{
		{
			name:     "empty",
			services: nil,
		},
		{
			name:      "clusterip-1-endpoint",
			services:  []*corev1.Service{svc("default", "web", "10.96.0.10", []corev1.ServicePort{tcpPort("", 80, 8080)})},
			endpoints: []*corev1.Endpoints{eps("default", "web", []string{"10.244.1.5"}, epPort("", 8080, corev1.ProtocolTCP))},
			opts:      RenderOptions{ClusterCIDR: cidr},
		},
		{
			name:     "clusterip-3-endpoints",
			services: []*corev1.Service{svc("default", "web", "10.96.0.10", []corev1.ServicePort{tcpPort("http", 80, 8080)})},
			// Unsorted and with a duplicate: output is sorted and deduplicated.
			endpoints: []*corev1.Endpoints{eps("default", "web", []string{"10.244.2.7", "10.244.1.5", "10.244.1.6", "10.244.1.5"}, epPort("http", 8080, corev1.ProtocolTCP))},
			opts:      RenderOptions{ClusterCIDR: cidr, RandomFully: true},
		},
		{
			name:      "nodeport",
			services:  []*corev1.Service{svc("shop", "front", "10.96.3.4", []corev1.ServicePort{tcpPort("http", 80, 8080)}, nodePort(30080))},
			endpoints: []*corev1.Endpoints{eps("shop", "front", []string{"10.244.1.5", "10.244.2.9"}, epPort("http", 8080, corev1.ProtocolTCP))},
			opts:      RenderOptions{ClusterCIDR: cidr},
		},
		{
			name: "nodeport-addresses-loadbalancer",
			services: []*corev1.Service{svc("shop", "lb", "10.96.3.5", []corev1.ServicePort{tcpPort("http", 80, 8080)}, nodePort(30090),
				func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeLoadBalancer })},
			endpoints: []*corev1.Endpoints{eps("shop", "lb", []string{"10.244.1.5"}, epPort("http", 8080, corev1.ProtocolTCP))},
			opts:      RenderOptions{NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("127.0.0.0/8")}},
		},
		{
			name: "no-endpoints",
			services: []*corev1.Service{
				svc("default", "empty", "10.96.0.20", []corev1.ServicePort{tcpPort("http", 80, 8080)}, nodePort(30100),
					func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"192.168.1.50"} }),
				svc("default", "none-ready", "10.96.0.21", []corev1.ServicePort{tcpPort("", 80, 8080)}),
			},
			endpoints: []*corev1.Endpoints{{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "none-ready"},
				Subsets: []corev1.EndpointSubset{{
					NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.244.1.9"}},
					Ports:             []corev1.EndpointPort{epPort("", 8080, corev1.ProtocolTCP)},
				}},
			}},
			opts: RenderOptions{ClusterCIDR: cidr},
		},
		{
			name: "session-affinity",
			services: []*corev1.Service{
				svc("default", "sticky", "10.96.0.30", []corev1.ServicePort{tcpPort("", 80, 8080)},
					func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }),
				svc("default", "sticky-short", "10.96.0.31", []corev1.ServicePort{tcpPort("", 80, 8080)},
					func(s *corev1.Service) {
						s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
						s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &timeout}}
					}),
			},
			endpoints: []*corev1.Endpoints{
				eps("default", "sticky", []string{"10.244.1.5", "10.244.2.5"}, epPort("", 8080, corev1.ProtocolTCP)),
				eps("default", "sticky-short", []string{"10.244.1.6"}, epPort("", 8080, corev1.ProtocolTCP)),
			},
			opts: RenderOptions{ClusterCIDR: cidr},
		},
		{
			name: "external-ips",
			services: []*corev1.Service{svc("default", "ext", "10.96.0.40", []corev1.ServicePort{tcpPort("http", 80, 8080)},
				func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"192.168.1.60", "192.168.1.50", "192.168.1.60"} })},
			endpoints: []*corev1.Endpoints{eps("default", "ext", []string{"10.244.1.5"}, epPort("http", 8080, corev1.ProtocolTCP))},
			opts:      RenderOptions{ClusterCIDR: cidr},
		},
		{
			name: "named-ports",
			services: []*corev1.Service{svc("default", "multi", "10.96.0.50", []corev1.ServicePort{
				tcpPort("http", 80, 0), tcpPort("metrics", 9090, 0),
			})},
			// A named targetPort resolved differently per pod: two subsets.
			endpoints: []*corev1.Endpoints{{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "multi"},
				Subsets: []corev1.EndpointSubset{
					{Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5"}}, Ports: []corev1.EndpointPort{epPort("http", 8080, ""), epPort("metrics", 9100, "")}},
					{Addresses: []corev1.EndpointAddress{{IP: "10.244.2.5"}}, Ports: []corev1.EndpointPort{epPort("http", 8081, ""), epPort("metrics", 9100, "")}},
				},
			}},
			opts: RenderOptions{ClusterCIDR: cidr},
		},
		{
			name: "udp",
			services: []*corev1.Service{svc("kube-system", "kube-dns", "10.96.0.10", []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(53)},
			})},
			endpoints: []*corev1.Endpoints{eps("kube-system", "kube-dns", []string{"10.244.1.2"},
				epPort("dns", 53, corev1.ProtocolUDP), epPort("dns-tcp", 53, corev1.ProtocolTCP))},
			opts: RenderOptions{ClusterCIDR: cidr},
		},
		{
			name: "skipped-and-stale",
			services: []*corev1.Service{
				svc("default", "headless", corev1.ClusterIPNone, []corev1.ServicePort{tcpPort("", 80, 80)}),
				svc("default", "pending", "", []corev1.ServicePort{tcpPort("", 80, 80)}),
				svc("default", "extname", "", nil, func(s *corev1.Service) {
					s.Spec.Type = corev1.ServiceTypeExternalName
					s.Spec.ExternalName = "example.com"
				}),
				svc("default", "web", "10.96.0.10", []corev1.ServicePort{tcpPort("", 80, 8080)}),
			},
			endpoints: []*corev1.Endpoints{
				eps("default", "headless", []string{"10.244.1.5"}, epPort("", 80, corev1.ProtocolTCP)),
				eps("default", "web", []string{"10.244.1.5"}, epPort("", 8080, corev1.ProtocolTCP)),
			},
			// Chains a previous sync left: the SVC/SEP ones not wanted any
			// more are deleted, others are not ours to touch; chains not
			// there yet are created with -N.
			current: []string{"nat/KUBE-SVC-AAAAAAAAAAAAAAAA", "nat/KUBE-SEP-BBBBBBBBBBBBBBBB", "filter/KUBE-SVC-CCCCCCCCCCCCCCCC",
				"nat/" + ServiceChainName("default/web", "tcp"), "nat/KUBE-SERVICES", "nat/DOCKER", "nat/CNI-HOSTPORT-DNAT"},
		},
	}
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range renderCases() {
		t.Run(tc.name, func(t *testing.T) {
			ports, problems := BuildServicePorts(tc.services, tc.endpoints)
			for _, p := range problems {
				t.Errorf("unexpected problem: %v", p)
			}
			r := Render(ports, tc.opts)
			var current map[string]uint64
			if tc.current != nil {
				current = map[string]uint64{}
				for _, k := range tc.current {
					current[k] = 0
				}
			}
			plan := r.Plan(current, 0)
			if len(plan.Commits) != 1 {
				t.Fatalf("plan has %d commits, want 1", len(plan.Commits))
			}
			text := plan.Commits[0]
			if tc.current == nil && !bytes.Equal(text, r.Text()) {
				t.Error("Plan(nil) and Text differ")
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, text, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./proxy -run TestRenderGolden -update)", err)
			}
			if !bytes.Equal(text, want) {
				t.Errorf("rendered rules differ from %s (rerun with -update after checking):\n%s", path, lineDiff(string(want), string(text)))
			}
			checkWellFormed(t, r, text)
			// Rendering is a pure function: same input, same bytes.
			if again := Render(ports, tc.opts).Plan(current, 0); !bytes.Equal(again.Commits[0], text) {
				t.Error("rendering the same input twice gave different text")
			}
		})
	}
}

// lineDiff lists lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	w := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		w[l]++
	}
	var b strings.Builder
	g := map[string]int{}
	for _, l := range strings.Split(got, "\n") {
		g[l]++
		if g[l] > w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	for _, l := range strings.Split(want, "\n") {
		if g[l] < w[l] {
			b.WriteString("- " + l + "\n")
			g[l]++
		}
	}
	return b.String()
}

var chainRef = regexp.MustCompile(`-j (KUBE-[A-Z0-9-]+)`)

// checkWellFormed checks invariants that must hold for any input: every
// chain appended to or jumped to is declared in its table (or, for a jump,
// one of ours that already exists), each table is committed, the counts
// match, and the nodeports jump is the last KUBE-SERVICES rule in nat.
func checkWellFormed(t *testing.T, r *Rules, text []byte) {
	t.Helper()
	var table string
	declared := map[string]map[string]bool{}
	counts := map[string]int{}
	lastNATServices := ""
	for _, line := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			declared[table] = map[string]bool{}
		case line == "COMMIT":
			table = ""
		case strings.HasPrefix(line, ":"):
			declared[table][strings.Fields(line[1:])[0]] = true
		case strings.HasPrefix(line, "-N "):
			declared[table][line[3:]] = true
		case strings.HasPrefix(line, "-A "):
			chain := strings.Fields(line)[1]
			if !declared[table][chain] {
				t.Errorf("%s: rule in undeclared chain: %s", table, line)
			}
			if m := chainRef.FindStringSubmatch(line); m != nil && !declared[table][m[1]] && !OwnedChain(table, m[1]) {
				t.Errorf("%s: jump to a chain that is not ours: %s", table, line)
			}
			if !OwnedChain(table, chain) {
				t.Errorf("%s: rule in a chain the proxy does not own: %s", table, line)
			}
			counts[table]++
			if table == "nat" && chain == ChainServices {
				lastNATServices = line
			}
		case strings.HasPrefix(line, "-X "):
			c := line[3:]
			if !declared[table][c] {
				t.Errorf("deleting %s without flushing it first", c)
			}
			if _, ok := r.ServiceChains[c]; ok {
				t.Errorf("deleting wanted chain %s", c)
			}
		default:
			t.Errorf("unexpected line %q", line)
		}
	}
	if table != "" {
		t.Errorf("table %s not committed", table)
	}
	if counts["nat"] != r.NATRules || counts["filter"] != r.FilterRules {
		t.Errorf("counted nat=%d filter=%d rules, Rules says nat=%d filter=%d", counts["nat"], counts["filter"], r.NATRules, r.FilterRules)
	}
	if !strings.HasSuffix(lastNATServices, "-j "+ChainNodePorts) {
		t.Errorf("last nat KUBE-SERVICES rule is not the nodeports jump: %q", lastNATServices)
	}
}

func TestChainNamesMatchKubernetes(t *testing.T) {
	// Chain names every Kubernetes cluster has for its kubernetes and
	// kube-dns services: same hash input and encoding, same names.
	for _, tc := range []struct{ port, proto, want string }{
		{"default/kubernetes:https", "tcp", "KUBE-SVC-NPX46M4PTMTKRN6Y"},
		{"kube-system/kube-dns:dns", "udp", "KUBE-SVC-TCOU7JCQXEZGVUNU"},
		{"kube-system/kube-dns:dns-tcp", "tcp", "KUBE-SVC-ERIFXISQEP7F7OF4"},
		{"kube-system/kube-dns:metrics", "tcp", "KUBE-SVC-JD5MR3NA4I4DYORP"},
	} {
		if got := ServiceChainName(tc.port, tc.proto); got != tc.want {
			t.Errorf("ServiceChainName(%q, %q) = %s, want %s", tc.port, tc.proto, got, tc.want)
		}
	}
}

func TestChainNamesStableAndDistinct(t *testing.T) {
	a := EndpointChainName("default/web:http", "tcp", "10.244.1.5:8080")
	if a != EndpointChainName("default/web:http", "tcp", "10.244.1.5:8080") {
		t.Fatal("same input, different endpoint chain name")
	}
	if len(a) != len("KUBE-SEP-")+16 || len(a) > 28 {
		t.Errorf("endpoint chain %q: want KUBE-SEP- plus 16 characters, at most 28 in all", a)
	}
	if !regexp.MustCompile(`^KUBE-SEP-[A-Z2-7]{16}$`).MatchString(a) {
		t.Errorf("endpoint chain %q is not base32", a)
	}
	seen := map[string]string{}
	for _, in := range [][3]string{
		{"default/web:http", "tcp", "10.244.1.5:8080"},
		{"default/web:http", "udp", "10.244.1.5:8080"},
		{"default/web:http", "tcp", "10.244.1.5:8081"},
		{"default/web:http", "tcp", "10.244.1.6:8080"},
		{"default/web", "tcp", "10.244.1.5:8080"},
		{"other/web:http", "tcp", "10.244.1.5:8080"},
	} {
		n := EndpointChainName(in[0], in[1], in[2])
		if prev, ok := seen[n]; ok {
			t.Errorf("%v and %s share chain %s", in, prev, n)
		}
		seen[n] = strings.Join(in[:], " ")
	}
	if ServiceChainName("default/web:http", "tcp") == ServiceChainName("default/web:http", "udp") {
		t.Error("TCP and UDP ports of one service share a chain")
	}
}

func TestBuildServicePortsProblems(t *testing.T) {
	services := []*corev1.Service{
		svc("default", "v6", "fd00::10", []corev1.ServicePort{tcpPort("", 80, 80)}),
		svc("default", "badext", "10.96.0.5", []corev1.ServicePort{tcpPort("", 80, 80)},
			func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"not-an-ip", "192.168.1.9"} }),
	}
	endpoints := []*corev1.Endpoints{eps("default", "badext", []string{"10.244.1.5", "garbage"}, epPort("", 80, corev1.ProtocolTCP))}
	ports, problems := BuildServicePorts(services, endpoints)
	if len(ports) != 1 || ports[0].Name != "badext" {
		t.Fatalf("ports = %v, want only default/badext", ports)
	}
	if got := ports[0].ExternalIPs; len(got) != 1 || got[0].String() != "192.168.1.9" {
		t.Errorf("external IPs = %v, want [192.168.1.9]", got)
	}
	if got := ports[0].Endpoints; len(got) != 1 || got[0].String() != "10.244.1.5:80" {
		t.Errorf("endpoints = %v, want [10.244.1.5:80]", got)
	}
	want := []string{"default/v6", "default/badext", "default/badext"}
	if len(problems) != len(want) {
		t.Fatalf("problems = %v, want %d", problems, len(want))
	}
	for i, p := range problems {
		if !strings.Contains(p.Error(), want[i]) {
			t.Errorf("problem %q does not name %s", p, want[i])
		}
	}
}

func TestProbabilitiesSplitEvenly(t *testing.T) {
	// Rule i is reached with probability prod_{j<i}(1-p_j) and taken with
	// p_i: every endpoint must end up with 1/n.
	for n := 1; n <= 12; n++ {
		reach := 1.0
		for i := 0; i < n; i++ {
			p := 1.0
			if i < n-1 {
				var err error
				p, err = parseFloat(probability(i, n))
				if s := probability(i, n); len(s) != len("0.")+11 {
					t.Errorf("probability %q does not have 11 decimals like iptables-save", s)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			share := reach * p
			if d := share - 1/float64(n); d > 1e-6 || d < -1e-6 {
				t.Errorf("n=%d endpoint %d gets %.6f, want %.6f", n, i, share, 1/float64(n))
			}
			reach *= 1 - p
		}
	}
}

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

func netipPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TCP service ports without endpoints are refused with a RST (an ICMP
// error answering a pod's first SYN did not reach it on the test kernel,
// so refusal took a SYN retransmission, ~1 s); other protocols keep ICMP
// port unreachable.
func TestRenderRejectsTCPWithResetOthersWithICMP(t *testing.T) {
	ports, problems := BuildServicePorts([]*corev1.Service{
		svc("default", "web", "10.96.0.30", []corev1.ServicePort{tcpPort("http", 80, 8080)}, nodePort(30200)),
		svc("default", "dns", "10.96.0.31", []corev1.ServicePort{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)}}),
	}, nil)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	rejects := map[string][]string{}
	for _, c := range Render(ports, RenderOptions{}).Chains {
		for _, l := range c.Lines {
			if strings.Contains(l, "-j REJECT") {
				proto := "tcp"
				if strings.Contains(l, "-p udp") {
					proto = "udp"
				}
				rejects[proto] = append(rejects[proto], l)
			}
		}
	}
	if len(rejects["tcp"]) != 2 || len(rejects["udp"]) != 1 {
		t.Fatalf("want 2 TCP rejects (cluster IP, node port) and 1 UDP, got %v", rejects)
	}
	for _, l := range rejects["tcp"] {
		if !strings.HasSuffix(l, "-j REJECT --reject-with tcp-reset") {
			t.Errorf("TCP reject without tcp-reset: %s", l)
		}
	}
	if l := rejects["udp"][0]; !strings.HasSuffix(l, "-j REJECT --reject-with icmp-port-unreachable") {
		t.Errorf("UDP reject: %s", l)
	}
}

package proxy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// benchState is n services with m endpoints each.
func benchState(n, m int) ([]*corev1.Service, []*corev1.Endpoints) {
	var svcs []*corev1.Service
	var endpoints []*corev1.Endpoints
	for i := range n {
		name := fmt.Sprintf("svc-%03d", i)
		svcs = append(svcs, svc("bench", name, fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), []corev1.ServicePort{tcpPort("http", 80, 8080)}))
		var ips []string
		for j := range m {
			k := i*m + j
			ips = append(ips, fmt.Sprintf("10.244.%d.%d", k/250, k%250+2))
		}
		endpoints = append(endpoints, eps("bench", name, ips, epPort("http", 8080, corev1.ProtocolTCP)))
	}
	return svcs, endpoints
}

func render(t *testing.T, svcs []*corev1.Service, endpoints []*corev1.Endpoints) *Rules {
	t.Helper()
	ports, problems := BuildServicePorts(svcs, endpoints)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	return Render(ports, RenderOptions{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")})
}

func TestPlanNothingChanged(t *testing.T) {
	svcs, endpoints := benchState(20, 3)
	r := render(t, svcs, endpoints)
	p := r.Plan(r.Hashes(), 0)
	if len(p.Commits) != 0 || p.Written != 0 || len(p.Stale) != 0 {
		t.Errorf("unchanged state planned %d commits, %d chains, stale %v", len(p.Commits), p.Written, p.Stale)
	}
}

func TestPlanOneEndpointChange(t *testing.T) {
	svcs, endpoints := benchState(20, 3)
	before := render(t, svcs, endpoints)
	endpoints[7] = endpoints[7].DeepCopy()
	endpoints[7].Subsets[0].Addresses[1].IP = "10.250.0.9"
	after := render(t, svcs, endpoints)
	p := after.Plan(before.Hashes(), 0)
	if len(p.Commits) != 1 {
		t.Fatalf("%d commits, want 1", len(p.Commits))
	}
	text := string(p.Commits[0])
	svcChain := ServiceChainName("bench/svc-007:http", "tcp")
	oldSep := EndpointChainName("bench/svc-007:http", "tcp", before.chain(t, svcChain).endpoint(t, 1))
	newSep := EndpointChainName("bench/svc-007:http", "tcp", "10.250.0.9:8080")
	want := []string{
		"*nat",
		":" + svcChain + " - [0:0]",
		":" + oldSep + " - [0:0]",
		"-N " + newSep,
		"-X " + oldSep,
		"COMMIT",
	}
	for _, w := range want {
		if !strings.Contains(text, w+"\n") {
			t.Errorf("restore lacks %q:\n%s", w, text)
		}
	}
	if strings.Contains(text, "*filter") || strings.Contains(text, ":KUBE-SERVICES") {
		t.Errorf("an endpoint change rewrote more than its service:\n%s", text)
	}
	if p.Written != 2 || p.Created != 1 || len(p.Stale) != 1 || p.Lines != 4+2 {
		t.Errorf("plan wrote %d chains (%d new, %d rules), stale %v; want 2 (1 new, 6 rules), 1 stale", p.Written, p.Created, p.Lines, p.Stale)
	}
}

// chain finds a rendered chain by name.
func (r *Rules) chain(t *testing.T, name string) *Chain {
	t.Helper()
	for _, c := range r.Chains {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no chain %s", name)
	return nil
}

// endpoint returns the "ip:port" of the i-th endpoint a KUBE-SVC chain
// spreads to (from the rule comments).
func (c *Chain) endpoint(t *testing.T, i int) string {
	t.Helper()
	var eps []string
	for _, l := range c.Lines {
		if _, after, ok := strings.Cut(l, " -> "); ok {
			eps = append(eps, strings.SplitN(after, `"`, 2)[0])
		}
	}
	if i >= len(eps) {
		t.Fatalf("chain %s has %d endpoints", c.Name, len(eps))
	}
	return eps[i]
}

func TestPlanBatchesKeepServicesWholeAndSwitchLast(t *testing.T) {
	svcs, endpoints := benchState(40, 5)
	r := render(t, svcs, endpoints)
	// From an empty kernel: every chain is new.
	p := r.Plan(map[string]uint64{}, 30)
	if len(p.Commits) < 5 {
		t.Fatalf("%d commits for %d rules in batches of 30", len(p.Commits), p.Lines)
	}
	seen := map[string]int{} // "table/chain" -> restore index of its rules
	for i, text := range p.Commits {
		table := ""
		created := map[string]bool{}
		for _, l := range strings.Split(string(text), "\n") {
			if t, ok := strings.CutPrefix(l, "*"); ok {
				table = t
			}
			if name, ok := strings.CutPrefix(l, "-N "); ok {
				key := table + "/" + name
				if created[key] {
					t.Errorf("chain %s created twice in commit %d", key, i)
				}
				created[key] = true
				if _, dup := seen[key]; dup {
					t.Errorf("chain %s created again in commit %d", key, i)
				}
			}
			if strings.HasPrefix(l, "-A ") {
				key := table + "/" + strings.Fields(l)[1]
				if prev, ok := seen[key]; ok && prev != i {
					t.Errorf("chain %s filled in commits %d and %d", key, prev, i)
				}
				seen[key] = i
			}
		}
		last := i == len(p.Commits)-1
		if !last && (strings.Contains(string(text), "-A KUBE-SERVICES") || strings.Contains(string(text), "-A KUBE-NODEPORTS")) {
			t.Errorf("commit %d of %d fills KUBE-SERVICES or KUBE-NODEPORTS before the service chains are complete", i+1, len(p.Commits))
		}
	}
	for _, c := range r.Chains {
		if _, ok := seen[c.Key()]; !ok && len(c.Lines) > 0 {
			t.Errorf("chain %s never written", c.Key())
		}
	}
	// A service's chains share a restore.
	byOwner := map[string]int{}
	for _, c := range r.Chains {
		if c.Owner == "" {
			continue
		}
		if i, ok := byOwner[c.Owner]; ok && i != seen[c.Key()] {
			t.Errorf("service %s split across commits %d and %d", c.Owner, i, seen[c.Key()])
		}
		byOwner[c.Owner] = seen[c.Key()]
	}
	// The fixed chains KUBE-MARK-MASQ etc. exist before anything jumps
	// to them: created empty in the first restore.
	if !strings.Contains(string(p.Commits[0]), "-N "+ChainMarkMasq+"\n") {
		t.Errorf("first commit does not create %s:\n%s", ChainMarkMasq, p.Commits[0])
	}
	// Without batching, one restore.
	if one := r.Plan(map[string]uint64{}, 0); len(one.Commits) != 1 {
		t.Errorf("maxLines 0 gave %d commits", len(one.Commits))
	}
}

func TestRuleHashIgnoresIptablesSaveReordering(t *testing.T) {
	// As written by Render and as iptables-save (nf_tables) prints it.
	ours := `-A KUBE-SERVICES -m comment --comment "bench/svc-0000:http cluster IP" -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-TDI3TDUNJ3QUJRYK`
	saved := `-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "bench/svc-0000:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-TDI3TDUNJ3QUJRYK`
	if ruleHash(ours) != ruleHash(saved) {
		t.Error("reordered rule hashes differently")
	}
	unquoted := `-A KUBE-FORWARD -m comment --comment kubernetes -j ACCEPT`
	quoted := `-A KUBE-FORWARD -m comment --comment "kubernetes" -j ACCEPT`
	if ruleHash(unquoted) != ruleHash(quoted) {
		t.Error("quotes change the hash")
	}
	for _, other := range []string{
		strings.Replace(saved, "--dport 80", "--dport 81", 1),
		strings.Replace(saved, "-j KUBE-SVC-TDI3TDUNJ3QUJRYK", "-j KUBE-SVC-TDI3TDUNJ3QUJRYL", 1),
		strings.Replace(saved, " -m tcp", "", 1),
		saved + " -m tcp",
	} {
		if ruleHash(other) == ruleHash(saved) {
			t.Errorf("different rule hashes the same: %s", other)
		}
	}
	a, b := []string{ours, unquoted}, []string{unquoted, ours}
	if chainHash(a) == chainHash(b) {
		t.Error("rule order does not change the chain hash")
	}
	if chainHash(nil) == chainHash([]string{""}) {
		t.Error("an empty rule list hashes like one empty rule")
	}
}

func TestParseSave(t *testing.T) {
	text := []byte(`# Generated by iptables-save
*filter
:INPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
-A INPUT -m comment --comment "kubernetes localnet protection" -j KUBE-PROXY-FIREWALL
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SVC-X - [0:0]
-A KUBE-SVC-X -j KUBE-SEP-Y
-A KUBE-SVC-X -j KUBE-SEP-Z
COMMIT
`)
	got := ParseSave(text)
	if len(got["filter"]["INPUT"]) != 1 || got["filter"]["KUBE-FORWARD"] == nil && len(got["filter"]) != 2 {
		t.Errorf("filter = %v", got["filter"])
	}
	if _, ok := got["filter"]["KUBE-FORWARD"]; !ok {
		t.Error("empty chain KUBE-FORWARD missing")
	}
	if len(got["nat"]["KUBE-SVC-X"]) != 2 {
		t.Errorf("nat KUBE-SVC-X = %v", got["nat"]["KUBE-SVC-X"])
	}
	h := ChainHashes(got)
	if _, ok := h["nat/PREROUTING"]; ok {
		t.Error("ChainHashes includes a built-in chain")
	}
	if _, ok := h["nat/KUBE-SVC-X"]; !ok {
		t.Error("ChainHashes lacks nat/KUBE-SVC-X")
	}
}

func TestPlanInputJoinsCommitsInOrder(t *testing.T) {
	svcs, endpoints := benchState(40, 5)
	p := render(t, svcs, endpoints).Plan(map[string]uint64{}, 30)
	in := string(p.Input())
	if strings.Count(in, "COMMIT\n") < len(p.Commits) {
		t.Fatalf("input has %d COMMITs for %d commits", strings.Count(in, "COMMIT\n"), len(p.Commits))
	}
	at := 0
	for i, c := range p.Commits {
		j := strings.Index(in[at:], string(c))
		if j != 0 {
			t.Fatalf("commit %d is not where it belongs in the input (found at offset %d after %d)", i, j, at)
		}
		at += len(c)
	}
	if at != len(in) {
		t.Errorf("input has %d bytes beyond its commits", len(in)-at)
	}
	if len((&Plan{}).Input()) != 0 {
		t.Error("an empty plan has input")
	}
}

package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/proxy/proxytest"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("MINIK8S_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// iptablesSave returns `iptables-save -t table` run inside netns.
func iptablesSave(t *testing.T, netns, table string) string {
	t.Helper()
	return proxytest.Exec(t, netns, "iptables-save", "-t", table)
}

// chainsOf lists the chains declared in iptables-save output.
func chainsOf(save string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(save, "\n") {
		if strings.HasPrefix(l, ":") {
			out[strings.Fields(l[1:])[0]] = true
		}
	}
	return out
}

// rulesOf returns the "-A chain ..." lines of chain in iptables-save output.
func rulesOf(save, chain string) []string {
	var out []string
	for _, l := range strings.Split(save, "\n") {
		if strings.HasPrefix(l, "-A "+chain+" ") {
			out = append(out, l)
		}
	}
	return out
}

// mustContain fails unless some line of lines contains every fragment.
func mustContain(t *testing.T, what string, lines []string, fragments ...string) {
	t.Helper()
	for _, l := range lines {
		ok := true
		for _, f := range fragments {
			if !strings.Contains(l, f) {
				ok = false
				break
			}
		}
		if ok {
			return
		}
	}
	t.Errorf("%s: no rule containing %q in:\n%s", what, fragments, strings.Join(lines, "\n"))
}

// applierServices is a mixed state: a unique namespace name makes its
// chain names unique, so the test can prove the host never got them.
func applierServices(ns string) ([]*corev1.Service, []*corev1.Endpoints) {
	services := []*corev1.Service{
		svc(ns, "web", "10.96.0.10", []corev1.ServicePort{tcpPort("http", 80, 8080)}),
		svc(ns, "front", "10.96.0.11", []corev1.ServicePort{tcpPort("http", 80, 8080)}, nodePort(30080),
			func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"192.0.2.10"} }),
		svc(ns, "empty", "10.96.0.12", []corev1.ServicePort{tcpPort("http", 80, 8080)}, nodePort(30081)),
		svc(ns, "sticky", "10.96.0.13", []corev1.ServicePort{tcpPort("", 80, 8080)},
			func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }),
		svc(ns, "dns", "10.96.0.14", []corev1.ServicePort{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)}}),
	}
	endpoints := []*corev1.Endpoints{
		eps(ns, "web", []string{"10.244.1.5", "10.244.1.6", "10.244.2.7"}, epPort("http", 8080, corev1.ProtocolTCP)),
		eps(ns, "front", []string{"10.244.1.8"}, epPort("http", 8080, corev1.ProtocolTCP)),
		eps(ns, "sticky", []string{"10.244.1.9", "10.244.2.9"}, epPort("", 8080, corev1.ProtocolTCP)),
		eps(ns, "dns", []string{"10.244.1.2"}, epPort("dns", 53, corev1.ProtocolUDP)),
	}
	return services, endpoints
}

// kernelSync does what a full sync does: read the kernel, plan against
// it, apply the plan and the missing jumps in one restore. It returns the plan and the jumps added.
func kernelSync(ctx context.Context, x *Iptables, ports []*ServicePort, opts RenderOptions, batch int) (*Rules, *Plan, int, error) {
	text, err := x.Save(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	saved := ParseSave(text)
	rules := Render(ports, opts)
	plan := rules.Plan(ChainHashes(saved), batch)
	jumps, added := JumpsInput(saved)
	if input := append(plan.Input(), jumps...); len(input) > 0 {
		if err := x.Restore(ctx, input); err != nil {
			return nil, nil, 0, err
		}
	}
	return rules, plan, added, nil
}

func TestIptablesApplyResyncAndCleanupInNetns(t *testing.T) {
	netns := proxytest.Netns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := fmt.Sprintf("applier-%d", time.Now().UnixNano())
	services, endpoints := applierServices(ns)
	opts := RenderOptions{ClusterCIDR: netipPrefix(t, "10.244.0.0/16"), RandomFully: true}

	var x *Iptables
	run := func(f func() error) {
		t.Helper()
		if err := InNetns(netns, f); err != nil {
			t.Fatal(err)
		}
	}
	// Something that is not ours, which must survive everything below.
	proxytest.Exec(t, netns, "iptables", "-N", "SOMEONE-ELSE")
	proxytest.Exec(t, netns, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
	proxytest.Exec(t, netns, "iptables", "-t", "nat", "-N", "KUBE-SOMETHING-ELSE")

	// First sync: everything is new.
	ports, _ := BuildServicePorts(services, endpoints)
	var first *Rules
	run(func() error {
		var err error
		if x, err = NewIptables(testLogger()); err != nil {
			return err
		}
		rules, plan, added, err := kernelSync(ctx, x, ports, opts, 0)
		if err != nil {
			return err
		}
		first = rules
		if plan.Written != len(rules.Chains) || plan.Created != len(rules.Chains) || len(plan.Commits) != 1 {
			return fmt.Errorf("first sync wrote %d chains (%d created) in %d commits, want all %d created in 1", plan.Written, plan.Created, len(plan.Commits), len(rules.Chains))
		}
		if added != len(jumpRules) {
			return fmt.Errorf("first sync added %d jump rules, want %d", added, len(jumpRules))
		}
		// Read back, the kernel's rules hash like ours: a second full sync
		// finds nothing to write and no jump to add.
		_, plan, added, err = kernelSync(ctx, x, ports, opts, 0)
		if err != nil {
			return err
		}
		if plan.Written != 0 || len(plan.Commits) != 0 || added != 0 {
			var diff []string
			text, _ := x.Save(ctx)
			kernel := ChainHashes(ParseSave(text))
			for _, c := range rules.Chains {
				if kernel[c.Key()] != c.hash {
					diff = append(diff, c.Key())
				}
			}
			return fmt.Errorf("an unchanged full sync wrote %d chains, added %d jumps; chains reading back differently: %v", plan.Written, added, diff)
		}
		return nil
	})

	nat := iptablesSave(t, netns, "nat")
	filter := iptablesSave(t, netns, "filter")
	natChains := chainsOf(nat)
	for c := range first.ServiceChains {
		if !natChains[c] {
			t.Errorf("chain %s missing from iptables-save", c)
		}
	}
	for _, c := range []string{ChainServices, ChainNodePorts, ChainPostrouting, ChainMarkMasq} {
		if !natChains[c] {
			t.Errorf("nat chain %s missing", c)
		}
	}
	web := ServiceChainName(ns+"/web:http", "tcp")
	mustContain(t, "cluster IP jump", rulesOf(nat, ChainServices), "-d 10.96.0.10/32", "--dport 80", "-j "+web)
	mustContain(t, "fan-out", rulesOf(nat, web), "--mode random", "--probability 0.33333333349", "-j KUBE-SEP-")
	if n := len(rulesOf(nat, web)); n != 4 {
		t.Errorf("%s has %d rules, want 4 (masquerade + 3 endpoints)", web, n)
	}
	sep := EndpointChainName(ns+"/web:http", "tcp", "10.244.2.7:8080")
	mustContain(t, "DNAT", rulesOf(nat, sep), "-j DNAT", "--to-destination 10.244.2.7:8080")
	front := ServiceChainName(ns+"/front:http", "tcp")
	mustContain(t, "node port", rulesOf(nat, ChainNodePorts), "--dport 30080", "-j "+front)
	mustContain(t, "external IP", rulesOf(nat, ChainServices), "-d 192.0.2.10/32", "-j "+front)
	mustContain(t, "nodeports last", rulesOf(nat, ChainServices)[len(rulesOf(nat, ChainServices))-1:], "--dst-type LOCAL", "-j "+ChainNodePorts)
	mustContain(t, "affinity", rulesOf(nat, ServiceChainName(ns+"/sticky", "tcp")), "--rcheck", "--seconds 10800")
	mustContain(t, "udp", rulesOf(nat, EndpointChainName(ns+"/dns:dns", "udp", "10.244.1.2:53")), "-p udp", "--to-destination 10.244.1.2:53")
	mustContain(t, "masquerade", rulesOf(nat, ChainPostrouting), "-j MASQUERADE")
	mustContain(t, "mark", rulesOf(nat, ChainMarkMasq), "--set-xmark 0x4000/0x4000")
	mustContain(t, "nat PREROUTING jump", rulesOf(nat, "PREROUTING"), "-j "+ChainServices)
	mustContain(t, "nat OUTPUT jump", rulesOf(nat, "OUTPUT"), "-j "+ChainServices)
	mustContain(t, "nat POSTROUTING jump", rulesOf(nat, "POSTROUTING"), "-j "+ChainPostrouting)
	mustContain(t, "no endpoints", rulesOf(filter, ChainServices), "-d 10.96.0.12/32", "-j REJECT")
	mustContain(t, "no endpoints node port", rulesOf(filter, ChainExternalServices), "--dport 30081", "-j REJECT")
	for _, chain := range []string{"INPUT", "FORWARD", "OUTPUT"} {
		mustContain(t, "filter "+chain+" jump", rulesOf(filter, chain), "-j KUBE-")
	}
	if natChains[ServiceChainName(ns+"/empty:http", "tcp")] {
		t.Error("a service without endpoints got a KUBE-SVC chain")
	}

	// The host namespace never saw any of it.
	if host, err := exec.Command("iptables", "-t", "nat", "-S").CombinedOutput(); err == nil && strings.Contains(string(host), web) {
		t.Fatalf("chain %s leaked into the host's network namespace", web)
	}

	// Second sync, planned against what was applied (a change-triggered
	// sync): "web" is gone and "sticky" lost an endpoint. Only the chains
	// that differ are written; the dead ones go in the same restore.
	services2 := []*corev1.Service{}
	for _, s := range services {
		if s.Name != "web" {
			services2 = append(services2, s)
		}
	}
	endpoints2 := []*corev1.Endpoints{}
	for _, e := range endpoints {
		switch e.Name {
		case "web":
		case "sticky":
			endpoints2 = append(endpoints2, eps(ns, "sticky", []string{"10.244.2.9"}, epPort("", 8080, corev1.ProtocolTCP)))
		default:
			endpoints2 = append(endpoints2, e)
		}
	}
	ports2, _ := BuildServicePorts(services2, endpoints2)
	second := Render(ports2, opts)
	plan2 := second.Plan(first.Hashes(), 0)
	run(func() error {
		for _, r := range plan2.Commits {
			if err := x.Restore(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	// KUBE-SERVICES (web's rule gone) and sticky's SVC chain (one fan-out
	// rule fewer) changed; nothing else.
	if plan2.Written != 2 || len(plan2.Commits) != 1 {
		t.Errorf("second sync wrote %d chains in %d commits, want 2 in 1:\n%s", plan2.Written, len(plan2.Commits), plan2.Commits)
	}
	nat = iptablesSave(t, netns, "nat")
	natChains = chainsOf(nat)
	gone := []string{web, sep,
		EndpointChainName(ns+"/web:http", "tcp", "10.244.1.5:8080"),
		EndpointChainName(ns+"/sticky", "tcp", "10.244.1.9:8080")}
	for _, c := range gone {
		if natChains[c] {
			t.Errorf("stale chain %s survived the second sync", c)
		}
		if !containsString(plan2.Stale, c) {
			t.Errorf("second plan did not list %s as stale (stale: %v)", c, plan2.Stale)
		}
	}
	for c := range second.ServiceChains {
		if !natChains[c] {
			t.Errorf("wanted chain %s missing after the second sync", c)
		}
	}
	if strings.Contains(nat, "10.96.0.10/32") {
		t.Error("rules for the deleted service's cluster IP remain")
	}
	if !natChains["KUBE-SOMETHING-ELSE"] {
		t.Error("a KUBE- chain the proxy does not own was deleted")
	}

	// Hand-made damage is found by the next full sync, which rewrites
	// just the damaged chain and re-adds the jump.
	proxytest.Exec(t, netns, "iptables", "-t", "nat", "-D", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", ChainServices)
	proxytest.Exec(t, netns, "iptables", "-t", "nat", "-F", front)
	run(func() error {
		_, plan, added, err := kernelSync(ctx, x, ports2, opts, 0)
		if err != nil {
			return err
		}
		if plan.Written != 1 || added != 1 {
			return fmt.Errorf("repair wrote %d chains and %d jumps, want 1 and 1", plan.Written, added)
		}
		return nil
	})
	nat = iptablesSave(t, netns, "nat")
	mustContain(t, "restored PREROUTING jump", rulesOf(nat, "PREROUTING"), "-j "+ChainServices)
	mustContain(t, "restored service chain", rulesOf(nat, front), "-j KUBE-SEP-")

	// Cleanup leaves no chain or jump of ours, and everything else.
	cleanup := func() {
		t.Helper()
		run(func() error {
			jumps, chains, err := x.Cleanup(ctx)
			if err != nil {
				return err
			}
			if jumps != len(jumpRules) {
				return fmt.Errorf("cleanup removed %d jump rules, want %d", jumps, len(jumpRules))
			}
			if chains == 0 {
				return fmt.Errorf("cleanup removed no chains")
			}
			return nil
		})
		for _, table := range []string{"nat", "filter"} {
			save := iptablesSave(t, netns, table)
			for c := range chainsOf(save) {
				if OwnedChain(table, c) {
					t.Errorf("%s chain %s survived cleanup", table, c)
				}
			}
			for _, l := range strings.Split(save, "\n") {
				if strings.HasPrefix(l, "-A ") && OwnedChain(table, jumpTarget(l)) {
					t.Errorf("rule survived cleanup: %s", l)
				}
			}
		}
		if !chainsOf(iptablesSave(t, netns, "nat"))["KUBE-SOMETHING-ELSE"] || !chainsOf(iptablesSave(t, netns, "filter"))["SOMEONE-ELSE"] {
			t.Error("cleanup removed chains it does not own")
		}
		mustContain(t, "foreign rule", rulesOf(iptablesSave(t, netns, "filter"), "INPUT"), "--dport 22", "-j ACCEPT")
	}
	cleanup()
	// Cleaning up twice is fine.
	run(func() error {
		jumps, chains, err := x.Cleanup(ctx)
		if err == nil && (jumps != 0 || chains != 0) {
			err = fmt.Errorf("second cleanup removed %d jumps and %d chains, want none", jumps, chains)
		}
		return err
	})

	// A big rewrite in small batches ends in the same state as one
	// restore: afterwards the kernel reads back equal to the rules.
	run(func() error {
		rules, plan, _, err := kernelSync(ctx, x, ports, opts, 5)
		if err != nil {
			return err
		}
		if len(plan.Commits) < 3 {
			return fmt.Errorf("batched sync used %d commits, want several", len(plan.Commits))
		}
		text, err := x.Save(ctx)
		if err != nil {
			return err
		}
		kernel := ChainHashes(ParseSave(text))
		for _, c := range rules.Chains {
			if kernel[c.Key()] != c.hash {
				return fmt.Errorf("after a batched sync chain %s differs from the rules", c.Key())
			}
		}
		return nil
	})
	cleanup()
}

func TestGoldenFilesRestoreInNetns(t *testing.T) {
	netns := proxytest.Netns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	files, err := filepath.Glob("testdata/*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	err = InNetns(netns, func() error {
		x, err := NewIptables(testLogger())
		if err != nil {
			return err
		}
		for _, f := range files {
			text, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			if err := x.Restore(ctx, text); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			// The stale golden deletes chains it assumes exist; applying
			// it to a clean table is still valid because it declares them.
			if _, _, err := x.Cleanup(ctx); err != nil {
				return fmt.Errorf("%s: cleanup: %w", f, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRestoreErrorNamesService(t *testing.T) {
	netns := proxytest.Netns(t)
	bad := []byte("*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -m comment --comment \"default/broken:http cluster IP\" -d 10.96.0.300/32 -j ACCEPT\nCOMMIT\n")
	err := InNetns(netns, func() error {
		x, err := NewIptables(testLogger())
		if err != nil {
			return err
		}
		return x.Restore(context.Background(), bad)
	})
	if err == nil {
		t.Fatal("restoring an invalid rule succeeded")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "(service default/broken:http)") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %q does not name the service and line 3", err)
	}
}

func TestSysctlsInNetns(t *testing.T) {
	netns := proxytest.Netns(t)
	hostBefore, _ := os.ReadFile("/proc/sys/net/ipv4/conf/all/route_localnet")
	proxytest.Exec(t, netns, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward; echo 0 > /proc/sys/net/ipv4/conf/all/route_localnet")
	if err := InNetns(netns, func() error { return ensureSysctls(testLogger()) }); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/conf/all/route_localnet"} {
		if got := strings.TrimSpace(proxytest.Exec(t, netns, "cat", f)); got != "1" {
			t.Errorf("%s in the namespace = %s, want 1", f, got)
		}
	}
	hostAfter, _ := os.ReadFile("/proc/sys/net/ipv4/conf/all/route_localnet")
	if string(hostBefore) != string(hostAfter) {
		t.Errorf("host route_localnet changed from %q to %q", hostBefore, hostAfter)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestJumpsInputInsertsOnlyMissingRulesInOrder(t *testing.T) {
	text, n := JumpsInput(nil)
	if n != len(jumpRules) {
		t.Fatalf("from nothing: %d jump rules, want %d", n, len(jumpRules))
	}
	// Inserted bottom-up at position 1, so within INPUT the firewall jump
	// (second in jumpRules) is inserted before the external-services one.
	in := string(text)
	fw := strings.Index(in, "-I INPUT 1 -m comment --comment \"kubernetes localnet protection\" -j KUBE-PROXY-FIREWALL\n")
	ext := strings.Index(in, "-I INPUT 1 -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n")
	if fw < 0 || ext < 0 || fw > ext {
		t.Errorf("INPUT jumps missing or out of order (firewall at %d, external at %d):\n%s", fw, ext, in)
	}
	if !strings.HasPrefix(in, "*filter\n") || !strings.Contains(in, "COMMIT\n*nat\n") || !strings.HasSuffix(in, "COMMIT\n") {
		t.Errorf("not one commit per table:\n%s", in)
	}

	// As iptables-save prints them (matches in another order, quotes
	// kept): nothing to add. Without one of them: just that one.
	saved := map[string]map[string][]string{}
	for _, j := range jumpRules {
		if saved[j.table] == nil {
			saved[j.table] = map[string][]string{}
		}
		spec := slices.Clone(j.spec)
		for k, a := range spec {
			if strings.Contains(a, " ") {
				spec[k] = `"` + a + `"`
			}
		}
		saved[j.table][j.chain] = append(saved[j.table][j.chain], "-A "+j.chain+" "+strings.Join(spec, " "))
	}
	if text, n := JumpsInput(saved); n != 0 || text != nil {
		t.Errorf("all present: %d rules to insert:\n%s", n, text)
	}
	saved["nat"]["OUTPUT"] = []string{"-A OUTPUT -d 10.0.0.1/32 -j ACCEPT"}
	text, n = JumpsInput(saved)
	if want := "*nat\n-I OUTPUT 1 -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\nCOMMIT\n"; n != 1 || string(text) != want {
		t.Errorf("one missing: %d rules:\n%s\nwant:\n%s", n, text, want)
	}
}

// A chain of ours that something else still jumps to cannot be deleted:
// the batched restore fails, and Cleanup falls back to removing what is
// left one by one, reports the chain it could not delete and removes all
// the others.
func TestCleanupFallsBackWhenAChainIsStillReferenced(t *testing.T) {
	netns := proxytest.Netns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := fmt.Sprintf("cleanup-%d", time.Now().UnixNano())
	services, endpoints := applierServices(ns)
	ports, _ := BuildServicePorts(services, endpoints)
	opts := RenderOptions{ClusterCIDR: netipPrefix(t, "10.244.0.0/16")}
	var x *Iptables
	var rules *Rules
	err := InNetns(netns, func() (err error) {
		if x, err = NewIptables(testLogger()); err != nil {
			return err
		}
		rules, _, _, err = kernelSync(ctx, x, ports, opts, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	held := ServiceChainName(ns+"/web:http", "tcp")
	proxytest.Exec(t, netns, "iptables", "-t", "nat", "-N", "SOMEONE-ELSE")
	proxytest.Exec(t, netns, "iptables", "-t", "nat", "-A", "SOMEONE-ELSE", "-j", held)

	var chains int
	err = InNetns(netns, func() (err error) {
		_, chains, err = x.Cleanup(ctx)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), held) {
		t.Fatalf("cleanup error %v, want one naming %s", err, held)
	}
	if want := len(rules.Chains) - 1; chains != want {
		t.Errorf("cleanup reports %d chains removed, want %d (all but %s)", chains, want, held)
	}
	for _, table := range []string{"filter", "nat"} {
		for c := range chainsOf(iptablesSave(t, netns, table)) {
			if OwnedChain(table, c) && c != held {
				t.Errorf("%s/%s survived cleanup", table, c)
			}
		}
	}
	if !chainsOf(iptablesSave(t, netns, "nat"))[held] {
		t.Errorf("%s, still referenced, was deleted", held)
	}
}

// Command bench-proxy prints how long the service proxy takes at scale:
// rendering the rules for N services × M endpoints, the first
// iptables-restore of them into a fresh network namespace, and one sync
// after a single endpoint change (render + restore, as a change-triggered
// sync does), plus a full resync and --cleanup. It needs root, ip and
// iptables; it creates its own network namespace and deletes it at exit.
// It prints numbers and asserts nothing.
//
//	go run ./hack/bench-proxy -services 1000 -endpoints 10
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sort"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/proxy"
)

var batch int

func main() {
	services := flag.Int("services", 1000, "number of services")
	endpoints := flag.Int("endpoints", 10, "ready endpoints per service")
	runs := flag.Int("runs", 5, "repetitions of each timed step (the median is printed)")
	nodePorts := flag.Bool("nodeports", true, "make every 4th service a NodePort")
	flag.IntVar(&batch, "batch", proxy.DefaultBatchLines, "largest rewrite in one iptables-restore (0 = never split)")
	single := flag.Bool("single", true, "also time the first sync as one unbatched iptables-restore, for comparison")
	dump := flag.String("dump", "", "write the full iptables-restore input to this file and exit (for timing iptables-restore by hand)")
	flag.Parse()
	if *dump != "" {
		svcs, eps := objects(*services, *endpoints, *nodePorts)
		ports, _ := proxy.BuildServicePorts(svcs, eps)
		text := proxy.Render(ports, proxy.RenderOptions{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), RandomFully: true}).Text()
		if err := os.WriteFile(*dump, text, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench-proxy:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*services, *endpoints, *runs, *nodePorts, *single); err != nil {
		fmt.Fprintln(os.Stderr, "bench-proxy:", err)
		os.Exit(1)
	}
}

// objects generates n services with m endpoints each.
func objects(n, m int, nodePorts bool) ([]*corev1.Service, []*corev1.Endpoints) {
	svcs := make([]*corev1.Service, 0, n)
	eps := make([]*corev1.Endpoints, 0, n)
	for i := range n {
		name := fmt.Sprintf("svc-%04d", i)
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name},
			Spec: corev1.ServiceSpec{
				Type:      corev1.ServiceTypeClusterIP,
				ClusterIP: fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
				Ports:     []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
			},
		}
		if nodePorts && i%4 == 0 {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = int32(30000 + i)
		}
		ss := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}}
		for j := range m {
			k := i*m + j
			ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: fmt.Sprintf("10.244.%d.%d", k/250, k%250+2)})
		}
		svcs = append(svcs, s)
		eps = append(eps, &corev1.Endpoints{ObjectMeta: s.ObjectMeta, Subsets: []corev1.EndpointSubset{ss}})
	}
	return svcs, eps
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func timeIt(runs int, f func() error) (time.Duration, error) {
	var ds []time.Duration
	for range runs {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	return median(ds), nil
}

func run(n, m, runs int, nodePorts, single bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (it creates network namespaces)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	svcs, eps := objects(n, m, nodePorts)
	opts := proxy.RenderOptions{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), RandomFully: true}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// 1. Render (model + rules + the full restore text), no I/O.
	var rules *proxy.Rules
	var text []byte
	var ports []*proxy.ServicePort
	render, _ := timeIt(runs, func() error {
		ports, _ = proxy.BuildServicePorts(svcs, eps)
		rules = proxy.Render(ports, opts)
		text = rules.Text()
		return nil
	})
	fmt.Printf("state: %d services x %d endpoints = %d service ports, %d endpoints\n", n, m, len(ports), n*m)
	fmt.Printf("rules: %d nat + %d filter rules in %d chains, %.1f MiB of iptables-restore input\n",
		rules.NATRules, rules.FilterRules, len(rules.Chains), float64(len(text))/(1<<20))
	fmt.Printf("render (BuildServicePorts + Render + text), median of %d: %s\n", runs, render.Round(time.Millisecond))

	if single {
		// For comparison: everything in one iptables-restore --noflush.
		err := inFreshNetns("single", func() error {
			x, err := proxy.NewIptables(log)
			if err != nil {
				return err
			}
			start := time.Now()
			if err := x.Restore(ctx, text); err != nil {
				return err
			}
			fmt.Printf("first sync as ONE iptables-restore --noflush into a fresh netns: %s\n", time.Since(start).Round(time.Millisecond))
			return nil
		})
		if err != nil {
			return err
		}
	}

	// 2. First sync into an empty namespace, as the proxy does it: read
	// the kernel, plan (batched above -batch rules), then one
	// iptables-restore with every commit and the jump rules. Each run gets
	// a fresh namespace; the last one is kept for the steps after it.
	var firsts, firstCPU []time.Duration
	var x *proxy.Iptables
	firstSync := func() error {
		var err error
		if x, err = proxy.NewIptables(log); err != nil {
			return err
		}
		cpu0 := childCPU()
		start := time.Now()
		saved, err := x.Save(ctx)
		if err != nil {
			return err
		}
		parsed := proxy.ParseSave(saved)
		plan := proxy.Render(ports, opts).Plan(proxy.ChainHashes(parsed), batch)
		jumps, njumps := proxy.JumpsInput(parsed)
		planned := time.Since(start)
		if err := x.Restore(ctx, append(plan.Input(), jumps...)); err != nil {
			return err
		}
		firsts = append(firsts, time.Since(start))
		cpu := childCPU() - cpu0
		firstCPU = append(firstCPU, cpu)
		fmt.Printf("  first sync #%d: save+render+plan %s, then one iptables-restore of %d commits of <= %d rules + %d jump rules: %s (iptables CPU %s)\n",
			len(firsts), planned.Round(time.Millisecond), len(plan.Commits), batch, njumps, firsts[len(firsts)-1].Round(time.Millisecond), cpu.Round(time.Millisecond))
		return nil
	}
	for r := 1; r < runs; r++ {
		if err := inFreshNetns(fmt.Sprintf("first%d", r), firstSync); err != nil {
			return err
		}
	}
	return inFreshNetns("bench", func() error {
		if err := firstSync(); err != nil {
			return err
		}
		fmt.Printf("first sync into a fresh netns, median of %d: %s (iptables-save/-restore CPU, user+sys: %s; less load-sensitive than wall time)\n",
			runs, median(firsts).Round(time.Millisecond), median(firstCPU).Round(time.Millisecond))

		// 3. One endpoint change, as a change-triggered sync handles it:
		// rebuild, render, plan against what was applied, one restore
		// with just the changed chains.
		applied := rules.Hashes()
		var changeRender, changeRestore []time.Duration
		for r := range runs {
			i := (r * 37) % n
			target := eps[i].DeepCopy()
			target.Subsets[0].Addresses[0].IP = fmt.Sprintf("10.250.%d.%d", r/250, r%250+1)
			eps[i] = target
			start := time.Now()
			ports, _ := proxy.BuildServicePorts(svcs, eps)
			next := proxy.Render(ports, opts)
			plan := next.Plan(applied, batch)
			changeRender = append(changeRender, time.Since(start))
			start = time.Now()
			if err := x.Restore(ctx, plan.Input()); err != nil {
				return err
			}
			changeRestore = append(changeRestore, time.Since(start))
			if len(plan.Commits) != 1 || plan.Written != 2 || len(plan.Stale) != 1 {
				return fmt.Errorf("endpoint change planned %d commits, %d chains, %d stale; want 1, 2, 1", len(plan.Commits), plan.Written, len(plan.Stale))
			}
			applied = next.Hashes()
		}
		rc, sc := median(changeRender), median(changeRestore)
		fmt.Printf("one endpoint change, median of %d: render+plan %s + iptables-restore %s = %s\n",
			runs, rc.Round(time.Millisecond), sc.Round(time.Millisecond), (rc + sc).Round(time.Millisecond))

		// 4. A periodic full resync with nothing changed: read back,
		// compare, write nothing, find every jump rule in place.
		var written, added int
		full, err := timeIt(runs, func() error {
			saved, err := x.Save(ctx)
			if err != nil {
				return err
			}
			parsed := proxy.ParseSave(saved)
			ports, _ := proxy.BuildServicePorts(svcs, eps)
			plan := proxy.Render(ports, opts).Plan(proxy.ChainHashes(parsed), batch)
			jumps, n := proxy.JumpsInput(parsed)
			if input := append(plan.Input(), jumps...); len(input) > 0 {
				if err := x.Restore(ctx, input); err != nil {
					return err
				}
			}
			written, added = plan.Written, n
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Printf("full resync, nothing changed (iptables-save + compare), median of %d: %s (%d chains rewritten, %d jumps added)\n", runs, full.Round(time.Millisecond), written, added)

		// 5. --cleanup at this size.
		start := time.Now()
		j, c, err := x.Cleanup(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("cleanup (%d jump rules, %d chains): %s\n", j, c, time.Since(start).Round(time.Millisecond))
		return nil
	})
}

// childCPU is the user+system CPU time of this process's finished
// children (iptables-save, iptables-restore) so far.
func childCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// inFreshNetns runs f inside a new network namespace, deleted afterwards.
func inFreshNetns(tag string, f func() error) error {
	netns := fmt.Sprintf("mk8s-bench-proxy-%s-%d", tag, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", netns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("ip", "netns", "del", netns).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "ip netns del %s: %v: %s\n", netns, err, out)
		}
	}()
	return proxy.InNetns(netns, f)
}

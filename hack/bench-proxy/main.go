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
	flag.Parse()
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

	return inFreshNetns("bench", func() error {
		x, err := proxy.NewIptables(log)
		if err != nil {
			return err
		}
		// 2. First sync into an empty namespace, as the proxy does it:
		// read the kernel, plan (batched above DefaultBatchLines), restore,
		// add the jump rules.
		start := time.Now()
		saved, err := x.Save(ctx)
		if err != nil {
			return err
		}
		parsed := proxy.ParseSave(saved)
		plan := proxy.Render(ports, opts).Plan(proxy.ChainHashes(parsed), batch)
		for _, r := range plan.Restores {
			if err := x.Restore(ctx, r); err != nil {
				return err
			}
		}
		restored := time.Since(start)
		if _, err := x.EnsureJumps(parsed); err != nil {
			return err
		}
		fmt.Printf("first sync into a fresh netns (%d restores of <= %d rules): %s, then jump rules: %s\n",
			len(plan.Restores), batch, restored.Round(time.Millisecond), (time.Since(start) - restored).Round(time.Millisecond))

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
			for _, text := range plan.Restores {
				if err := x.Restore(ctx, text); err != nil {
					return err
				}
			}
			changeRestore = append(changeRestore, time.Since(start))
			if len(plan.Restores) != 1 || plan.Written != 2 || len(plan.Stale) != 1 {
				return fmt.Errorf("endpoint change planned %d restores, %d chains, %d stale; want 1, 2, 1", len(plan.Restores), plan.Written, len(plan.Stale))
			}
			applied = next.Hashes()
		}
		rc, sc := median(changeRender), median(changeRestore)
		fmt.Printf("one endpoint change, median of %d: render+plan %s + iptables-restore %s = %s\n",
			runs, rc.Round(time.Millisecond), sc.Round(time.Millisecond), (rc + sc).Round(time.Millisecond))

		// 4. A periodic full resync with nothing changed: read back,
		// compare, write nothing, check the jumps.
		var written int
		full, err := timeIt(runs, func() error {
			saved, err := x.Save(ctx)
			if err != nil {
				return err
			}
			parsed := proxy.ParseSave(saved)
			ports, _ := proxy.BuildServicePorts(svcs, eps)
			plan := proxy.Render(ports, opts).Plan(proxy.ChainHashes(parsed), batch)
			for _, text := range plan.Restores {
				if err := x.Restore(ctx, text); err != nil {
					return err
				}
			}
			written = plan.Written
			_, err = x.EnsureJumps(parsed)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Printf("full resync, nothing changed (iptables-save + compare + jumps), median of %d: %s (%d chains rewritten)\n", runs, full.Round(time.Millisecond), written)

		// 5. --cleanup at this size.
		start = time.Now()
		j, c, err := x.Cleanup(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("cleanup (%d jump rules, %d chains): %s\n", j, c, time.Since(start).Round(time.Millisecond))
		return nil
	})
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

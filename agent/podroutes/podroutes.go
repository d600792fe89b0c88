// Package podroutes makes pods on other nodes reachable without an overlay:
// for every other Node with a spec.podCIDR it keeps one kernel route
// "<podCIDR> via <node InternalIP>" (what flannel calls host-gw). It works
// when the nodes share an L2 network (lab VMs on one switch, or the netns
// nodes of hack/local-cluster). Routes carry protocol number 77 so the
// package finds exactly its own routes again, replaces stale ones and
// removes them all when it stops.
package podroutes

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/typed"
)

// Proto is the route protocol number that marks our routes.
const Proto = "77"

// resync re-applies the routes even without Node changes, so a route
// deleted by hand comes back.
const resync = 30 * time.Second

// Route is one pod CIDR reached through a gateway.
type Route struct{ Dst, Via string }

// Table is the kernel routing table, or a fake in tests.
type Table interface {
	List() ([]Route, error)
	Replace(Route) error
	Delete(Route) error
}

// Desired returns the routes for nodes other than self, sorted, skipping
// nodes without a pod CIDR or InternalIP and any CIDR that overlaps self's.
func Desired(nodes []*corev1.Node, self string) []Route {
	var own *net.IPNet
	for _, n := range nodes {
		if n.Name == self && n.Spec.PodCIDR != "" {
			_, own, _ = net.ParseCIDR(n.Spec.PodCIDR)
		}
	}
	var out []Route
	for _, n := range nodes {
		if n.Name == self || n.Spec.PodCIDR == "" {
			continue
		}
		_, dst, err := net.ParseCIDR(n.Spec.PodCIDR)
		if err != nil || (own != nil && (own.Contains(dst.IP) || dst.Contains(own.IP))) {
			continue
		}
		if ip := internalIP(n); ip != "" {
			out = append(out, Route{Dst: dst.String(), Via: ip})
		}
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Dst, b.Dst) })
	return out
}

func internalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// Sync makes t hold exactly want among our routes; a route that cannot be
// added (gateway not on a local network) is reported and the rest still
// applied.
func Sync(t Table, want []Route) error {
	have, err := t.List()
	if err != nil {
		return err
	}
	var errs []string
	for _, r := range have {
		if !slices.Contains(want, r) {
			if err := t.Delete(r); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	for _, r := range want {
		if !slices.Contains(have, r) {
			if err := t.Replace(r); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pod routes: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Run keeps this node's routes in step with the Nodes until ctx ends, then
// removes them.
func Run(ctx context.Context, cs *typed.Clientset, self string, log *slog.Logger) error {
	return RunWith(ctx, cs, self, IPRoute{}, log)
}

// RunWith is Run on a given table.
func RunWith(ctx context.Context, cs *typed.Clientset, self string, t Table, log *slog.Logger) error {
	f := informer.NewFactory(cs.REST, informer.FactoryOptions{Logger: log})
	nodes := f.Nodes()
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if err := nodes.AddEventHandler(informer.Handler{
		AddFunc:    func(runtime.Object) { poke() },
		UpdateFunc: func(old, cur runtime.Object) { poke() },
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		return err
	}
	f.Start(ctx)
	defer f.Wait()
	lister := nodes.Lister()
	var last []Route
	var lastErr string
	tick := time.NewTicker(resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := Sync(t, nil); err != nil {
				log.Warn("removing pod routes", "err", err)
			}
			return nil
		case <-changed:
		case <-tick.C:
		}
		if !nodes.HasSynced() {
			continue
		}
		all, _ := lister.List(labels.Everything())
		want := Desired(all, self)
		err := Sync(t, want)
		switch {
		case err != nil && err.Error() != lastErr:
			log.Warn("some pod routes could not be set", "err", err)
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
		if !slices.Equal(want, last) {
			log.Info("pod routes", "routes", fmt.Sprint(want))
			last = want
		}
	}
}

// IPRoute is the kernel table through iproute2's `ip`.
type IPRoute struct{}

// List returns the routes with our protocol number.
func (IPRoute) List() ([]Route, error) {
	out, err := exec.Command("ip", "-4", "route", "show", "proto", Proto).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ip route show: %v: %s", err, out)
	}
	return parseRoutes(string(out)), nil
}

// parseRoutes reads `ip route show` lines such as
// "10.244.1.0/24 via 10.99.0.11 dev mk8s0".
func parseRoutes(s string) []Route {
	var out []Route
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "via" {
			out = append(out, Route{Dst: f[0], Via: f[2]})
		}
	}
	return out
}

// Replace adds or changes the route to r.Dst.
func (IPRoute) Replace(r Route) error {
	if out, err := exec.Command("ip", "route", "replace", r.Dst, "via", r.Via, "proto", Proto).CombinedOutput(); err != nil {
		return fmt.Errorf("ip route replace %s via %s: %v: %s", r.Dst, r.Via, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Delete removes our route to r.Dst.
func (IPRoute) Delete(r Route) error {
	if out, err := exec.Command("ip", "route", "del", r.Dst, "via", r.Via, "proto", Proto).CombinedOutput(); err != nil {
		return fmt.Errorf("ip route del %s: %v: %s", r.Dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}

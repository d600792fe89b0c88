package podroutes

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

func node(name, cidr, ip string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n.Spec.PodCIDR = cidr
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
	}
	return n
}

func TestDesired(t *testing.T) {
	got := Desired([]*corev1.Node{
		node("self", "10.244.0.0/24", "10.99.0.1"),
		node("b", "10.244.2.0/24", "10.99.0.12"),
		node("a", "10.244.1.0/24", "10.99.0.11"),
		node("no-cidr", "", "10.99.0.13"),
		node("no-ip", "10.244.3.0/24", ""),
		node("overlap", "10.244.0.0/25", "10.99.0.14"),
		node("bad", "nonsense", "10.99.0.15"),
	}, "self")
	want := []Route{{"10.244.1.0/24", "10.99.0.11"}, {"10.244.2.0/24", "10.99.0.12"}}
	if !slices.Equal(got, want) {
		t.Fatalf("Desired = %v, want %v", got, want)
	}
}

// fakeTable is an in-memory Table that can refuse one gateway.
type fakeTable struct {
	routes []Route
	refuse string
}

func (f *fakeTable) List() ([]Route, error) { return slices.Clone(f.routes), nil }
func (f *fakeTable) Replace(r Route) error {
	if r.Via == f.refuse {
		return errors.New("Nexthop has invalid gateway")
	}
	f.routes = slices.DeleteFunc(f.routes, func(x Route) bool { return x.Dst == r.Dst })
	f.routes = append(f.routes, r)
	return nil
}
func (f *fakeTable) Delete(r Route) error {
	f.routes = slices.DeleteFunc(f.routes, func(x Route) bool { return x == r })
	return nil
}

func TestSync(t *testing.T) {
	tb := &fakeTable{routes: []Route{{"10.244.1.0/24", "10.99.0.99"}, {"10.244.9.0/24", "10.99.0.19"}}, refuse: "192.168.7.7"}
	want := []Route{{"10.244.1.0/24", "10.99.0.11"}, {"10.244.2.0/24", "10.99.0.12"}, {"10.244.3.0/24", "192.168.7.7"}}
	err := Sync(tb, want)
	if err == nil {
		t.Fatal("an unreachable gateway was not reported")
	}
	slices.SortFunc(tb.routes, func(a, b Route) int { return cmpRoute(a, b) })
	if fmt.Sprint(tb.routes) != fmt.Sprint(want[:2]) {
		t.Fatalf("routes = %v, want %v (moved gateway replaced, stale removed, the rest applied)", tb.routes, want[:2])
	}
	if err := Sync(tb, nil); err != nil || len(tb.routes) != 0 {
		t.Fatalf("cleanup left %v (%v)", tb.routes, err)
	}
}

func cmpRoute(a, b Route) int {
	if a.Dst < b.Dst {
		return -1
	}
	if a.Dst > b.Dst {
		return 1
	}
	return 0
}

func TestParseRoutes(t *testing.T) {
	got := parseRoutes("10.244.1.0/24 via 10.99.0.11 dev mk8s0 \n10.244.2.0/24 via 10.99.0.12 dev mk8s0 onlink\n\n")
	want := []Route{{"10.244.1.0/24", "10.99.0.11"}, {"10.244.2.0/24", "10.99.0.12"}}
	if !slices.Equal(got, want) {
		t.Fatalf("parseRoutes = %v", got)
	}
}

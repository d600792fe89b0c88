package nodeipam_test

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/internal/testenv"
	"github.com/minik8s/minik8s/controllers/nodeipam"
)

func startIPAM(t *testing.T, e *testenv.Env, cluster string, mask int) (stop func()) {
	t.Helper()
	_, cidr, err := net.ParseCIDR(cluster)
	if err != nil {
		t.Fatal(err)
	}
	cs := e.Clientset("nodeipam")
	f := e.Factory(cs)
	c, err := nodeipam.New(f, cs, e.Recorder(cs, nodeipam.Name), nodeipam.Config{
		ClusterCIDR: cidr, NodeMaskSize: mask, Options: controllers.Options{Logger: testenv.Logger(nodeipam.Name)}})
	if err != nil {
		t.Fatal(err)
	}
	return e.Run(f, func(ctx context.Context) { _ = c.Run(ctx, 1) })
}

func createNode(t *testing.T, e *testenv.Env, name, podCIDR string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if podCIDR != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDR, []string{podCIDR}
	}
	if _, err := e.CS.Nodes.Create(e.Ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func podCIDRs(t *testing.T, e *testenv.Env) map[string]string {
	t.Helper()
	l, err := e.CS.Nodes.List(e.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range l.Items {
		out[n.Name] = n.Spec.PodCIDR
	}
	return out
}

// TestNodesGetDistinctCIDRs: a node that brought its own range keeps it,
// six nodes created at once each get a different free range of the
// cluster CIDR (podCIDRs mirrors podCIDR), and a restarted controller
// neither moves nor reuses ranges.
func TestNodesGetDistinctCIDRs(t *testing.T) {
	e := testenv.Start(t)
	createNode(t, e, "own", "10.244.0.0/24")
	stop := startIPAM(t, e, "10.244.0.0/16", 24)
	for i := range 6 {
		createNode(t, e, fmt.Sprintf("n%d", i), "")
	}
	testenv.Eventually(t, "every node has a pod CIDR", func() (bool, error) {
		for _, c := range podCIDRs(t, e) {
			if c == "" {
				return false, nil
			}
		}
		return true, nil
	})
	got := podCIDRs(t, e)
	if got["own"] != "10.244.0.0/24" {
		t.Fatalf("the node's own CIDR was changed: %v", got)
	}
	var all []string
	for _, c := range got {
		all = append(all, c)
	}
	sort.Strings(all)
	want := "10.244.0.0/24 10.244.1.0/24 10.244.2.0/24 10.244.3.0/24 10.244.4.0/24 10.244.5.0/24 10.244.6.0/24"
	if strings.Join(all, " ") != want {
		t.Fatalf("CIDRs = %v, want %s", all, want)
	}
	n, err := e.CS.Nodes.Get(e.Ctx, "n0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
		t.Fatalf("podCIDRs %v does not mirror podCIDR %s", n.Spec.PodCIDRs, n.Spec.PodCIDR)
	}

	// Restart: a deleted node's range is free again, the others stay.
	stop()
	if err := e.CS.Nodes.Delete(e.Ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	freed := got["n2"]
	startIPAM(t, e, "10.244.0.0/16", 24)
	createNode(t, e, "late", "")
	testenv.Eventually(t, "the new node reuses the freed range", func() (bool, error) {
		return podCIDRs(t, e)["late"] == freed, nil
	})
	for name, c := range podCIDRs(t, e) {
		if name != "late" && c != got[name] {
			t.Fatalf("node %s moved from %s to %s", name, got[name], c)
		}
	}
}

// TestExhaustedRangeLeavesNodeWithout: a /23 holds two /24s; the third
// node gets none and a CIDRNotAvailable event says why.
func TestExhaustedRangeLeavesNodeWithout(t *testing.T) {
	e := testenv.Start(t)
	startIPAM(t, e, "10.250.0.0/23", 24)
	for _, n := range []string{"a", "b"} {
		createNode(t, e, n, "")
	}
	testenv.Eventually(t, "two nodes allocated", func() (bool, error) {
		got := podCIDRs(t, e)
		return got["a"] != "" && got["b"] != "", nil
	})
	createNode(t, e, "c", "")
	testenv.Eventually(t, "a CIDRNotAvailable event for c", func() (bool, error) {
		l, err := e.CS.Events.Namespace("default").List(e.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range l.Items {
			if ev.Reason == "CIDRNotAvailable" && ev.InvolvedObject.Name == "c" {
				return true, nil
			}
		}
		return false, nil
	})
	if c := podCIDRs(t, e)["c"]; c != "" {
		t.Fatalf("c got %s from an exhausted range", c)
	}
}

func TestBadConfig(t *testing.T) {
	_, v6, _ := net.ParseCIDR("fd00::/64")
	_, v4, _ := net.ParseCIDR("10.0.0.0/16")
	for _, tc := range []struct {
		cidr *net.IPNet
		mask int
		want string
	}{
		{nil, 24, "--cluster-cidr is required"},
		{v6, 120, "only IPv4"},
		{v4, 8, "must be between 16"},
	} {
		_, err := nodeipam.New(nil, nil, nil, nodeipam.Config{ClusterCIDR: tc.cidr, NodeMaskSize: tc.mask})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v /%d: err = %v, want %q", tc.cidr, tc.mask, err, tc.want)
		}
	}
}

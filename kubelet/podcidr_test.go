package kubelet

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/typed"
)

// TestAwaitPodCIDR: a node without --pod-cidr creates its bare Node (with
// its taints) and returns the range once someone (nodeipam) sets it.
func TestAwaitPodCIDR(t *testing.T) {
	s := apiservertest.Start(t)
	cs := testClientset(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	taint := corev1.Taint{Key: "lab", Value: "1", Effect: corev1.TaintEffectNoSchedule}
	got := make(chan string, 1)
	go func() {
		cidr, err := AwaitPodCIDR(ctx, cs, "n1", []corev1.Taint{taint}, testLog())
		if err != nil {
			t.Error(err)
		}
		got <- cidr
	}()
	var n *corev1.Node
	for n == nil || n.Name == "" {
		var err error
		if n, err = cs.Nodes.Get(ctx, "n1", metav1.GetOptions{}); err != nil {
			n = nil
			select {
			case <-ctx.Done():
				t.Fatal("the bare Node never appeared")
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	if len(n.Spec.Taints) != 1 || n.Spec.Taints[0] != taint || n.Labels["kubernetes.io/hostname"] != "n1" {
		t.Fatalf("bare node = %+v", n)
	}
	select {
	case c := <-got:
		t.Fatalf("returned %q before any CIDR was assigned", c)
	case <-time.After(700 * time.Millisecond):
	}
	if _, err := cs.Nodes.Patch(ctx, "n1", types.MergePatchType,
		[]byte(`{"spec":{"podCIDR":"10.244.7.0/24","podCIDRs":["10.244.7.0/24"]}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c != "10.244.7.0/24" {
			t.Fatalf("got %q", c)
		}
	case <-ctx.Done():
		t.Fatal("AwaitPodCIDR did not return after the CIDR was set")
	}
}

// TestAwaitPodCIDRRefusedToken: a token the API server refuses ends the
// wait with an error that says so; retrying would never succeed.
func TestAwaitPodCIDRRefusedToken(t *testing.T) {
	s := apiservertest.Start(t)
	cfg := s.RESTConfig(t)
	cfg.BearerToken = "not-a-token"
	cs, err := typed.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = AwaitPodCIDR(ctx, cs, "n1", nil, testLog())
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "refused this node's credentials") {
		t.Fatalf("AwaitPodCIDR with a bad token: %v (context: %v), want an error about the credentials before the deadline", err, ctx.Err())
	}
}

package nodeipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/controllers"
	"github.com/minik8s/minik8s/controllers/events"
)

// Name is the controller's name in logs, metrics and events.
const Name = "node-ipam-controller"

// DefaultNodeMaskSize is Kubernetes' default IPv4 node CIDR size.
const DefaultNodeMaskSize = 24

// Config says which range to carve.
type Config struct {
	// ClusterCIDR is the range every pod CIDR comes from, e.g. 10.244.0.0/16.
	ClusterCIDR *net.IPNet
	// NodeMaskSize is the prefix length of each node's CIDR; 0 means 24.
	NodeMaskSize int
	controllers.Options
}

// Controller assigns pod CIDRs to Nodes that have none.
type Controller struct {
	cs       *typed.Clientset
	nodes    informer.Lister[*corev1.Node]
	recorder events.Recorder
	ctrl     *controllers.Controller
	log      *slog.Logger
	cidrs    *cidrSet

	// assigned remembers what this controller wrote but its cache may not
	// show yet, so two nodes reconciled back to back never get the same
	// range. Entries leave once the cache has the node with that CIDR.
	mu       sync.Mutex
	assigned map[string]string // node name -> CIDR
}

// New builds the controller on the factory's Node informer.
func New(f *informer.Factory, cs *typed.Clientset, rec events.Recorder, cfg Config) (*Controller, error) {
	if cfg.ClusterCIDR == nil {
		return nil, errors.New("nodeipam: --cluster-cidr is required to allocate node CIDRs")
	}
	if cfg.NodeMaskSize == 0 {
		cfg.NodeMaskSize = DefaultNodeMaskSize
	}
	set, err := newCIDRSet(cfg.ClusterCIDR, cfg.NodeMaskSize)
	if err != nil {
		return nil, err
	}
	nodeInf := f.Nodes()
	c := &Controller{cs: cs, nodes: nodeInf.Lister(), recorder: rec, cidrs: set, assigned: map[string]string{}}
	ctrl, err := controllers.New(Name, c.reconcile, cfg.Options, nodeInf)
	if err != nil {
		return nil, err
	}
	c.ctrl, c.log = ctrl, ctrl.Logger()
	if err := nodeInf.AddEventHandler(ctrl.Handler()); err != nil {
		return nil, err
	}
	return c, nil
}

// Run reconciles until ctx ends. One worker: allocation is a decision over
// all nodes at once, so it is serialized rather than locked.
func (c *Controller) Run(ctx context.Context, _ int) error { return c.ctrl.Run(ctx, 1) }

// reconcile gives node key a pod CIDR if it has none.
func (c *Controller) reconcile(ctx context.Context, key string) (controllers.Result, error) {
	node, err := c.nodes.Get("", key)
	if apierrors.IsNotFound(err) {
		// Gone: its range is free again once nobody holds it.
		c.mu.Lock()
		delete(c.assigned, key)
		c.mu.Unlock()
		return controllers.Result{}, nil
	}
	if err != nil {
		return controllers.Result{}, err
	}
	if node.Spec.PodCIDR != "" {
		c.mu.Lock()
		if c.assigned[key] == node.Spec.PodCIDR {
			delete(c.assigned, key)
		}
		c.mu.Unlock()
		return controllers.Result{}, nil
	}
	cidr, ok := c.pick(key)
	if !ok {
		c.recorder.Eventf(node, corev1.EventTypeWarning, "CIDRNotAvailable",
			"Node %s: no pod CIDR left in the cluster range (%s, /%d per node)", key, c.cidrs.cluster, c.cidrs.maskSize)
		return controllers.Result{}, nil
	}
	// The resourceVersion makes the write conditional: if someone set a
	// CIDR meanwhile, the conflict brings us back with the fresh node.
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": node.ResourceVersion},
		"spec":     map[string]any{"podCIDR": cidr, "podCIDRs": []string{cidr}},
	})
	c.mu.Lock()
	c.assigned[key] = cidr
	c.mu.Unlock()
	if _, err := c.cs.Nodes.Patch(ctx, key, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		c.mu.Lock()
		delete(c.assigned, key)
		c.mu.Unlock()
		if apierrors.IsNotFound(err) {
			return controllers.Result{}, nil
		}
		return controllers.Result{}, fmt.Errorf("node %s: set podCIDR %s: %w", key, cidr, err)
	}
	c.log.Info("assigned pod CIDR", "node", key, "podCIDR", cidr)
	c.recorder.Eventf(node, corev1.EventTypeNormal, "CIDRAssigned", "Node %s gets pod CIDR %s", key, cidr)
	return controllers.Result{}, nil
}

// pick returns the lowest range no node holds or is being given.
func (c *Controller) pick(node string) (string, bool) {
	used := map[string]bool{}
	nodes, _ := c.nodes.List(labels.Everything())
	for _, n := range nodes {
		for _, cidr := range n.Spec.PodCIDRs {
			used[cidr] = true
		}
		if n.Spec.PodCIDR != "" {
			used[n.Spec.PodCIDR] = true
		}
	}
	c.mu.Lock()
	for name, cidr := range c.assigned {
		if name != node {
			used[cidr] = true
		}
	}
	c.mu.Unlock()
	return c.cidrs.firstFree(used)
}

// cidrSet enumerates the node-sized subnets of a cluster range.
type cidrSet struct {
	cluster  *net.IPNet
	maskSize int
	count    int
}

func newCIDRSet(cluster *net.IPNet, maskSize int) (*cidrSet, error) {
	ones, bits := cluster.Mask.Size()
	if bits != 32 {
		return nil, fmt.Errorf("nodeipam: --cluster-cidr %s: only IPv4 is supported", cluster)
	}
	if maskSize < ones || maskSize > 30 {
		return nil, fmt.Errorf("nodeipam: --node-cidr-mask-size %d must be between %d (the cluster prefix) and 30", maskSize, ones)
	}
	if maskSize-ones > 16 {
		return nil, fmt.Errorf("nodeipam: --cluster-cidr %s with /%d per node is more than 65536 node ranges", cluster, maskSize)
	}
	return &cidrSet{cluster: cluster, maskSize: maskSize, count: 1 << (maskSize - ones)}, nil
}

// subnet returns the i-th node range.
func (s *cidrSet) subnet(i int) string {
	base := new(big.Int).SetBytes(s.cluster.IP.To4())
	base.Add(base, new(big.Int).Lsh(big.NewInt(int64(i)), uint(32-s.maskSize)))
	ip := make(net.IP, 4)
	base.FillBytes(ip)
	return fmt.Sprintf("%s/%d", ip, s.maskSize)
}

func (s *cidrSet) firstFree(used map[string]bool) (string, bool) {
	for i := range s.count {
		if sub := s.subnet(i); !used[sub] {
			return sub, true
		}
	}
	return "", false
}

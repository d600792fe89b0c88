package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/typed"
)

// AwaitPodCIDR is for a node started without --pod-cidr: it makes sure the
// Node object exists (a bare one, with the hostname label and the taints it
// registers with; full registration fills the rest later) and waits until
// the controller-manager's nodeipam controller gives it spec.podCIDR. The
// CNI bridge cannot be configured before that, so the runtime waits too.
func AwaitPodCIDR(ctx context.Context, cs *typed.Clientset, nodeName string, taints []corev1.Taint, log *slog.Logger) (string, error) {
	bare := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{"kubernetes.io/hostname": nodeName}},
		Spec:       corev1.NodeSpec{Taints: taints},
	}
	warned, apiWarned := time.Now(), time.Time{}
	for {
		n, err := cs.Nodes.Get(ctx, nodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			n, err = cs.Nodes.Create(ctx, bare, metav1.CreateOptions{})
		}
		switch {
		case err == nil && n.Spec.PodCIDR != "":
			log.Info("pod CIDR assigned", "podCIDR", n.Spec.PodCIDR)
			return n.Spec.PodCIDR, nil
		case apierrors.IsUnauthorized(err):
			// Waiting does not fix a refused credential.
			return "", fmt.Errorf("node %s: the API server refused this node's credentials (token wrong or deleted?): %w", nodeName, err)
		case apierrors.IsForbidden(err):
			// The credentials are known but may not read or create Nodes.
			return "", fmt.Errorf("node %s: the API server does not allow this node's identity to read or create its Node: %w", nodeName, err)
		case err != nil && !apierrors.IsAlreadyExists(err):
			// Logged every 10 s, not every try: an API server that is
			// down for a minute should not flood the log.
			if time.Since(apiWarned) > 10*time.Second {
				apiWarned = time.Now()
				log.Warn("waiting for the API server", "err", err)
			}
		case time.Since(warned) > 15*time.Second:
			warned = time.Now()
			log.Warn("still no spec.podCIDR on this Node: is the controller-manager running with --allocate-node-cidrs, or give --pod-cidr", "node", nodeName)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("node %s: waiting for a pod CIDR: %w", nodeName, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

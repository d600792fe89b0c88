package plugins

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/scheduler/framework"
)

// BindingClient POSTs a Binding to pods/{name}/binding; an all-namespaces
// *typed.PodClient (Clientset.Pods) is one.
type BindingClient interface {
	Bind(ctx context.Context, b *corev1.Binding, opts metav1.CreateOptions) error
}

// DefaultBinder binds through the API server's pods/binding subresource.
// The binding carries the pod's uid, so a pod deleted and re-created under
// the same name is never bound by mistake.
type DefaultBinder struct {
	Client BindingClient
}

var _ framework.BindPlugin = DefaultBinder{}

// Name implements framework.Plugin.
func (DefaultBinder) Name() string { return DefaultBinderName }

// Bind implements framework.BindPlugin.
func (b DefaultBinder) Bind(ctx context.Context, _ *framework.CycleState, pod *corev1.Pod, nodeName string) *framework.Status {
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: nodeName},
	}
	if err := b.Client.Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		return framework.AsStatus(fmt.Errorf("bind pod %s/%s to node %s: %w", pod.Namespace, pod.Name, nodeName, err)).WithPlugin(DefaultBinderName)
	}
	return nil
}

// DefaultWeights are kube-scheduler's default score weights for the
// plugins we share, and 2 for OwnerSpread (as for its default spreading).
func DefaultWeights() map[string]int64 {
	return map[string]int64{
		NodeResourcesFitName:   1,
		BalancedAllocationName: 1,
		NodeAffinityName:       2,
		TaintTolerationName:    3,
		OwnerSpreadName:        2,
	}
}

// Default returns the default plugins in kube-scheduler's filter order,
// binding through client.
func Default(client BindingClient) []framework.Plugin {
	return []framework.Plugin{
		NodeUnschedulable{},
		NodeName{},
		TaintToleration{},
		NodeAffinity{},
		NodePorts{},
		NodeResourcesFit{},
		InterPodAffinity{},
		BalancedAllocation{},
		OwnerSpread{},
		DefaultBinder{Client: client},
	}
}

// DefaultConfig is the framework configuration of the default profile.
func DefaultConfig(client BindingClient, parallelism int) framework.Config {
	return framework.Config{Plugins: Default(client), Weights: DefaultWeights(), Parallelism: parallelism}
}

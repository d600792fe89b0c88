package typed

import (
	"context"
	"fmt"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	autoscalingv1 "github.com/minik8s/minik8s/api/autoscaling/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/client/rest"
)

// PodClient is the pods client plus the pods/binding subresource.
type PodClient struct {
	*Client[*corev1.Pod, *corev1.PodList]
}

// Namespace returns a PodClient scoped to ns.
func (c *PodClient) Namespace(ns string) *PodClient {
	return &PodClient{c.Client.Namespace(ns)}
}

// Bind assigns the pod named b.Name to the node in b.Target by POSTing the
// Binding to pods/{name}/binding, as the scheduler does. The namespace is
// the client's, or b's own for an all-namespaces client.
func (c *PodClient) Bind(ctx context.Context, b *corev1.Binding, opts metav1.CreateOptions) error {
	if c.err != nil {
		return c.err
	}
	if b == nil {
		return fmt.Errorf("bind pod: nil Binding")
	}
	ns := c.objectNamespace(b)
	return c.request(http.MethodPost, ns).Name(b.Name).SubResource("binding").
		Body(b).Params(rest.CreateParams(opts)).Do(ctx).Error()
}

// ScalableClient is a client for a resource with a scale subresource
// (deployments, replicasets).
type ScalableClient[T runtime.Object, L runtime.Object] struct {
	*Client[T, L]
}

// Namespace returns a ScalableClient scoped to ns.
func (c *ScalableClient[T, L]) Namespace(ns string) *ScalableClient[T, L] {
	return &ScalableClient[T, L]{c.Client.Namespace(ns)}
}

// GetScale reads the object's autoscaling/v1 Scale.
func (c *ScalableClient[T, L]) GetScale(ctx context.Context, name string, opts metav1.GetOptions) (*autoscalingv1.Scale, error) {
	out := &autoscalingv1.Scale{}
	if c.err != nil {
		return out, c.err
	}
	err := c.request(http.MethodGet, c.ns).Name(name).SubResource("scale").
		Params(rest.GetParams(opts)).Do(ctx).Into(out)
	return out, err
}

// UpdateScale sets spec.replicas through the scale subresource; a
// resourceVersion in scale makes it a compare-and-swap.
func (c *ScalableClient[T, L]) UpdateScale(ctx context.Context, name string, scale *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error) {
	out := &autoscalingv1.Scale{}
	if c.err != nil {
		return out, c.err
	}
	if scale == nil {
		return out, fmt.Errorf("update scale of %s %s: nil Scale", c.res, name)
	}
	ns := c.ns
	if ns == "" {
		ns = scale.Namespace
	}
	err := c.request(http.MethodPut, ns).Name(name).SubResource("scale").
		Body(scale).Params(rest.UpdateParams(opts)).Do(ctx).Into(out)
	return out, err
}

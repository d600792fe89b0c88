package typed

import (
	"errors"
	"fmt"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/api/scheme"
	"github.com/minik8s/minik8s/client/rest"
)

// The resources minik8s serves, for building clients and informers.
var (
	NamespacesResource  = Resource{Version: "v1", Resource: "namespaces"}
	NodesResource       = Resource{Version: "v1", Resource: "nodes"}
	PodsResource        = Resource{Version: "v1", Resource: "pods", Namespaced: true}
	ServicesResource    = Resource{Version: "v1", Resource: "services", Namespaced: true}
	EndpointsResource   = Resource{Version: "v1", Resource: "endpoints", Namespaced: true}
	ConfigMapsResource  = Resource{Version: "v1", Resource: "configmaps", Namespaced: true}
	SecretsResource     = Resource{Version: "v1", Resource: "secrets", Namespaced: true}
	EventsResource      = Resource{Version: "v1", Resource: "events", Namespaced: true}
	ReplicaSetsResource = Resource{Group: "apps", Version: "v1", Resource: "replicasets", Namespaced: true}
	DeploymentsResource = Resource{Group: "apps", Version: "v1", Resource: "deployments", Namespaced: true}
	LeasesResource      = Resource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases", Namespaced: true}
)

// Clientset holds one client per resource, all sharing one REST client.
// The clients are scoped to all namespaces; call .Namespace(ns) on them:
//
//	cs.Pods.Namespace("default").Get(ctx, "web", metav1.GetOptions{})
type Clientset struct {
	REST *rest.Client

	Namespaces  *Client[*corev1.Namespace, *corev1.NamespaceList]
	Nodes       *Client[*corev1.Node, *corev1.NodeList]
	Pods        *PodClient
	Services    *Client[*corev1.Service, *corev1.ServiceList]
	Endpoints   *Client[*corev1.Endpoints, *corev1.EndpointsList]
	ConfigMaps  *Client[*corev1.ConfigMap, *corev1.ConfigMapList]
	Secrets     *Client[*corev1.Secret, *corev1.SecretList]
	Events      *Client[*corev1.Event, *corev1.EventList]
	ReplicaSets *ScalableClient[*appsv1.ReplicaSet, *appsv1.ReplicaSetList]
	Deployments *ScalableClient[*appsv1.Deployment, *appsv1.DeploymentList]
	Leases      *Client[*coordinationv1.Lease, *coordinationv1.LeaseList]
}

// NewClientset builds the clients over an existing REST client.
func NewClientset(c *rest.Client) (*Clientset, error) {
	if c == nil {
		return nil, errors.New("clientset: nil rest client")
	}
	return &Clientset{
		REST:        c,
		Namespaces:  New[*corev1.Namespace, *corev1.NamespaceList](c, NamespacesResource),
		Nodes:       New[*corev1.Node, *corev1.NodeList](c, NodesResource),
		Pods:        &PodClient{New[*corev1.Pod, *corev1.PodList](c, PodsResource)},
		Services:    New[*corev1.Service, *corev1.ServiceList](c, ServicesResource),
		Endpoints:   New[*corev1.Endpoints, *corev1.EndpointsList](c, EndpointsResource),
		ConfigMaps:  New[*corev1.ConfigMap, *corev1.ConfigMapList](c, ConfigMapsResource),
		Secrets:     New[*corev1.Secret, *corev1.SecretList](c, SecretsResource),
		Events:      New[*corev1.Event, *corev1.EventList](c, EventsResource),
		ReplicaSets: &ScalableClient[*appsv1.ReplicaSet, *appsv1.ReplicaSetList]{New[*appsv1.ReplicaSet, *appsv1.ReplicaSetList](c, ReplicaSetsResource)},
		Deployments: &ScalableClient[*appsv1.Deployment, *appsv1.DeploymentList]{New[*appsv1.Deployment, *appsv1.DeploymentList](c, DeploymentsResource)},
		Leases:      New[*coordinationv1.Lease, *coordinationv1.LeaseList](c, LeasesResource),
	}, nil
}

// NewForConfig builds a REST client for cfg over the minik8s scheme and
// the clientset on top of it.
func NewForConfig(cfg *rest.Config) (*Clientset, error) {
	c, err := rest.New(cfg, scheme.Scheme)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	return NewClientset(c)
}

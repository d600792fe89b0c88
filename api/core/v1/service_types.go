package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Service is a stable virtual IP (and optionally node ports) in front of the
// pods its selector matches.
type Service struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ServiceSpec   `json:"spec,omitempty"`
	Status ServiceStatus `json:"status,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ServiceList is a list of services.
type ServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Service `json:"items"`
}

// ServiceSpec is the desired state of a service.
type ServiceSpec struct {
	// Ports merge by port number in strategic merge patches.
	Ports    []ServicePort     `json:"ports,omitempty" patchStrategy:"merge" patchMergeKey:"port"`
	Selector map[string]string `json:"selector,omitempty"`

	// ClusterIP is allocated by the API server unless set; "None" makes a
	// headless service.
	ClusterIP  string      `json:"clusterIP,omitempty"`
	ClusterIPs []string    `json:"clusterIPs,omitempty"`
	Type       ServiceType `json:"type,omitempty"`

	ExternalIPs           []string                     `json:"externalIPs,omitempty"`
	SessionAffinity       ServiceAffinity              `json:"sessionAffinity,omitempty"`
	LoadBalancerIP        string                       `json:"loadBalancerIP,omitempty"`
	ExternalName          string                       `json:"externalName,omitempty"`
	ExternalTrafficPolicy ServiceExternalTrafficPolicy `json:"externalTrafficPolicy,omitempty"`
	HealthCheckNodePort   int32                        `json:"healthCheckNodePort,omitempty"`

	// PublishNotReadyAddresses puts not-ready pods into the ready addresses
	// of Endpoints (used by stateful peers discovering each other).
	PublishNotReadyAddresses bool                   `json:"publishNotReadyAddresses,omitempty"`
	SessionAffinityConfig    *SessionAffinityConfig `json:"sessionAffinityConfig,omitempty"`

	IPFamilies            []IPFamily                    `json:"ipFamilies,omitempty"`
	IPFamilyPolicy        *IPFamilyPolicy               `json:"ipFamilyPolicy,omitempty"`
	InternalTrafficPolicy *ServiceInternalTrafficPolicy `json:"internalTrafficPolicy,omitempty"`
}

// ServicePort is one port a service exposes.
type ServicePort struct {
	Name        string   `json:"name,omitempty"`
	Protocol    Protocol `json:"protocol,omitempty"`
	AppProtocol *string  `json:"appProtocol,omitempty"`
	Port        int32    `json:"port"`
	// TargetPort is a number or the name of a container port on the
	// backing pods; it defaults to Port.
	TargetPort intstr.IntOrString `json:"targetPort,omitempty"`
	NodePort   int32              `json:"nodePort,omitempty"`
}

// ServiceStatus is the observed state of a service.
type ServiceStatus struct {
	LoadBalancer LoadBalancerStatus `json:"loadBalancer,omitempty"`
	Conditions   []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// LoadBalancerStatus lists the ingress points of a load balancer.
type LoadBalancerStatus struct {
	Ingress []LoadBalancerIngress `json:"ingress,omitempty"`
}

// LoadBalancerIngress is one ingress point.
type LoadBalancerIngress struct {
	IP       string `json:"ip,omitempty"`
	Hostname string `json:"hostname,omitempty"`
}

// SessionAffinityConfig tunes session affinity.
type SessionAffinityConfig struct {
	ClientIP *ClientIPConfig `json:"clientIP,omitempty"`
}

// ClientIPConfig tunes ClientIP affinity.
type ClientIPConfig struct {
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"`
}

// DefaultClientIPServiceAffinitySeconds is the default ClientIP affinity
// timeout (3 hours), as in Kubernetes.
const DefaultClientIPServiceAffinitySeconds int32 = 10800

// ClusterIPNone marks a headless service.
const ClusterIPNone = "None"

// ServiceType says how a service is exposed.
type ServiceType string

// Service types.
const (
	ServiceTypeClusterIP    ServiceType = "ClusterIP"
	ServiceTypeNodePort     ServiceType = "NodePort"
	ServiceTypeLoadBalancer ServiceType = "LoadBalancer"
	ServiceTypeExternalName ServiceType = "ExternalName"
)

// ServiceAffinity is None or ClientIP.
type ServiceAffinity string

// Session affinities.
const (
	ServiceAffinityClientIP ServiceAffinity = "ClientIP"
	ServiceAffinityNone     ServiceAffinity = "None"
)

// ServiceExternalTrafficPolicy routes external traffic cluster-wide or only
// to node-local endpoints.
type ServiceExternalTrafficPolicy string

// External traffic policies.
const (
	ServiceExternalTrafficPolicyCluster ServiceExternalTrafficPolicy = "Cluster"
	ServiceExternalTrafficPolicyLocal   ServiceExternalTrafficPolicy = "Local"
)

// ServiceInternalTrafficPolicy routes in-cluster traffic cluster-wide or
// only to node-local endpoints.
type ServiceInternalTrafficPolicy string

// Internal traffic policies.
const (
	ServiceInternalTrafficPolicyCluster ServiceInternalTrafficPolicy = "Cluster"
	ServiceInternalTrafficPolicyLocal   ServiceInternalTrafficPolicy = "Local"
)

// IPFamily is IPv4 or IPv6.
type IPFamily string

// IP families.
const (
	IPv4Protocol IPFamily = "IPv4"
	IPv6Protocol IPFamily = "IPv6"
)

// IPFamilyPolicy says how many IP families a service gets.
type IPFamilyPolicy string

// IP family policies.
const (
	IPFamilyPolicySingleStack      IPFamilyPolicy = "SingleStack"
	IPFamilyPolicyPreferDualStack  IPFamilyPolicy = "PreferDualStack"
	IPFamilyPolicyRequireDualStack IPFamilyPolicy = "RequireDualStack"
)

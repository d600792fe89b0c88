package validation

import (
	"testing"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValidateService(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *corev1.Service)
		want   []string
	}{
		{name: "valid", mutate: func(s *corev1.Service) {}},
		{name: "valid node port", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.Ports[0].NodePort = 30080
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.10"}
		}},
		{name: "valid headless without ports", mutate: func(s *corev1.Service) { s.Spec.ClusterIP = "None"; s.Spec.Ports = nil }},
		{name: "valid external name", mutate: func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com.", SessionAffinity: corev1.ServiceAffinityNone}
		}},
		{name: "name must be DNS-1035 (no leading digit)", mutate: func(s *corev1.Service) { s.Name = "1web" },
			want: []string{"metadata.name: Invalid value"}},
		{name: "ports required", mutate: func(s *corev1.Service) { s.Spec.Ports = nil },
			want: []string{"spec.ports: Required value"}},
		{name: "port range, protocol, target port", mutate: func(s *corev1.Service) {
			s.Spec.Ports[0] = corev1.ServicePort{Port: 0, Protocol: "HTTP", TargetPort: intstr.FromInt32(70000)}
		}, want: []string{"spec.ports[0].port: Invalid value", "spec.ports[0].protocol: Unsupported value", "spec.ports[0].targetPort: Invalid value"}},
		{name: "names required and unique with several ports", mutate: func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)},
				{Name: "http", Port: 81, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(81)},
				{Port: 82, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(82)},
				{Name: "dup", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)},
			}
		}, want: []string{"spec.ports[1].name: Duplicate value", "spec.ports[2].name: Required value", "spec.ports[3]: Duplicate value"}},
		{name: "same port number on two protocols is fine", mutate: func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
			}
		}},
		{name: "one node port for two protocols is fine", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53), NodePort: 30053},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53), NodePort: 30053},
			}
		}},
		{name: "one node port twice for one protocol", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "a", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80), NodePort: 30080},
				{Name: "b", Port: 81, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(81), NodePort: 30080},
				{Name: "c", Port: 82, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(82), NodePort: 30080},
			}
		}, want: []string{"spec.ports[2].nodePort: Duplicate value"}},
		{name: "type enum", mutate: func(s *corev1.Service) { s.Spec.Type = "Ingress" },
			want: []string{"spec.type: Unsupported value"}},
		{name: "node port on cluster IP service", mutate: func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 },
			want: []string{"spec.ports[0].nodePort: Forbidden"}},
		{name: "cluster IP must be an IP", mutate: func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0" },
			want: []string{"spec.clusterIP: Invalid value"}},
		{name: "clusterIPs must agree with clusterIP", mutate: func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.11"}
		}, want: []string{"spec.clusterIPs: Invalid value"}},
		{name: "headless node port", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.ClusterIP = "None"
		}, want: []string{"spec.clusterIP: Invalid value"}},
		{name: "external name needs a name and no cluster IP", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ClusterIP = "10.96.0.1"
		}, want: []string{"spec.externalName: Required value", "spec.clusterIP: Forbidden"}},
		{name: "external traffic policy only for node ports", mutate: func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}, want: []string{"spec.externalTrafficPolicy: Invalid value"}},
		{name: "session affinity", mutate: func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(0))}}
		}, want: []string{"spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value"}},
		{name: "selector labels", mutate: func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "bad value"} },
			want: []string{"spec.selector: Invalid value"}},
		{name: "external IPs", mutate: func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"example.com"} },
			want: []string{"spec.externalIPs[0]: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validService()
			tt.mutate(s)
			expectErrors(t, ValidateCreate(s), tt.want...)
		})
	}
}

func TestValidateServiceUpdate(t *testing.T) {
	tests := []struct {
		name   string
		oldIP  string
		mutate func(s *corev1.Service)
		want   []string
	}{
		{name: "unallocated to allocated", oldIP: "", mutate: func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.20" }},
		{name: "empty in update keeps allocation", oldIP: "10.96.0.10", mutate: func(s *corev1.Service) { s.Spec.ClusterIP = "" }},
		{name: "cluster IP immutable", oldIP: "10.96.0.10", mutate: func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.11" },
			want: []string{"spec.clusterIP: Invalid value"}},
		{name: "switch to node port", oldIP: "10.96.0.10", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}},
		{name: "switch to external name drops cluster IP", oldIP: "10.96.0.10", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com"
			s.Spec.ClusterIP = ""
			s.Spec.InternalTrafficPolicy = nil
		}},
		{name: "namespace immutable", oldIP: "", mutate: func(s *corev1.Service) { s.Namespace = "other" },
			want: []string{"metadata.namespace: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := stored(validService())
			old.Spec.ClusterIP = tt.oldIP
			s := old.DeepCopy()
			tt.mutate(s)
			expectErrors(t, ValidateUpdate(s, old), tt.want...)
		})
	}
}

func TestValidateServiceStatusUpdate(t *testing.T) {
	old := stored(validService())
	s := old.DeepCopy()
	s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}, {IP: "nope"}}
	expectErrors(t, ValidateStatusUpdate(s, old), "status.loadBalancer.ingress[1].ip: Invalid value")
}

func TestValidateEndpoints(t *testing.T) {
	node := "node-1"
	valid := func() *corev1.Endpoints {
		return &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Subsets: []corev1.EndpointSubset{{
				Addresses:         []corev1.EndpointAddress{{IP: "10.244.1.5", NodeName: &node, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-1"}}},
				NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.244.2.5"}},
				Ports:             []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
			}},
		}
	}
	tests := []struct {
		name   string
		mutate func(e *corev1.Endpoints)
		want   []string
	}{
		{name: "valid", mutate: func(e *corev1.Endpoints) {}},
		{name: "no subsets is valid (no ready pods)", mutate: func(e *corev1.Endpoints) { e.Subsets = nil }},
		{name: "bad address and port", mutate: func(e *corev1.Endpoints) {
			e.Subsets[0].Addresses[0].IP = "pod-1"
			e.Subsets[0].Ports = append(e.Subsets[0].Ports, corev1.EndpointPort{Port: 0, Protocol: corev1.ProtocolTCP})
		}, want: []string{"subsets[0].addresses[0].ip: Invalid value", "subsets[0].ports[1].name: Required value", "subsets[0].ports[1].port: Invalid value"}},
		{name: "subset without addresses", mutate: func(e *corev1.Endpoints) {
			e.Subsets[0].Addresses, e.Subsets[0].NotReadyAddresses = nil, nil
		}, want: []string{"subsets[0]: Required value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid()
			tt.mutate(e)
			expectErrors(t, ValidateCreate(e), tt.want...)
			old := stored(valid())
			upd := e.DeepCopy()
			upd.ResourceVersion, upd.UID = old.ResourceVersion, old.UID
			expectErrors(t, ValidateUpdate(upd, old), tt.want...)
		})
	}
}

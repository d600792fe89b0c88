package proxy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// ServicePort is one port of one Service as the proxy programs it: the
// addresses it is reachable on and its ready endpoints.
type ServicePort struct {
	Namespace string
	Name      string
	// PortName is the service port's name ("" for a single unnamed port).
	PortName string
	// Protocol is TCP, UDP or SCTP.
	Protocol  corev1.Protocol
	ClusterIP netip.Addr
	Port      int32
	// NodePort is the node port (0 = none): set for type NodePort and
	// LoadBalancer, which minik8s serves like NodePort.
	NodePort int32
	// ExternalIPs are extra addresses that DNAT like the cluster IP.
	ExternalIPs []netip.Addr
	// AffinitySeconds > 0 means sessionAffinity ClientIP with that timeout.
	AffinitySeconds int32
	// Endpoints are the ready backends, sorted by address then port.
	Endpoints []Endpoint
}

// Endpoint is one ready backend of a service port.
type Endpoint struct {
	IP   netip.Addr
	Port int32
}

// String is "ip:port".
func (e Endpoint) String() string {
	return netip.AddrPortFrom(e.IP, uint16(e.Port)).String()
}

// String is the service port's name as kube-proxy spells it:
// "namespace/name:port", or "namespace/name" for an unnamed port.
func (sp *ServicePort) String() string {
	if sp.PortName == "" {
		return sp.Namespace + "/" + sp.Name
	}
	return sp.Namespace + "/" + sp.Name + ":" + sp.PortName
}

// ServiceKey is "namespace/name", for logs and errors.
func (sp *ServicePort) ServiceKey() string { return sp.Namespace + "/" + sp.Name }

// proto is the protocol in iptables' spelling.
func (sp *ServicePort) proto() string { return strings.ToLower(string(sp.Protocol)) }

// ChainName is the port's KUBE-SVC chain.
func (sp *ServicePort) ChainName() string { return ServiceChainName(sp.String(), sp.proto()) }

// EndpointChain is the KUBE-SEP chain of one of the port's endpoints.
func (sp *ServicePort) EndpointChain(ep Endpoint) string {
	return EndpointChainName(sp.String(), sp.proto(), ep.String())
}

// BuildServicePorts turns the cached Services and Endpoints into the
// ServicePorts to program, sorted by name and protocol. Services the proxy
// cannot serve (headless, ExternalName, no or non-IPv4 cluster IP) are
// skipped silently or, if they look like a mistake, reported in problems,
// each error naming the service; a bad endpoint address is skipped and
// reported the same way.
func BuildServicePorts(services []*corev1.Service, endpoints []*corev1.Endpoints) (ports []*ServicePort, problems []error) {
	byName := make(map[string]*corev1.Endpoints, len(endpoints))
	for _, ep := range endpoints {
		byName[ep.Namespace+"/"+ep.Name] = ep
	}
	for _, svc := range services {
		key := svc.Namespace + "/" + svc.Name
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			continue // headless or not allocated yet: nothing to proxy
		}
		cip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil || !cip.Is4() {
			problems = append(problems, fmt.Errorf("service %s: cluster IP %q is not an IPv4 address; only IPv4 is proxied", key, svc.Spec.ClusterIP))
			continue
		}
		var ext []netip.Addr
		for _, s := range svc.Spec.ExternalIPs {
			a, err := netip.ParseAddr(s)
			if err != nil || !a.Is4() {
				problems = append(problems, fmt.Errorf("service %s: external IP %q is not an IPv4 address; ignored", key, s))
				continue
			}
			ext = append(ext, a)
		}
		slices.SortFunc(ext, netip.Addr.Compare)
		ext = slices.Compact(ext)
		var affinity int32
		if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
			affinity = corev1.DefaultClientIPServiceAffinitySeconds
			if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
				affinity = *c.ClientIP.TimeoutSeconds
			}
		}
		withNodePorts := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
		for _, p := range svc.Spec.Ports {
			sp := &ServicePort{
				Namespace:       svc.Namespace,
				Name:            svc.Name,
				PortName:        p.Name,
				Protocol:        protocolOrTCP(p.Protocol),
				ClusterIP:       cip,
				Port:            p.Port,
				ExternalIPs:     ext,
				AffinitySeconds: affinity,
			}
			if withNodePorts {
				sp.NodePort = p.NodePort
			}
			var bad []error
			sp.Endpoints, bad = endpointsFor(sp, byName[key])
			problems = append(problems, bad...)
			ports = append(ports, sp)
		}
	}
	slices.SortFunc(ports, func(a, b *ServicePort) int {
		return cmp.Or(cmp.Compare(a.String(), b.String()), cmp.Compare(a.Protocol, b.Protocol))
	})
	return ports, problems
}

func protocolOrTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// endpointsFor collects the ready addresses of eps whose port has the
// service port's name and protocol, deduplicated and sorted.
func endpointsFor(sp *ServicePort, eps *corev1.Endpoints) ([]Endpoint, []error) {
	if eps == nil {
		return nil, nil
	}
	var out []Endpoint
	var problems []error
	for _, ss := range eps.Subsets {
		for _, port := range ss.Ports {
			if port.Name != sp.PortName || protocolOrTCP(port.Protocol) != sp.Protocol {
				continue
			}
			if port.Port <= 0 || port.Port > 65535 {
				problems = append(problems, fmt.Errorf("service %s: endpoint port %d is out of range; ignored", sp, port.Port))
				continue
			}
			for _, a := range ss.Addresses {
				ip, err := netip.ParseAddr(a.IP)
				if err != nil || !ip.Is4() {
					problems = append(problems, fmt.Errorf("service %s: endpoint address %q is not an IPv4 address; ignored", sp, a.IP))
					continue
				}
				out = append(out, Endpoint{IP: ip, Port: port.Port})
			}
		}
	}
	slices.SortFunc(out, func(a, b Endpoint) int {
		return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port))
	})
	return slices.Compact(out), problems
}

// portString formats a port number for a rule.
func portString(p int32) string { return strconv.Itoa(int(p)) }

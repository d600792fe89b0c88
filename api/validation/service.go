package validation

import (
	"fmt"
	"strings"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	supportedServiceTypes = []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName}
	supportedSessionAffinities = []corev1.ServiceAffinity{corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone}
	supportedExternalTraffic   = []corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal}
	supportedInternalTraffic   = []corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}
	supportedIPFamilies        = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	supportedIPFamilyPolicies  = []corev1.IPFamilyPolicy{corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack}
)

// maxClientIPAffinitySeconds is one day, Kubernetes' upper bound.
const maxClientIPAffinitySeconds = 86400

// ValidateService validates a new service. Service names are DNS-1035
// labels (they become DNS names and environment variable prefixes).
// Whether a nodePort lies in the node port range is the allocator's check.
func ValidateService(svc *corev1.Service) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&svc.ObjectMeta, true, apivalidation.NameIsDNS1035Label, field.NewPath("metadata"))
	return append(errs, validateServiceSpec(&svc.Spec, field.NewPath("spec"))...)
}

func isHeadless(spec *corev1.ServiceSpec) bool {
	return spec.ClusterIP == corev1.ClusterIPNone
}

func validateServiceSpec(spec *corev1.ServiceSpec, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case spec.Type == "":
		errs = append(errs, field.Required(specPath.Child("type"), ""))
	case !contains(supportedServiceTypes, spec.Type):
		errs = append(errs, field.NotSupported(specPath.Child("type"), spec.Type, supportedServiceTypes))
	}

	if spec.Type == corev1.ServiceTypeExternalName {
		if spec.ClusterIP != "" {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIP"), "may not be set for ExternalName services"))
		}
		if len(spec.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		// A trailing dot (fully qualified form) is allowed.
		name := strings.TrimSuffix(spec.ExternalName, ".")
		if name == "" {
			errs = append(errs, field.Required(specPath.Child("externalName"), ""))
		} else {
			errs = append(errs, validateDNSSubdomain(name, specPath.Child("externalName"))...)
		}
	} else {
		errs = append(errs, validateClusterIPs(spec, specPath)...)
	}

	portsPath := specPath.Child("ports")
	if len(spec.Ports) == 0 && !isHeadless(spec) && spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(portsPath, ""))
	}
	names := sets.New[string]()
	keys := sets.New[string]()
	// A node port may serve several ports of different protocols (DNS on
	// 30053/TCP and 30053/UDP), not two of the same protocol.
	nodePorts := sets.New[string]()
	for i := range spec.Ports {
		p := &spec.Ports[i]
		idxPath := portsPath.Index(i)
		errs = append(errs, validateServicePort(p, len(spec.Ports) > 1, names, idxPath)...)
		key := fmt.Sprintf("%s/%d", p.Protocol, p.Port)
		if keys.Has(key) {
			errs = append(errs, field.Duplicate(idxPath, key))
		}
		keys.Insert(key)
		if p.NodePort != 0 {
			switch spec.Type {
			case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
				errs = append(errs, validatePortNumber(p.NodePort, idxPath.Child("nodePort"))...)
				key := fmt.Sprintf("%s/%d", p.Protocol, p.NodePort)
				if nodePorts.Has(key) {
					errs = append(errs, field.Duplicate(idxPath.Child("nodePort"), p.NodePort))
				}
				nodePorts.Insert(key)
			default:
				errs = append(errs, field.Forbidden(idxPath.Child("nodePort"),
					fmt.Sprintf("may not be used when `type` is '%s'", spec.Type)))
			}
		}
	}

	if spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabels(spec.Selector, specPath.Child("selector"))...)
	}

	switch {
	case spec.SessionAffinity == "":
		errs = append(errs, field.Required(specPath.Child("sessionAffinity"), ""))
	case !contains(supportedSessionAffinities, spec.SessionAffinity):
		errs = append(errs, field.NotSupported(specPath.Child("sessionAffinity"), spec.SessionAffinity, supportedSessionAffinities))
	}
	cfgPath := specPath.Child("sessionAffinityConfig")
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		if c := spec.SessionAffinityConfig; c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			errs = append(errs, field.Required(cfgPath, "when session affinity type is ClientIP"))
		} else if t := *c.ClientIP.TimeoutSeconds; t <= 0 || t > maxClientIPAffinitySeconds {
			errs = append(errs, field.Invalid(cfgPath.Child("clientIP", "timeoutSeconds"), t,
				fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds)))
		}
	} else if spec.SessionAffinityConfig != nil {
		errs = append(errs, field.Forbidden(cfgPath, fmt.Sprintf("must not be set when session affinity is %s", spec.SessionAffinity)))
	}

	for i, ip := range spec.ExternalIPs {
		errs = append(errs, validateIP(ip, specPath.Child("externalIPs").Index(i))...)
	}
	if spec.LoadBalancerIP != "" {
		if spec.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Forbidden(specPath.Child("loadBalancerIP"), "may only be used when `type` is 'LoadBalancer'"))
		} else {
			errs = append(errs, validateIP(spec.LoadBalancerIP, specPath.Child("loadBalancerIP"))...)
		}
	}

	exposesNodePorts := spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer
	etpPath := specPath.Child("externalTrafficPolicy")
	switch {
	case spec.ExternalTrafficPolicy == "":
		if exposesNodePorts {
			errs = append(errs, field.Required(etpPath, ""))
		}
	case !exposesNodePorts:
		errs = append(errs, field.Invalid(etpPath, spec.ExternalTrafficPolicy, "may only be set when `type` is 'NodePort' or 'LoadBalancer'"))
	case !contains(supportedExternalTraffic, spec.ExternalTrafficPolicy):
		errs = append(errs, field.NotSupported(etpPath, spec.ExternalTrafficPolicy, supportedExternalTraffic))
	}
	if spec.HealthCheckNodePort != 0 {
		if spec.Type != corev1.ServiceTypeLoadBalancer || spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			errs = append(errs, field.Invalid(specPath.Child("healthCheckNodePort"), spec.HealthCheckNodePort,
				"may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
		} else {
			errs = append(errs, validatePortNumber(spec.HealthCheckNodePort, specPath.Child("healthCheckNodePort"))...)
		}
	}
	itpPath := specPath.Child("internalTrafficPolicy")
	if spec.InternalTrafficPolicy == nil {
		if spec.Type != corev1.ServiceTypeExternalName {
			errs = append(errs, field.Required(itpPath, ""))
		}
	} else if !contains(supportedInternalTraffic, *spec.InternalTrafficPolicy) {
		errs = append(errs, field.NotSupported(itpPath, *spec.InternalTrafficPolicy, supportedInternalTraffic))
	}
	for i, f := range spec.IPFamilies {
		if !contains(supportedIPFamilies, f) {
			errs = append(errs, field.NotSupported(specPath.Child("ipFamilies").Index(i), f, supportedIPFamilies))
		}
	}
	if p := spec.IPFamilyPolicy; p != nil && !contains(supportedIPFamilyPolicies, *p) {
		errs = append(errs, field.NotSupported(specPath.Child("ipFamilyPolicy"), *p, supportedIPFamilyPolicies))
	}
	return errs
}

// validateClusterIPs accepts "", "None" or an IP, and clusterIPs whose first
// entry agrees with clusterIP.
func validateClusterIPs(spec *corev1.ServiceSpec, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.ClusterIP != "" && spec.ClusterIP != corev1.ClusterIPNone {
		errs = append(errs, validateIP(spec.ClusterIP, specPath.Child("clusterIP"))...)
	}
	ipsPath := specPath.Child("clusterIPs")
	if len(spec.ClusterIPs) > 0 && spec.ClusterIP != "" && spec.ClusterIPs[0] != spec.ClusterIP {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "first value must match `clusterIP`"))
	}
	if len(spec.ClusterIPs) > 2 {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may only hold up to 2 values"))
	}
	for i, ip := range spec.ClusterIPs {
		if ip == corev1.ClusterIPNone {
			if len(spec.ClusterIPs) > 1 {
				errs = append(errs, field.Invalid(ipsPath.Index(i), ip, "'None' must be the first and only value"))
			}
			continue
		}
		errs = append(errs, validateIP(ip, ipsPath.Index(i))...)
	}
	if isHeadless(spec) && spec.Type != corev1.ServiceTypeClusterIP {
		errs = append(errs, field.Invalid(specPath.Child("clusterIP"), spec.ClusterIP, "may not be set to 'None' for "+string(spec.Type)+" services"))
	}
	return errs
}

func validateServicePort(p *corev1.ServicePort, requireName bool, names sets.Set[string], fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	namePath := fldPath.Child("name")
	if requireName && p.Name == "" {
		errs = append(errs, field.Required(namePath, ""))
	} else if p.Name != "" {
		errs = append(errs, validateDNSLabel(p.Name, namePath)...)
		if names.Has(p.Name) {
			errs = append(errs, field.Duplicate(namePath, p.Name))
		}
		names.Insert(p.Name)
	}
	errs = append(errs, validatePortNumber(p.Port, fldPath.Child("port"))...)
	errs = append(errs, validateProtocol(p.Protocol, fldPath.Child("protocol"))...)
	// targetPort is defaulted to port; an explicit 0 or "" never survives
	// defaulting, so any value here must be a real port or port name.
	if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0 || p.TargetPort.Type == intstr.String && p.TargetPort.StrVal == "" {
		errs = append(errs, field.Required(fldPath.Child("targetPort"), ""))
	} else {
		errs = append(errs, validatePortNumOrName(p.TargetPort, fldPath.Child("targetPort"))...)
	}
	if p.AppProtocol != nil {
		errs = append(errs, metav1validation.ValidateLabelName(*p.AppProtocol, fldPath.Child("appProtocol"))...)
	}
	return errs
}

// ValidateServiceUpdate validates a service update. A clusterIP, once
// allocated, cannot change, except by becoming an ExternalName service
// (which drops it) or by leaving it empty for the API server to carry over;
// an empty old clusterIP may be filled in.
func ValidateServiceUpdate(newSvc, oldSvc *corev1.Service) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(&newSvc.ObjectMeta, &oldSvc.ObjectMeta, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	if newSvc.Spec.Type != corev1.ServiceTypeExternalName && oldSvc.Spec.Type != corev1.ServiceTypeExternalName {
		if oldSvc.Spec.ClusterIP != "" && newSvc.Spec.ClusterIP != "" && newSvc.Spec.ClusterIP != oldSvc.Spec.ClusterIP {
			errs = append(errs, validateImmutable(newSvc.Spec.ClusterIP, oldSvc.Spec.ClusterIP, specPath.Child("clusterIP"))...)
		}
		if len(oldSvc.Spec.ClusterIPs) > 0 && len(newSvc.Spec.ClusterIPs) > 0 && newSvc.Spec.ClusterIPs[0] != oldSvc.Spec.ClusterIPs[0] {
			errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), newSvc.Spec.ClusterIPs[0], "may not change once set"))
		}
	}
	return append(errs, validateServiceSpec(&newSvc.Spec, specPath)...)
}

// ValidateServiceStatusUpdate validates a write to services/status.
func ValidateServiceStatusUpdate(newSvc, oldSvc *corev1.Service) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(&newSvc.ObjectMeta, &oldSvc.ObjectMeta, field.NewPath("metadata"))
	ingPath := field.NewPath("status", "loadBalancer", "ingress")
	for i, ing := range newSvc.Status.LoadBalancer.Ingress {
		p := ingPath.Index(i)
		if ing.IP != "" {
			errs = append(errs, validateIP(ing.IP, p.Child("ip"))...)
		}
		if ing.Hostname != "" {
			errs = append(errs, validateDNSSubdomain(ing.Hostname, p.Child("hostname"))...)
		}
	}
	errs = append(errs, metav1validation.ValidateConditions(newSvc.Status.Conditions, field.NewPath("status", "conditions"))...)
	return errs
}

// ValidateEndpoints validates Endpoints (create).
func ValidateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&ep.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(errs, validateEndpointSubsets(ep.Subsets, field.NewPath("subsets"))...)
}

// ValidateEndpointsUpdate validates an Endpoints update.
func ValidateEndpointsUpdate(newEp, oldEp *corev1.Endpoints) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(&newEp.ObjectMeta, &oldEp.ObjectMeta, field.NewPath("metadata"))
	return append(errs, validateEndpointSubsets(newEp.Subsets, field.NewPath("subsets"))...)
}

func validateEndpointSubsets(subsets []corev1.EndpointSubset, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ss := range subsets {
		idxPath := fldPath.Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(idxPath, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j, a := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(&a, idxPath.Child("addresses").Index(j))...)
		}
		for j, a := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(&a, idxPath.Child("notReadyAddresses").Index(j))...)
		}
		names := sets.New[string]()
		for j, p := range ss.Ports {
			pp := idxPath.Child("ports").Index(j)
			if len(ss.Ports) > 1 && p.Name == "" {
				errs = append(errs, field.Required(pp.Child("name"), ""))
			} else if p.Name != "" {
				errs = append(errs, validateDNSLabel(p.Name, pp.Child("name"))...)
				if names.Has(p.Name) {
					errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
				}
				names.Insert(p.Name)
			}
			errs = append(errs, validatePortNumber(p.Port, pp.Child("port"))...)
			errs = append(errs, validateProtocol(p.Protocol, pp.Child("protocol"))...)
		}
	}
	return errs
}

func validateEndpointAddress(a *corev1.EndpointAddress, fldPath *field.Path) field.ErrorList {
	errs := validateIP(a.IP, fldPath.Child("ip"))
	if a.Hostname != "" {
		errs = append(errs, validateDNSLabel(a.Hostname, fldPath.Child("hostname"))...)
	}
	if a.NodeName != nil {
		errs = append(errs, validateDNSSubdomain(*a.NodeName, fldPath.Child("nodeName"))...)
	}
	return errs
}

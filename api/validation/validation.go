package validation

import (
	"fmt"
	"strings"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	autoscalingv1 "github.com/minik8s/minik8s/api/autoscaling/v1"
	coordinationv1 "github.com/minik8s/minik8s/api/coordination/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateCreate validates a new object of any minik8s kind. Unknown types
// yield an empty list: the caller decides whether that is acceptable.
func ValidateCreate(obj runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Pod:
		return ValidatePod(o)
	case *corev1.Binding:
		return ValidateBinding(o)
	case *corev1.Service:
		return ValidateService(o)
	case *corev1.Endpoints:
		return ValidateEndpoints(o)
	case *corev1.ConfigMap:
		return ValidateConfigMap(o)
	case *corev1.Secret:
		return ValidateSecret(o)
	case *corev1.Node:
		return ValidateNode(o)
	case *corev1.Namespace:
		return ValidateNamespace(o)
	case *corev1.Event:
		return ValidateEvent(o)
	case *appsv1.Deployment:
		return ValidateDeployment(o)
	case *appsv1.ReplicaSet:
		return ValidateReplicaSet(o)
	case *coordinationv1.Lease:
		return ValidateLease(o)
	case *autoscalingv1.Scale:
		return ValidateScale(o)
	}
	return field.ErrorList{}
}

// ValidateUpdate validates newObj replacing oldObj (a PUT or PATCH of the
// main resource). Both must be the same type; a mismatch is reported as an
// internal error rather than a panic.
func ValidateUpdate(newObj, oldObj runtime.Object) field.ErrorList {
	switch n := newObj.(type) {
	case *corev1.Pod:
		if o, ok := oldObj.(*corev1.Pod); ok {
			return ValidatePodUpdate(n, o)
		}
	case *corev1.Service:
		if o, ok := oldObj.(*corev1.Service); ok {
			return ValidateServiceUpdate(n, o)
		}
	case *corev1.Endpoints:
		if o, ok := oldObj.(*corev1.Endpoints); ok {
			return ValidateEndpointsUpdate(n, o)
		}
	case *corev1.ConfigMap:
		if o, ok := oldObj.(*corev1.ConfigMap); ok {
			return ValidateConfigMapUpdate(n, o)
		}
	case *corev1.Secret:
		if o, ok := oldObj.(*corev1.Secret); ok {
			return ValidateSecretUpdate(n, o)
		}
	case *corev1.Node:
		if o, ok := oldObj.(*corev1.Node); ok {
			return ValidateNodeUpdate(n, o)
		}
	case *corev1.Namespace:
		if o, ok := oldObj.(*corev1.Namespace); ok {
			return ValidateNamespaceUpdate(n, o)
		}
	case *corev1.Event:
		if o, ok := oldObj.(*corev1.Event); ok {
			return ValidateEventUpdate(n, o)
		}
	case *appsv1.Deployment:
		if o, ok := oldObj.(*appsv1.Deployment); ok {
			return ValidateDeploymentUpdate(n, o)
		}
	case *appsv1.ReplicaSet:
		if o, ok := oldObj.(*appsv1.ReplicaSet); ok {
			return ValidateReplicaSetUpdate(n, o)
		}
	case *coordinationv1.Lease:
		if o, ok := oldObj.(*coordinationv1.Lease); ok {
			return ValidateLeaseUpdate(n, o)
		}
	case *autoscalingv1.Scale:
		return ValidateScale(n)
	default:
		return field.ErrorList{}
	}
	return typeMismatch(newObj, oldObj)
}

// ValidateStatusUpdate validates an update through the /status subresource.
// The API server is expected to have copied the old spec into newObj; these
// checks cover metadata and status only. Kinds without a status
// subresource fall back to ValidateUpdate.
func ValidateStatusUpdate(newObj, oldObj runtime.Object) field.ErrorList {
	switch n := newObj.(type) {
	case *corev1.Pod:
		if o, ok := oldObj.(*corev1.Pod); ok {
			return ValidatePodStatusUpdate(n, o)
		}
	case *corev1.Service:
		if o, ok := oldObj.(*corev1.Service); ok {
			return ValidateServiceStatusUpdate(n, o)
		}
	case *corev1.Node:
		if o, ok := oldObj.(*corev1.Node); ok {
			return ValidateNodeStatusUpdate(n, o)
		}
	case *corev1.Namespace:
		if o, ok := oldObj.(*corev1.Namespace); ok {
			return ValidateNamespaceStatusUpdate(n, o)
		}
	case *appsv1.Deployment:
		if o, ok := oldObj.(*appsv1.Deployment); ok {
			return ValidateDeploymentStatusUpdate(n, o)
		}
	case *appsv1.ReplicaSet:
		if o, ok := oldObj.(*appsv1.ReplicaSet); ok {
			return ValidateReplicaSetStatusUpdate(n, o)
		}
	default:
		return ValidateUpdate(newObj, oldObj)
	}
	return typeMismatch(newObj, oldObj)
}

func typeMismatch(newObj, oldObj runtime.Object) field.ErrorList {
	return field.ErrorList{field.InternalError(nil,
		fmt.Errorf("cannot validate update of %T against old object of type %T", newObj, oldObj))}
}

// --- helpers shared by the per-kind files ---

// validateDNSLabel reports a name that is not an RFC 1123 label.
func validateDNSLabel(value string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(value) {
		errs = append(errs, field.Invalid(fldPath, value, msg))
	}
	return errs
}

// validateDNSSubdomain reports a name that is not an RFC 1123 subdomain.
func validateDNSSubdomain(value string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(value) {
		errs = append(errs, field.Invalid(fldPath, value, msg))
	}
	return errs
}

func validatePortNumber(port int32, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortNum(int(port)) {
		errs = append(errs, field.Invalid(fldPath, port, msg))
	}
	return errs
}

// validatePortNumOrName accepts a valid port number or an IANA port name,
// as probes and service targetPorts do.
func validatePortNumOrName(port intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch port.Type {
	case intstr.Int:
		for _, msg := range validation.IsValidPortNum(port.IntValue()) {
			errs = append(errs, field.Invalid(fldPath, port.IntValue(), msg))
		}
	case intstr.String:
		for _, msg := range validation.IsValidPortName(port.StrVal) {
			errs = append(errs, field.Invalid(fldPath, port.StrVal, msg))
		}
	default:
		errs = append(errs, field.InternalError(fldPath, fmt.Errorf("unknown IntOrString type %d", port.Type)))
	}
	return errs
}

var supportedProtocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}

func validateProtocol(p corev1.Protocol, fldPath *field.Path) field.ErrorList {
	if p == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	for _, s := range supportedProtocols {
		if p == s {
			return nil
		}
	}
	return field.ErrorList{field.NotSupported(fldPath, p, supportedProtocols)}
}

func validateNonnegative(value int64, fldPath *field.Path) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(value, fldPath)
}

func validateNonnegativeQuantity(q resource.Quantity, fldPath *field.Path) field.ErrorList {
	if q.Sign() < 0 {
		return field.ErrorList{field.Invalid(fldPath, q.String(), "must be greater than or equal to 0")}
	}
	return nil
}

func validateIP(value string, fldPath *field.Path) field.ErrorList {
	return validation.IsValidIP(fldPath, value)
}

// validateRelativePath checks a file path that must stay inside a volume.
func validateRelativePath(p string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if strings.HasPrefix(p, "/") {
		errs = append(errs, field.Invalid(fldPath, p, "must be a relative path"))
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			errs = append(errs, field.Invalid(fldPath, p, "must not contain '..'"))
			break
		}
	}
	return errs
}

// validateImmutable is ValidateImmutableField with our naming.
func validateImmutable(newVal, oldVal any, fldPath *field.Path) field.ErrorList {
	return apivalidation.ValidateImmutableField(newVal, oldVal, fldPath)
}

// setMembers returns the names of the members that are set, in order; used
// for "exactly one of" fields such as volume sources and probe handlers.
func setMembers(members ...member) []string {
	var set []string
	for _, m := range members {
		if m.set {
			set = append(set, m.name)
		}
	}
	return set
}

type member struct {
	name string
	set  bool
}

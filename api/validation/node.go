package validation

import (
	"fmt"
	"strings"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateNode validates a new node. Nodes are cluster-scoped and named by
// DNS subdomain.
func ValidateNode(n *corev1.Node) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&n.ObjectMeta, false, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	errs = append(errs, validateNodeSpec(&n.Spec, field.NewPath("spec"))...)
	errs = append(errs, validateNodeStatus(&n.Status, field.NewPath("status"))...)
	return errs
}

func validateNodeSpec(spec *corev1.NodeSpec, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.PodCIDR != "" {
		errs = append(errs, validation.IsValidCIDR(specPath.Child("podCIDR"), spec.PodCIDR)...)
	}
	cidrsPath := specPath.Child("podCIDRs")
	for i, c := range spec.PodCIDRs {
		errs = append(errs, validation.IsValidCIDR(cidrsPath.Index(i), c)...)
	}
	if len(spec.PodCIDRs) > 0 && spec.PodCIDR != spec.PodCIDRs[0] {
		errs = append(errs, field.Invalid(cidrsPath.Index(0), spec.PodCIDRs[0], "must match `podCIDR`"))
	}
	if len(spec.PodCIDRs) > 2 {
		errs = append(errs, field.Invalid(cidrsPath, spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
	}
	errs = append(errs, ValidateTaints(spec.Taints, specPath.Child("taints"))...)
	return errs
}

// ValidateTaints checks node taints: key required and qualified, value a
// label value, effect one of the three, no two taints with the same key
// and effect.
func ValidateTaints(taints []corev1.Taint, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, t := range taints {
		p := fldPath.Index(i)
		if t.Key == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		} else {
			errs = append(errs, metav1validation.ValidateLabelName(t.Key, p.Child("key"))...)
		}
		for _, msg := range validation.IsValidLabelValue(t.Value) {
			errs = append(errs, field.Invalid(p.Child("value"), t.Value, msg))
		}
		switch {
		case t.Effect == "":
			errs = append(errs, field.Required(p.Child("effect"), ""))
		case !contains(supportedTaintEffects, t.Effect):
			errs = append(errs, field.NotSupported(p.Child("effect"), t.Effect, supportedTaintEffects))
		}
		key := t.Key + ":" + string(t.Effect)
		if seen.Has(key) {
			errs = append(errs, field.Duplicate(p, fmt.Sprintf("taints must be unique by key and effect pair (%s)", key)))
		}
		seen.Insert(key)
	}
	return errs
}

var supportedNodeAddressTypes = []corev1.NodeAddressType{corev1.NodeHostName, corev1.NodeInternalIP,
	corev1.NodeExternalIP, corev1.NodeInternalDNS, corev1.NodeExternalDNS}

func validateNodeStatus(st *corev1.NodeStatus, statusPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for name, q := range st.Capacity {
		errs = append(errs, validateNonnegativeQuantity(q, statusPath.Child("capacity").Key(string(name)))...)
	}
	for name, q := range st.Allocatable {
		errs = append(errs, validateNonnegativeQuantity(q, statusPath.Child("allocatable").Key(string(name)))...)
	}
	for i, c := range st.Conditions {
		p := statusPath.Child("conditions").Index(i)
		if c.Type == "" {
			errs = append(errs, field.Required(p.Child("type"), ""))
		}
		errs = append(errs, validateConditionStatus(c.Status, p.Child("status"))...)
	}
	for i, a := range st.Addresses {
		p := statusPath.Child("addresses").Index(i)
		if !contains(supportedNodeAddressTypes, a.Type) {
			errs = append(errs, field.NotSupported(p.Child("type"), a.Type, supportedNodeAddressTypes))
		}
		if a.Address == "" {
			errs = append(errs, field.Required(p.Child("address"), ""))
		} else if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
			errs = append(errs, validateIP(a.Address, p.Child("address"))...)
		}
	}
	if port := st.DaemonEndpoints.KubeletEndpoint.Port; port != 0 {
		errs = append(errs, validatePortNumber(port, statusPath.Child("daemonEndpoints", "kubeletEndpoint", "Port"))...)
	}
	return errs
}

// ValidateNodeUpdate validates a node update. podCIDR(s) and providerID
// may be set once and then never change.
func ValidateNodeUpdate(newNode, oldNode *corev1.Node) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(&newNode.ObjectMeta, &oldNode.ObjectMeta, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	if len(oldNode.Spec.PodCIDRs) > 0 && !equalStrings(newNode.Spec.PodCIDRs, oldNode.Spec.PodCIDRs) {
		errs = append(errs, field.Forbidden(specPath.Child("podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	} else if oldNode.Spec.PodCIDR != "" && newNode.Spec.PodCIDR != oldNode.Spec.PodCIDR {
		errs = append(errs, field.Forbidden(specPath.Child("podCIDR"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if oldNode.Spec.ProviderID != "" && newNode.Spec.ProviderID != oldNode.Spec.ProviderID {
		errs = append(errs, field.Forbidden(specPath.Child("providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	errs = append(errs, validateNodeSpec(&newNode.Spec, specPath)...)
	errs = append(errs, validateNodeStatus(&newNode.Status, field.NewPath("status"))...)
	return errs
}

// ValidateNodeStatusUpdate validates a write to nodes/status.
func ValidateNodeStatusUpdate(newNode, oldNode *corev1.Node) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(&newNode.ObjectMeta, &oldNode.ObjectMeta, field.NewPath("metadata"))
	return append(errs, validateNodeStatus(&newNode.Status, field.NewPath("status"))...)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ValidateNamespace validates a new namespace; names are DNS labels.
func ValidateNamespace(ns *corev1.Namespace) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&ns.ObjectMeta, false, apivalidation.ValidateNamespaceName, field.NewPath("metadata"))
	errs = append(errs, validateNamespaceFinalizers(ns.Spec.Finalizers, field.NewPath("spec", "finalizers"))...)
	errs = append(errs, validateNamespacePhase(ns.Status.Phase, field.NewPath("status", "phase"))...)
	return errs
}

// validateNamespaceFinalizers accepts the standard "kubernetes" finalizer
// and domain-qualified ones (example.com/cleanup).
func validateNamespaceFinalizers(finalizers []corev1.FinalizerName, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, f := range finalizers {
		p := fldPath.Index(i)
		for _, msg := range validation.IsQualifiedName(string(f)) {
			errs = append(errs, field.Invalid(p, f, msg))
		}
		if !strings.Contains(string(f), "/") && f != corev1.FinalizerKubernetes {
			errs = append(errs, field.Invalid(p, f, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

var supportedNamespacePhases = []corev1.NamespacePhase{corev1.NamespaceActive, corev1.NamespaceTerminating}

func validateNamespacePhase(phase corev1.NamespacePhase, fldPath *field.Path) field.ErrorList {
	if phase != "" && !contains(supportedNamespacePhases, phase) {
		return field.ErrorList{field.NotSupported(fldPath, phase, supportedNamespacePhases)}
	}
	return nil
}

// ValidateNamespaceUpdate validates a namespace update (spec finalizers are
// changed through the finalize subresource, also validated here).
func ValidateNamespaceUpdate(newNS, oldNS *corev1.Namespace) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(&newNS.ObjectMeta, &oldNS.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, validateNamespaceFinalizers(newNS.Spec.Finalizers, field.NewPath("spec", "finalizers"))...)
	errs = append(errs, validateNamespacePhase(newNS.Status.Phase, field.NewPath("status", "phase"))...)
	return errs
}

// ValidateNamespaceStatusUpdate validates a write to namespaces/status: a
// namespace being deleted must stay Terminating.
func ValidateNamespaceStatusUpdate(newNS, oldNS *corev1.Namespace) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(&newNS.ObjectMeta, &oldNS.ObjectMeta, field.NewPath("metadata"))
	phasePath := field.NewPath("status", "phase")
	errs = append(errs, validateNamespacePhase(newNS.Status.Phase, phasePath)...)
	if newNS.DeletionTimestamp != nil && newNS.Status.Phase != corev1.NamespaceTerminating {
		errs = append(errs, field.Invalid(phasePath, newNS.Status.Phase, "a namespace may only be in Terminating status if it has a deletion timestamp"))
	} else if newNS.DeletionTimestamp == nil && newNS.Status.Phase == corev1.NamespaceTerminating {
		errs = append(errs, field.Invalid(phasePath, newNS.Status.Phase, "a namespace may only be in Terminating status if it has a deletion timestamp"))
	}
	return errs
}

// ValidateEvent validates an event. It is deliberately lenient, like
// Kubernetes' core/v1 event validation: reporters differ widely. The
// involved object's namespace must agree with the event's namespace.
func ValidateEvent(ev *corev1.Event) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&ev.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(errs, validateEventContent(ev)...)
}

func validateEventContent(ev *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	ioPath := field.NewPath("involvedObject")
	if ns := ev.InvolvedObject.Namespace; ns != "" && ns != ev.Namespace {
		errs = append(errs, field.Invalid(ioPath.Child("namespace"), ns, "does not match event.namespace"))
	}
	if ev.Count < 0 {
		errs = append(errs, field.Invalid(field.NewPath("count"), ev.Count, "must be greater than or equal to 0"))
	}
	if ev.Type != "" && ev.Type != corev1.EventTypeNormal && ev.Type != corev1.EventTypeWarning {
		errs = append(errs, field.NotSupported(field.NewPath("type"), ev.Type, []string{corev1.EventTypeNormal, corev1.EventTypeWarning}))
	}
	return errs
}

// ValidateEventUpdate validates an event update (recorders bump count and
// lastTimestamp of an existing event).
func ValidateEventUpdate(newEv, oldEv *corev1.Event) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(&newEv.ObjectMeta, &oldEv.ObjectMeta, field.NewPath("metadata"))
	return append(errs, validateEventContent(newEv)...)
}

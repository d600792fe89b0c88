package validation

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidatePod validates a new pod.
func ValidatePod(pod *corev1.Pod) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&pod.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	errs = append(errs, ValidatePodSpec(&pod.Spec, field.NewPath("spec"))...)
	return errs
}

// ValidatePodTemplateSpec validates the pod template of a workload. Like
// Kubernetes, templates are checked as pod specs but their metadata only for
// labels and annotations (name and namespace come from the controller).
func ValidatePodTemplateSpec(t *corev1.PodTemplateSpec, fldPath *field.Path) field.ErrorList {
	metaPath := fldPath.Child("metadata")
	errs := metav1validation.ValidateLabels(t.Labels, metaPath.Child("labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(t.Annotations, metaPath.Child("annotations"))...)
	errs = append(errs, ValidatePodSpec(&t.Spec, fldPath.Child("spec"))...)
	return errs
}

var (
	supportedRestartPolicies = []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	supportedDNSPolicies     = []corev1.DNSPolicy{corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone}
	supportedPullPolicies    = []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}
	supportedTermMsgPolicies = []corev1.TerminationMessagePolicy{corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError}
	supportedHostPathTypes   = []corev1.HostPathType{corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
		corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev}
	supportedStorageMedia   = []corev1.StorageMedium{corev1.StorageMediumDefault, corev1.StorageMediumMemory}
	supportedURISchemes     = []corev1.URIScheme{corev1.URISchemeHTTP, corev1.URISchemeHTTPS}
	supportedTaintEffects   = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}
	supportedTolerationOps  = []corev1.TolerationOperator{corev1.TolerationOpExists, corev1.TolerationOpEqual}
	supportedNodeSelectorOp = []corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn,
		corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt}
	// Pod fields the downward API may put into environment variables.
	supportedEnvFieldPaths = []string{"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
		"spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"}
	supportedEnvResources = []string{"limits.cpu", "limits.memory", "limits.ephemeral-storage",
		"requests.cpu", "requests.memory", "requests.ephemeral-storage"}
)

// ValidatePodSpec validates a pod spec at fldPath (spec, or
// spec.template.spec in workloads).
func ValidatePodSpec(spec *corev1.PodSpec, fldPath *field.Path) field.ErrorList {
	volumes, errs := validateVolumes(spec.Volumes, fldPath.Child("volumes"))

	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(fldPath.Child("containers"), ""))
	}
	// Container names are unique across init and regular containers, since
	// both share the pod's status and log namespace.
	names := sets.New[string]()
	errs = append(errs, validateContainers(spec.InitContainers, true, volumes, names, spec.HostNetwork, fldPath.Child("initContainers"))...)
	errs = append(errs, validateContainers(spec.Containers, false, volumes, names, spec.HostNetwork, fldPath.Child("containers"))...)
	for i, c := range spec.Containers {
		errs = append(errs, validateLifecycle(c.Lifecycle, spec.TerminationGracePeriodSeconds, fldPath.Child("containers").Index(i).Child("lifecycle"))...)
	}
	for i, c := range spec.InitContainers {
		if c.Lifecycle != nil {
			errs = append(errs, field.Forbidden(fldPath.Child("initContainers").Index(i).Child("lifecycle"), "may not be set for init containers"))
		}
	}
	errs = append(errs, validateHostPorts(spec, fldPath)...)

	switch {
	case spec.RestartPolicy == "":
		errs = append(errs, field.Required(fldPath.Child("restartPolicy"), ""))
	case !contains(supportedRestartPolicies, spec.RestartPolicy):
		errs = append(errs, field.NotSupported(fldPath.Child("restartPolicy"), spec.RestartPolicy, supportedRestartPolicies))
	}
	errs = append(errs, validateDNS(spec, fldPath)...)

	errs = append(errs, metav1validation.ValidateLabels(spec.NodeSelector, fldPath.Child("nodeSelector"))...)
	if spec.ServiceAccountName != "" {
		errs = append(errs, validateDNSSubdomain(spec.ServiceAccountName, fldPath.Child("serviceAccountName"))...)
	}
	if spec.NodeName != "" {
		errs = append(errs, validateDNSSubdomain(spec.NodeName, fldPath.Child("nodeName"))...)
	}
	if spec.TerminationGracePeriodSeconds != nil {
		errs = append(errs, validateNonnegative(*spec.TerminationGracePeriodSeconds, fldPath.Child("terminationGracePeriodSeconds"))...)
	}
	if spec.ActiveDeadlineSeconds != nil {
		if v := *spec.ActiveDeadlineSeconds; v < 1 || v > 1<<31-1 {
			errs = append(errs, field.Invalid(fldPath.Child("activeDeadlineSeconds"), v, validation.InclusiveRangeError(1, 1<<31-1)))
		}
	}
	if spec.Hostname != "" {
		errs = append(errs, validateDNSLabel(spec.Hostname, fldPath.Child("hostname"))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, validateDNSLabel(spec.Subdomain, fldPath.Child("subdomain"))...)
	}
	if spec.PriorityClassName != "" {
		errs = append(errs, validateDNSSubdomain(spec.PriorityClassName, fldPath.Child("priorityClassName"))...)
	}
	if spec.SchedulerName != "" {
		errs = append(errs, validateDNSSubdomain(spec.SchedulerName, fldPath.Child("schedulerName"))...)
	}
	if sc := spec.SecurityContext; sc != nil {
		scPath := fldPath.Child("securityContext")
		errs = append(errs, validateID(sc.RunAsUser, validation.IsValidUserID, scPath.Child("runAsUser"))...)
		errs = append(errs, validateID(sc.RunAsGroup, validation.IsValidGroupID, scPath.Child("runAsGroup"))...)
		errs = append(errs, validateID(sc.FSGroup, validation.IsValidGroupID, scPath.Child("fsGroup"))...)
	}
	for i, ps := range spec.ImagePullSecrets {
		if ps.Name == "" {
			errs = append(errs, field.Required(fldPath.Child("imagePullSecrets").Index(i).Child("name"), ""))
		}
	}
	if spec.Affinity != nil {
		errs = append(errs, validateAffinity(spec.Affinity, fldPath.Child("affinity"))...)
	}
	errs = append(errs, ValidateTolerations(spec.Tolerations, fldPath.Child("tolerations"))...)
	for i, ha := range spec.HostAliases {
		p := fldPath.Child("hostAliases").Index(i)
		errs = append(errs, validateIP(ha.IP, p.Child("ip"))...)
		for j, h := range ha.Hostnames {
			errs = append(errs, validateDNSSubdomain(h, p.Child("hostnames").Index(j))...)
		}
	}
	return errs
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func validateID(id *int64, check func(int64) []string, fldPath *field.Path) field.ErrorList {
	if id == nil {
		return nil
	}
	var errs field.ErrorList
	for _, msg := range check(*id) {
		errs = append(errs, field.Invalid(fldPath, *id, msg))
	}
	return errs
}

func validateDNS(spec *corev1.PodSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case spec.DNSPolicy == "":
		errs = append(errs, field.Required(fldPath.Child("dnsPolicy"), ""))
	case !contains(supportedDNSPolicies, spec.DNSPolicy):
		errs = append(errs, field.NotSupported(fldPath.Child("dnsPolicy"), spec.DNSPolicy, supportedDNSPolicies))
	}
	cfgPath := fldPath.Child("dnsConfig")
	if spec.DNSPolicy == corev1.DNSNone {
		if spec.DNSConfig == nil {
			return append(errs, field.Required(cfgPath, "must provide `dnsConfig` when `dnsPolicy` is None"))
		}
		if len(spec.DNSConfig.Nameservers) == 0 {
			errs = append(errs, field.Required(cfgPath.Child("nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None"))
		}
	}
	if spec.DNSConfig == nil {
		return errs
	}
	// resolv.conf limits: glibc reads 3 nameservers and 32 search domains.
	if n := len(spec.DNSConfig.Nameservers); n > 3 {
		errs = append(errs, field.Invalid(cfgPath.Child("nameservers"), spec.DNSConfig.Nameservers, "must not have more than 3 nameservers"))
	}
	for i, ns := range spec.DNSConfig.Nameservers {
		errs = append(errs, validateIP(ns, cfgPath.Child("nameservers").Index(i))...)
	}
	if n := len(spec.DNSConfig.Searches); n > 32 {
		errs = append(errs, field.Invalid(cfgPath.Child("searches"), spec.DNSConfig.Searches, "must not have more than 32 search paths"))
	}
	for i, s := range spec.DNSConfig.Searches {
		errs = append(errs, validateDNSSubdomain(strings.TrimSuffix(s, "."), cfgPath.Child("searches").Index(i))...)
	}
	for i, o := range spec.DNSConfig.Options {
		if o.Name == "" {
			errs = append(errs, field.Required(cfgPath.Child("options").Index(i).Child("name"), "must not be empty"))
		}
	}
	return errs
}

// validateVolumes returns the set of valid volume names for mounts to
// refer to, and the errors.
func validateVolumes(volumes []corev1.Volume, fldPath *field.Path) (sets.Set[string], field.ErrorList) {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, v := range volumes {
		idxPath := fldPath.Index(i)
		namePath := idxPath.Child("name")
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(namePath, ""))
		case names.Has(v.Name):
			errs = append(errs, field.Duplicate(namePath, v.Name))
		default:
			if nameErrs := validateDNSLabel(v.Name, namePath); len(nameErrs) > 0 {
				errs = append(errs, nameErrs...)
			} else {
				names.Insert(v.Name)
			}
		}
		errs = append(errs, validateVolumeSource(&v.VolumeSource, idxPath)...)
	}
	return names, errs
}

func validateVolumeSource(src *corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	set := setMembers(
		member{"hostPath", src.HostPath != nil},
		member{"emptyDir", src.EmptyDir != nil},
		member{"secret", src.Secret != nil},
		member{"configMap", src.ConfigMap != nil},
		member{"downwardAPI", src.DownwardAPI != nil},
		member{"projected", src.Projected != nil},
	)
	var errs field.ErrorList
	switch {
	case len(set) == 0:
		return field.ErrorList{field.Required(fldPath, "must specify a volume type")}
	case len(set) > 1:
		for _, name := range set[1:] {
			errs = append(errs, field.Forbidden(fldPath.Child(name), "may not specify more than 1 volume type"))
		}
	}
	if hp := src.HostPath; hp != nil {
		p := fldPath.Child("hostPath")
		if hp.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		}
		if hp.Type != nil && !contains(supportedHostPathTypes, *hp.Type) {
			errs = append(errs, field.NotSupported(p.Child("type"), *hp.Type, supportedHostPathTypes))
		}
	}
	if ed := src.EmptyDir; ed != nil {
		p := fldPath.Child("emptyDir")
		if !contains(supportedStorageMedia, ed.Medium) {
			errs = append(errs, field.NotSupported(p.Child("medium"), ed.Medium, supportedStorageMedia))
		}
		if ed.SizeLimit != nil {
			errs = append(errs, validateNonnegativeQuantity(*ed.SizeLimit, p.Child("sizeLimit"))...)
		}
	}
	if s := src.Secret; s != nil {
		p := fldPath.Child("secret")
		if s.SecretName == "" {
			errs = append(errs, field.Required(p.Child("secretName"), ""))
		} else {
			errs = append(errs, validateDNSSubdomain(s.SecretName, p.Child("secretName"))...)
		}
		errs = append(errs, validateProjection(s.Items, s.DefaultMode, p)...)
	}
	if cm := src.ConfigMap; cm != nil {
		p := fldPath.Child("configMap")
		if cm.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else {
			errs = append(errs, validateDNSSubdomain(cm.Name, p.Child("name"))...)
		}
		errs = append(errs, validateProjection(cm.Items, cm.DefaultMode, p)...)
	}
	if d := src.DownwardAPI; d != nil {
		p := fldPath.Child("downwardAPI")
		errs = append(errs, validateFileMode(d.DefaultMode, p.Child("defaultMode"))...)
		errs = append(errs, validateDownwardAPIFiles(d.Items, p.Child("items"))...)
	}
	if pr := src.Projected; pr != nil {
		errs = append(errs, validateProjectedVolume(pr, fldPath.Child("projected"))...)
	}
	return errs
}

var (
	// supportedDownwardAPIVolumeFieldPaths are the fieldRef paths a
	// downwardAPI file may name (besides metadata.labels['k'] and
	// metadata.annotations['k']); status and spec fields are env-only.
	supportedDownwardAPIVolumeFieldPaths = []string{"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"}
	// supportedDownwardAPIVolumeResources are the resourceFieldRef
	// resources the kubelet can write to a file.
	supportedDownwardAPIVolumeResources = []string{"limits.cpu", "limits.memory", "requests.cpu", "requests.memory"}
)

// validateDownwardAPIFiles checks the files of a downwardAPI volume or
// projection: a relative path without '..' and exactly one of fieldRef
// and resourceFieldRef, each naming something supported.
func validateDownwardAPIFiles(items []corev1.DownwardAPIVolumeFile, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		p := fldPath.Index(i)
		errs = append(errs, validateVolumeFilePath(it.Path, p.Child("path"))...)
		errs = append(errs, validateFileMode(it.Mode, p.Child("mode"))...)
		switch {
		case it.FieldRef == nil && it.ResourceFieldRef == nil:
			errs = append(errs, field.Required(p, "must specify one of: `fieldRef` or `resourceFieldRef`"))
		case it.FieldRef != nil && it.ResourceFieldRef != nil:
			errs = append(errs, field.Invalid(p, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		}
		if fr := it.FieldRef; fr != nil {
			fp := p.Child("fieldRef")
			if fr.APIVersion == "" {
				errs = append(errs, field.Required(fp.Child("apiVersion"), ""))
			} else if fr.APIVersion != "v1" {
				errs = append(errs, field.NotSupported(fp.Child("apiVersion"), fr.APIVersion, []string{"v1"}))
			}
			switch {
			case fr.FieldPath == "":
				errs = append(errs, field.Required(fp.Child("fieldPath"), ""))
			case isSubscriptedMetaPath(fr.FieldPath):
			case !contains(supportedDownwardAPIVolumeFieldPaths, fr.FieldPath):
				errs = append(errs, field.NotSupported(fp.Child("fieldPath"), fr.FieldPath, supportedDownwardAPIVolumeFieldPaths))
			}
		}
		if rf := it.ResourceFieldRef; rf != nil {
			rp := p.Child("resourceFieldRef")
			// A file belongs to no container, so it must say whose.
			if rf.ContainerName == "" {
				errs = append(errs, field.Required(rp.Child("containerName"), "must be specified for a downwardAPI volume file"))
			}
			if rf.Resource == "" {
				errs = append(errs, field.Required(rp.Child("resource"), ""))
			} else if !contains(supportedDownwardAPIVolumeResources, rf.Resource) {
				errs = append(errs, field.NotSupported(rp.Child("resource"), rf.Resource, supportedDownwardAPIVolumeResources))
			}
			if rf.Divisor.Sign() < 0 {
				errs = append(errs, field.Invalid(rp.Child("divisor"), rf.Divisor.String(), "must be greater than or equal to 0"))
			}
		}
	}
	return errs
}

// validateVolumeFilePath: required, relative, no '..' element and not
// starting with '..' (names beginning with '..' are the atomic writer's).
func validateVolumeFilePath(path string, fldPath *field.Path) field.ErrorList {
	if path == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	errs := validateRelativePath(path, fldPath)
	if len(errs) == 0 && strings.HasPrefix(path, "..") {
		errs = append(errs, field.Invalid(fldPath, path, "must not start with '..'"))
	}
	return errs
}

// validateProjectedVolume checks a projected volume: every source sets
// exactly one supported projection, and no two files share a path.
func validateProjectedVolume(pr *corev1.ProjectedVolumeSource, fldPath *field.Path) field.ErrorList {
	errs := validateFileMode(pr.DefaultMode, fldPath.Child("defaultMode"))
	paths := sets.New[string]()
	addPath := func(path string, p *field.Path) {
		if path == "" {
			return
		}
		if paths.Has(path) {
			errs = append(errs, field.Invalid(p, path, "conflicting duplicate paths"))
		}
		paths.Insert(path)
	}
	for i, src := range pr.Sources {
		sp := fldPath.Child("sources").Index(i)
		set := setMembers(
			member{"secret", src.Secret != nil},
			member{"downwardAPI", src.DownwardAPI != nil},
			member{"configMap", src.ConfigMap != nil},
			member{"serviceAccountToken", src.ServiceAccountToken != nil},
		)
		switch {
		case len(set) == 0:
			errs = append(errs, field.Required(sp, "must specify exactly one of: `secret`, `configMap` or `downwardAPI`"))
		case len(set) > 1:
			for _, name := range set[1:] {
				errs = append(errs, field.Forbidden(sp.Child(name), "may not specify more than 1 volume type per source"))
			}
		}
		if s := src.Secret; s != nil {
			p := sp.Child("secret")
			if s.Name == "" {
				errs = append(errs, field.Required(p.Child("name"), ""))
			} else {
				errs = append(errs, validateDNSSubdomain(s.Name, p.Child("name"))...)
			}
			errs = append(errs, validateProjection(s.Items, nil, p)...)
			for j, it := range s.Items {
				addPath(it.Path, p.Child("items").Index(j).Child("path"))
			}
		}
		if cm := src.ConfigMap; cm != nil {
			p := sp.Child("configMap")
			if cm.Name == "" {
				errs = append(errs, field.Required(p.Child("name"), ""))
			} else {
				errs = append(errs, validateDNSSubdomain(cm.Name, p.Child("name"))...)
			}
			errs = append(errs, validateProjection(cm.Items, nil, p)...)
			for j, it := range cm.Items {
				addPath(it.Path, p.Child("items").Index(j).Child("path"))
			}
		}
		if d := src.DownwardAPI; d != nil {
			p := sp.Child("downwardAPI").Child("items")
			errs = append(errs, validateDownwardAPIFiles(d.Items, p)...)
			for j, it := range d.Items {
				addPath(it.Path, p.Index(j).Child("path"))
			}
		}
		if src.ServiceAccountToken != nil {
			errs = append(errs, field.Forbidden(sp.Child("serviceAccountToken"),
				"serviceAccountToken projections are not supported by minik8s (no bound service account tokens are issued); use a secret projection"))
		}
	}
	return errs
}

const maxFileMode = 0777

func validateFileMode(mode *int32, fldPath *field.Path) field.ErrorList {
	if mode == nil || (*mode >= 0 && *mode <= maxFileMode) {
		return nil
	}
	return field.ErrorList{field.Invalid(fldPath, *mode, "must be a number between 0 and 0777 (octal), both inclusive")}
}

func validateProjection(items []corev1.KeyToPath, defaultMode *int32, fldPath *field.Path) field.ErrorList {
	errs := validateFileMode(defaultMode, fldPath.Child("defaultMode"))
	for i, it := range items {
		p := fldPath.Child("items").Index(i)
		if it.Key == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		} else {
			for _, msg := range validation.IsConfigMapKey(it.Key) {
				errs = append(errs, field.Invalid(p.Child("key"), it.Key, msg))
			}
		}
		if it.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		} else {
			errs = append(errs, validateRelativePath(it.Path, p.Child("path"))...)
		}
		errs = append(errs, validateFileMode(it.Mode, p.Child("mode"))...)
	}
	return errs
}

func validateContainers(containers []corev1.Container, isInit bool, volumes, names sets.Set[string], hostNetwork bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i := range containers {
		c := &containers[i]
		idxPath := fldPath.Index(i)
		namePath := idxPath.Child("name")
		switch {
		case c.Name == "":
			errs = append(errs, field.Required(namePath, ""))
		case names.Has(c.Name):
			errs = append(errs, field.Duplicate(namePath, c.Name))
		default:
			errs = append(errs, validateDNSLabel(c.Name, namePath)...)
			names.Insert(c.Name)
		}
		// Kubernetes tolerates surrounding whitespace for historical
		// reasons but not an image made of nothing else.
		if strings.TrimSpace(c.Image) == "" {
			errs = append(errs, field.Required(idxPath.Child("image"), ""))
		}
		switch {
		case c.ImagePullPolicy == "":
			errs = append(errs, field.Required(idxPath.Child("imagePullPolicy"), ""))
		case !contains(supportedPullPolicies, c.ImagePullPolicy):
			errs = append(errs, field.NotSupported(idxPath.Child("imagePullPolicy"), c.ImagePullPolicy, supportedPullPolicies))
		}
		switch {
		case c.TerminationMessagePolicy == "":
			errs = append(errs, field.Required(idxPath.Child("terminationMessagePolicy"), ""))
		case !contains(supportedTermMsgPolicies, c.TerminationMessagePolicy):
			errs = append(errs, field.NotSupported(idxPath.Child("terminationMessagePolicy"), c.TerminationMessagePolicy, supportedTermMsgPolicies))
		}
		errs = append(errs, validateContainerPorts(c.Ports, hostNetwork, idxPath.Child("ports"))...)
		errs = append(errs, validateEnv(c.Env, idxPath.Child("env"))...)
		errs = append(errs, validateEnvFrom(c.EnvFrom, idxPath.Child("envFrom"))...)
		errs = append(errs, ValidateResourceRequirements(&c.Resources, idxPath.Child("resources"))...)
		errs = append(errs, validateVolumeMounts(c.VolumeMounts, volumes, idxPath.Child("volumeMounts"))...)
		if isInit {
			// Init containers run to completion once, so the kubelet
			// never probes them.
			for _, p := range []struct {
				name  string
				probe *corev1.Probe
			}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
				if p.probe != nil {
					errs = append(errs, field.Forbidden(idxPath.Child(p.name), "may not be set for init containers"))
				}
			}
		} else {
			errs = append(errs, validateProbe(c.LivenessProbe, true, idxPath.Child("livenessProbe"))...)
			errs = append(errs, validateProbe(c.ReadinessProbe, false, idxPath.Child("readinessProbe"))...)
			errs = append(errs, validateProbe(c.StartupProbe, true, idxPath.Child("startupProbe"))...)
		}
		if sc := c.SecurityContext; sc != nil {
			scPath := idxPath.Child("securityContext")
			errs = append(errs, validateID(sc.RunAsUser, validation.IsValidUserID, scPath.Child("runAsUser"))...)
			errs = append(errs, validateID(sc.RunAsGroup, validation.IsValidGroupID, scPath.Child("runAsGroup"))...)
		}
		if c.StdinOnce && !c.Stdin {
			errs = append(errs, field.Invalid(idxPath.Child("stdinOnce"), c.StdinOnce, "must be false when `stdin` is false"))
		}
	}
	return errs
}

func validateContainerPorts(ports []corev1.ContainerPort, hostNetwork bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, p := range ports {
		idxPath := fldPath.Index(i)
		if p.Name != "" {
			for _, msg := range validation.IsValidPortName(p.Name) {
				errs = append(errs, field.Invalid(idxPath.Child("name"), p.Name, msg))
			}
			if names.Has(p.Name) {
				errs = append(errs, field.Duplicate(idxPath.Child("name"), p.Name))
			}
			names.Insert(p.Name)
		}
		if p.ContainerPort == 0 {
			errs = append(errs, field.Required(idxPath.Child("containerPort"), ""))
		} else {
			errs = append(errs, validatePortNumber(p.ContainerPort, idxPath.Child("containerPort"))...)
		}
		if p.HostPort != 0 {
			errs = append(errs, validatePortNumber(p.HostPort, idxPath.Child("hostPort"))...)
			if hostNetwork && p.HostPort != p.ContainerPort {
				errs = append(errs, field.Invalid(idxPath.Child("hostPort"), p.HostPort, "must match `containerPort` when `hostNetwork` is true"))
			}
		}
		if p.HostIP != "" {
			errs = append(errs, validateIP(p.HostIP, idxPath.Child("hostIP"))...)
		}
		errs = append(errs, validateProtocol(p.Protocol, idxPath.Child("protocol"))...)
	}
	return errs
}

// validateHostPorts rejects two containers of one pod claiming the same
// host port, protocol and IP: the node could not honour both.
func validateHostPorts(spec *corev1.PodSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for _, group := range []struct {
		name       string
		containers []corev1.Container
	}{{"initContainers", spec.InitContainers}, {"containers", spec.Containers}} {
		for i, c := range group.containers {
			for j, p := range c.Ports {
				if p.HostPort == 0 {
					continue
				}
				key := fmt.Sprintf("%s/%s/%d", p.HostIP, p.Protocol, p.HostPort)
				if seen.Has(key) {
					errs = append(errs, field.Duplicate(fldPath.Child(group.name).Index(i).Child("ports").Index(j).Child("hostPort"), key))
				}
				seen.Insert(key)
			}
		}
	}
	return errs
}

func validateEnvVarName(name string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	// Kubernetes accepts any printable ASCII except '=' since 1.34.
	for _, msg := range validation.IsRelaxedEnvVarName(name) {
		errs = append(errs, field.Invalid(fldPath, name, msg))
	}
	return errs
}

func validateEnv(env []corev1.EnvVar, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range env {
		idxPath := fldPath.Index(i)
		if ev.Name == "" {
			errs = append(errs, field.Required(idxPath.Child("name"), ""))
		} else {
			errs = append(errs, validateEnvVarName(ev.Name, idxPath.Child("name"))...)
		}
		if ev.ValueFrom != nil {
			errs = append(errs, validateEnvVarSource(ev.ValueFrom, ev.Value, idxPath.Child("valueFrom"))...)
		}
	}
	return errs
}

func validateEnvVarSource(src *corev1.EnvVarSource, value string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	set := setMembers(
		member{"fieldRef", src.FieldRef != nil},
		member{"resourceFieldRef", src.ResourceFieldRef != nil},
		member{"configMapKeyRef", src.ConfigMapKeyRef != nil},
		member{"secretKeyRef", src.SecretKeyRef != nil},
	)
	switch {
	case len(set) == 0:
		return field.ErrorList{field.Invalid(fldPath, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`")}
	case len(set) > 1:
		return field.ErrorList{field.Invalid(fldPath, "", "may not have more than one field specified at a time")}
	}
	if value != "" {
		errs = append(errs, field.Invalid(fldPath, "", "may not be specified when `value` is not empty"))
	}
	if fr := src.FieldRef; fr != nil {
		p := fldPath.Child("fieldRef")
		if fr.APIVersion == "" {
			errs = append(errs, field.Required(p.Child("apiVersion"), ""))
		} else if fr.APIVersion != "v1" {
			errs = append(errs, field.NotSupported(p.Child("apiVersion"), fr.APIVersion, []string{"v1"}))
		}
		switch {
		case fr.FieldPath == "":
			errs = append(errs, field.Required(p.Child("fieldPath"), ""))
		case isSubscriptedMetaPath(fr.FieldPath):
		case !contains(supportedEnvFieldPaths, fr.FieldPath):
			errs = append(errs, field.NotSupported(p.Child("fieldPath"), fr.FieldPath, supportedEnvFieldPaths))
		}
	}
	if rf := src.ResourceFieldRef; rf != nil {
		p := fldPath.Child("resourceFieldRef")
		if rf.Resource == "" {
			errs = append(errs, field.Required(p.Child("resource"), ""))
		} else if !contains(supportedEnvResources, rf.Resource) {
			errs = append(errs, field.NotSupported(p.Child("resource"), rf.Resource, supportedEnvResources))
		}
		if rf.Divisor.Sign() < 0 {
			errs = append(errs, field.Invalid(p.Child("divisor"), rf.Divisor.String(), "must be greater than or equal to 0"))
		}
	}
	if r := src.ConfigMapKeyRef; r != nil {
		errs = append(errs, validateKeySelector(r.Name, r.Key, fldPath.Child("configMapKeyRef"))...)
	}
	if r := src.SecretKeyRef; r != nil {
		errs = append(errs, validateKeySelector(r.Name, r.Key, fldPath.Child("secretKeyRef"))...)
	}
	return errs
}

// isSubscriptedMetaPath accepts metadata.labels['key'] and
// metadata.annotations['key'], the downward API's single-entry forms.
func isSubscriptedMetaPath(p string) bool {
	for _, prefix := range []string{"metadata.labels['", "metadata.annotations['"} {
		if strings.HasPrefix(p, prefix) && strings.HasSuffix(p, "']") && len(p) > len(prefix)+2 {
			key := p[len(prefix) : len(p)-2]
			return len(validation.IsQualifiedName(key)) == 0
		}
	}
	return false
}

func validateKeySelector(name, key string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(fldPath.Child("name"), ""))
	}
	if key == "" {
		errs = append(errs, field.Required(fldPath.Child("key"), ""))
	} else {
		for _, msg := range validation.IsConfigMapKey(key) {
			errs = append(errs, field.Invalid(fldPath.Child("key"), key, msg))
		}
	}
	return errs
}

func validateEnvFrom(sources []corev1.EnvFromSource, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, s := range sources {
		idxPath := fldPath.Index(i)
		if s.Prefix != "" {
			errs = append(errs, validateEnvVarName(s.Prefix, idxPath.Child("prefix"))...)
		}
		set := setMembers(member{"configMapRef", s.ConfigMapRef != nil}, member{"secretRef", s.SecretRef != nil})
		switch {
		case len(set) == 0:
			errs = append(errs, field.Invalid(idxPath, "", "must specify one of: `configMapRef` or `secretRef`"))
		case len(set) > 1:
			errs = append(errs, field.Invalid(idxPath, "", "may not have more than one field specified at a time"))
		}
		if s.ConfigMapRef != nil && s.ConfigMapRef.Name == "" {
			errs = append(errs, field.Required(idxPath.Child("configMapRef", "name"), ""))
		}
		if s.SecretRef != nil && s.SecretRef.Name == "" {
			errs = append(errs, field.Required(idxPath.Child("secretRef", "name"), ""))
		}
	}
	return errs
}

// isStandardContainerResource reports the resources containers may ask for
// besides extended (domain-qualified) resources.
func isStandardContainerResource(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return true
	}
	return strings.HasPrefix(string(name), "hugepages-")
}

// isExtendedResource reports a vendor resource such as example.com/gpu.
func isExtendedResource(name corev1.ResourceName) bool {
	s := string(name)
	return strings.Contains(s, "/") && !strings.HasPrefix(s, "kubernetes.io/") &&
		len(validation.IsQualifiedName(s)) == 0
}

// ValidateResourceRequirements checks resource names, non-negative
// quantities and that each request is at most its limit.
func ValidateResourceRequirements(r *corev1.ResourceRequirements, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	check := func(list corev1.ResourceList, p *field.Path) {
		for name, q := range list {
			kp := p.Key(string(name))
			if !isStandardContainerResource(name) && !isExtendedResource(name) {
				errs = append(errs, field.Invalid(kp, name, "must be a standard resource for containers"))
				continue
			}
			errs = append(errs, validateNonnegativeQuantity(q, kp)...)
		}
	}
	check(r.Limits, fldPath.Child("limits"))
	check(r.Requests, fldPath.Child("requests"))
	for name, req := range r.Requests {
		limit, ok := r.Limits[name]
		if !ok {
			continue
		}
		if req.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(fldPath.Child("requests").Key(string(name)), req.String(),
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, limit.String())))
		}
	}
	return errs
}

func validateVolumeMounts(mounts []corev1.VolumeMount, volumes sets.Set[string], fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := sets.New[string]()
	for i, m := range mounts {
		idxPath := fldPath.Index(i)
		switch {
		case m.Name == "":
			errs = append(errs, field.Required(idxPath.Child("name"), ""))
		case !volumes.Has(m.Name):
			errs = append(errs, field.NotFound(idxPath.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			errs = append(errs, field.Required(idxPath.Child("mountPath"), ""))
		} else if paths.Has(m.MountPath) {
			errs = append(errs, field.Invalid(idxPath.Child("mountPath"), m.MountPath, "must be unique"))
		}
		paths.Insert(m.MountPath)
		if m.SubPath != "" {
			errs = append(errs, validateRelativePath(m.SubPath, idxPath.Child("subPath"))...)
		}
	}
	return errs
}

// validateHandler checks a probe's or hook's action: exactly one kind, and
// that one well formed. sleep is only for hooks (nil for probes).
func validateHandler(h *corev1.ProbeHandler, sleep *corev1.SleepAction, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	set := setMembers(
		member{"exec", h.Exec != nil},
		member{"httpGet", h.HTTPGet != nil},
		member{"tcpSocket", h.TCPSocket != nil},
		member{"sleep", sleep != nil},
	)
	switch {
	case len(set) == 0:
		errs = append(errs, field.Required(fldPath, "must specify a handler type"))
	case len(set) > 1:
		for _, name := range set[1:] {
			errs = append(errs, field.Forbidden(fldPath.Child(name), "may not specify more than 1 handler type"))
		}
	}
	if e := h.Exec; e != nil && len(e.Command) == 0 {
		errs = append(errs, field.Required(fldPath.Child("exec", "command"), ""))
	}
	if g := h.HTTPGet; g != nil {
		hp := fldPath.Child("httpGet")
		errs = append(errs, validatePortNumOrName(g.Port, hp.Child("port"))...)
		if g.Path == "" {
			errs = append(errs, field.Required(hp.Child("path"), ""))
		}
		if !contains(supportedURISchemes, g.Scheme) {
			errs = append(errs, field.NotSupported(hp.Child("scheme"), g.Scheme, supportedURISchemes))
		}
		for i, hdr := range g.HTTPHeaders {
			for _, msg := range validation.IsHTTPHeaderName(hdr.Name) {
				errs = append(errs, field.Invalid(hp.Child("httpHeaders").Index(i).Child("name"), hdr.Name, msg))
			}
		}
	}
	if t := h.TCPSocket; t != nil {
		errs = append(errs, validatePortNumOrName(t.Port, fldPath.Child("tcpSocket", "port"))...)
	}
	if sleep != nil {
		errs = append(errs, validateNonnegative(sleep.Seconds, fldPath.Child("sleep", "seconds"))...)
	}
	return errs
}

// validateLifecycle checks a container's hooks; a sleep must end within
// the pod's termination grace period (grace, if set).
func validateLifecycle(l *corev1.Lifecycle, grace *int64, fldPath *field.Path) field.ErrorList {
	if l == nil {
		return nil
	}
	var errs field.ErrorList
	for _, hook := range []struct {
		name string
		h    *corev1.LifecycleHandler
	}{{"postStart", l.PostStart}, {"preStop", l.PreStop}} {
		if hook.h == nil {
			continue
		}
		hp := fldPath.Child(hook.name)
		errs = append(errs, validateHandler(&corev1.ProbeHandler{Exec: hook.h.Exec, HTTPGet: hook.h.HTTPGet, TCPSocket: hook.h.TCPSocket}, hook.h.Sleep, hp)...)
		if s := hook.h.Sleep; s != nil && grace != nil && s.Seconds > *grace {
			errs = append(errs, field.Invalid(hp.Child("sleep", "seconds"), s.Seconds, "must be less than terminationGracePeriodSeconds"))
		}
	}
	return errs
}

// validateProbe checks one probe; liveness and startup probes must have
// successThreshold 1 (a single success already means "alive"/"started").
func validateProbe(p *corev1.Probe, mustSucceedOnce bool, fldPath *field.Path) field.ErrorList {
	if p == nil {
		return nil
	}
	errs := validateHandler(&p.ProbeHandler, nil, fldPath)
	errs = append(errs, validateNonnegative(int64(p.InitialDelaySeconds), fldPath.Child("initialDelaySeconds"))...)
	for _, f := range []struct {
		name string
		v    int32
	}{{"timeoutSeconds", p.TimeoutSeconds}, {"periodSeconds", p.PeriodSeconds}, {"successThreshold", p.SuccessThreshold}, {"failureThreshold", p.FailureThreshold}} {
		if f.v < 1 {
			errs = append(errs, field.Invalid(fldPath.Child(f.name), f.v, "must be greater than or equal to 1"))
		}
	}
	if mustSucceedOnce && p.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(fldPath.Child("successThreshold"), p.SuccessThreshold, "must be 1"))
	}
	if p.TerminationGracePeriodSeconds != nil {
		if !mustSucceedOnce {
			errs = append(errs, field.Invalid(fldPath.Child("terminationGracePeriodSeconds"), *p.TerminationGracePeriodSeconds, "must not be set for readinessProbes"))
		} else if *p.TerminationGracePeriodSeconds < 1 {
			errs = append(errs, field.Invalid(fldPath.Child("terminationGracePeriodSeconds"), *p.TerminationGracePeriodSeconds, "must be greater than 0"))
		}
	}
	return errs
}

func validateAffinity(a *corev1.Affinity, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if na := a.NodeAffinity; na != nil {
		p := fldPath.Child("nodeAffinity")
		if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
			errs = append(errs, ValidateNodeSelector(req, p.Child("requiredDuringSchedulingIgnoredDuringExecution"))...)
		}
		for i, pref := range na.PreferredDuringSchedulingIgnoredDuringExecution {
			ip := p.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
			errs = append(errs, validateWeight(pref.Weight, ip.Child("weight"))...)
			errs = append(errs, validateNodeSelectorTerm(pref.Preference, ip.Child("preference"))...)
		}
	}
	if pa := a.PodAffinity; pa != nil {
		p := fldPath.Child("podAffinity")
		errs = append(errs, validatePodAffinityTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution, p.Child("requiredDuringSchedulingIgnoredDuringExecution"))...)
		errs = append(errs, validateWeightedPodAffinityTerms(pa.PreferredDuringSchedulingIgnoredDuringExecution, p.Child("preferredDuringSchedulingIgnoredDuringExecution"))...)
	}
	if pa := a.PodAntiAffinity; pa != nil {
		p := fldPath.Child("podAntiAffinity")
		errs = append(errs, validatePodAffinityTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution, p.Child("requiredDuringSchedulingIgnoredDuringExecution"))...)
		errs = append(errs, validateWeightedPodAffinityTerms(pa.PreferredDuringSchedulingIgnoredDuringExecution, p.Child("preferredDuringSchedulingIgnoredDuringExecution"))...)
	}
	return errs
}

func validateWeight(w int32, fldPath *field.Path) field.ErrorList {
	if w < 1 || w > 100 {
		return field.ErrorList{field.Invalid(fldPath, w, "must be in the range 1-100")}
	}
	return nil
}

// ValidateNodeSelector checks a required node affinity selector.
func ValidateNodeSelector(ns *corev1.NodeSelector, fldPath *field.Path) field.ErrorList {
	termsPath := fldPath.Child("nodeSelectorTerms")
	if len(ns.NodeSelectorTerms) == 0 {
		return field.ErrorList{field.Required(termsPath, "must have at least one node selector term")}
	}
	var errs field.ErrorList
	for i, t := range ns.NodeSelectorTerms {
		errs = append(errs, validateNodeSelectorTerm(t, termsPath.Index(i))...)
	}
	return errs
}

func validateNodeSelectorTerm(t corev1.NodeSelectorTerm, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range t.MatchExpressions {
		errs = append(errs, validateNodeSelectorRequirement(r, fldPath.Child("matchExpressions").Index(i))...)
	}
	for i, r := range t.MatchFields {
		p := fldPath.Child("matchFields").Index(i)
		// Only metadata.name is indexable for nodes, and only by
		// equality against a single name.
		if r.Key != "metadata.name" {
			errs = append(errs, field.NotSupported(p.Child("key"), r.Key, []string{"metadata.name"}))
		}
		switch r.Operator {
		case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
			if len(r.Values) != 1 {
				errs = append(errs, field.Required(p.Child("values"), "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"))
			}
		default:
			errs = append(errs, field.Invalid(p.Child("operator"), r.Operator, "not a valid selector operator"))
		}
	}
	return errs
}

func validateNodeSelectorRequirement(r corev1.NodeSelectorRequirement, fldPath *field.Path) field.ErrorList {
	errs := metav1validation.ValidateLabelName(r.Key, fldPath.Child("key"))
	valuesPath := fldPath.Child("values")
	switch r.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(r.Values) == 0 {
			errs = append(errs, field.Required(valuesPath, "must be specified when `operator` is 'In' or 'NotIn'"))
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(r.Values) > 0 {
			errs = append(errs, field.Forbidden(valuesPath, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(r.Values) != 1 {
			errs = append(errs, field.Required(valuesPath, "must be specified single value when `operator` is 'Lt' or 'Gt'"))
		} else if _, err := strconv.ParseInt(r.Values[0], 10, 64); err != nil {
			errs = append(errs, field.Invalid(valuesPath.Index(0), r.Values[0], "must be an integer"))
		}
	default:
		errs = append(errs, field.NotSupported(fldPath.Child("operator"), r.Operator, supportedNodeSelectorOp))
	}
	return errs
}

func validatePodAffinityTerms(terms []corev1.PodAffinityTerm, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range terms {
		errs = append(errs, validatePodAffinityTerm(t, fldPath.Index(i))...)
	}
	return errs
}

func validateWeightedPodAffinityTerms(terms []corev1.WeightedPodAffinityTerm, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range terms {
		p := fldPath.Index(i)
		errs = append(errs, validateWeight(t.Weight, p.Child("weight"))...)
		errs = append(errs, validatePodAffinityTerm(t.PodAffinityTerm, p.Child("podAffinityTerm"))...)
	}
	return errs
}

func validatePodAffinityTerm(t corev1.PodAffinityTerm, fldPath *field.Path) field.ErrorList {
	errs := metav1validation.ValidateLabelSelector(t.LabelSelector, metav1validation.LabelSelectorValidationOptions{}, fldPath.Child("labelSelector"))
	for i, ns := range t.Namespaces {
		for _, msg := range apivalidation.ValidateNamespaceName(ns, false) {
			errs = append(errs, field.Invalid(fldPath.Child("namespaces").Index(i), ns, msg))
		}
	}
	if t.TopologyKey == "" {
		errs = append(errs, field.Required(fldPath.Child("topologyKey"), "can not be empty"))
	} else {
		errs = append(errs, metav1validation.ValidateLabelName(t.TopologyKey, fldPath.Child("topologyKey"))...)
	}
	return errs
}

// ValidateTolerations checks a pod's tolerations.
func ValidateTolerations(tolerations []corev1.Toleration, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range tolerations {
		p := fldPath.Index(i)
		if t.Key != "" {
			errs = append(errs, metav1validation.ValidateLabelName(t.Key, p.Child("key"))...)
		}
		if t.Key == "" && t.Operator != corev1.TolerationOpExists {
			errs = append(errs, field.Invalid(p.Child("operator"), t.Operator,
				"operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(p.Child("effect"), t.Effect,
				"effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			for _, msg := range validation.IsValidLabelValue(t.Value) {
				errs = append(errs, field.Invalid(p.Child("value"), t.Value, msg))
			}
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(p.Child("operator"), t.Value, "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(p.Child("operator"), t.Operator, supportedTolerationOps))
		}
		if t.Effect != "" && !contains(supportedTaintEffects, t.Effect) {
			errs = append(errs, field.NotSupported(p.Child("effect"), t.Effect, supportedTaintEffects))
		}
	}
	return errs
}

// ValidatePodUpdate validates an update of a pod's metadata and spec. As in
// Kubernetes a pod's spec is immutable except for container and init
// container images, activeDeadlineSeconds (set, or shortened) and new
// tolerations appended to the existing ones.
func ValidatePodUpdate(newPod, oldPod *corev1.Pod) field.ErrorList {
	specPath := field.NewPath("spec")
	errs := apivalidation.ValidateObjectMetaUpdate(&newPod.ObjectMeta, &oldPod.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, ValidatePodSpec(&newPod.Spec, specPath)...)

	if len(newPod.Spec.Containers) != len(oldPod.Spec.Containers) ||
		len(newPod.Spec.InitContainers) != len(oldPod.Spec.InitContainers) {
		return append(errs, field.Forbidden(specPath, podUpdateForbiddenMessage))
	}
	if na, oa := newPod.Spec.ActiveDeadlineSeconds, oldPod.Spec.ActiveDeadlineSeconds; oa != nil {
		if na == nil {
			errs = append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), na, "must not update from a positive integer to nil value"))
		} else if *na > *oa {
			errs = append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), *na, "must be less than or equal to previous value"))
		}
	}
	errs = append(errs, validateOnlyAddedTolerations(newPod.Spec.Tolerations, oldPod.Spec.Tolerations, specPath.Child("tolerations"))...)

	// Compare the specs with the mutable fields taken from the new pod: any
	// remaining difference is a change to an immutable field.
	munged := oldPod.Spec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = newPod.Spec.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = newPod.Spec.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = newPod.Spec.ActiveDeadlineSeconds
	munged.Tolerations = newPod.Spec.Tolerations
	if !equality.Semantic.DeepEqual(*munged, newPod.Spec) {
		errs = append(errs, field.Forbidden(specPath, podUpdateForbiddenMessage))
	}
	return errs
}

const podUpdateForbiddenMessage = "pod updates may not change fields other than `spec.containers[*].image`, " +
	"`spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or `spec.tolerations` (only additions to existing tolerations)"

// validateOnlyAddedTolerations allows appending tolerations and shortening
// tolerationSeconds of existing NoExecute ones, nothing else.
func validateOnlyAddedTolerations(newTols, oldTols []corev1.Toleration, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, old := range oldTols {
		found := false
		for _, n := range newTols {
			if n.Key != old.Key || n.Operator != old.Operator || n.Value != old.Value || n.Effect != old.Effect {
				continue
			}
			if old.TolerationSeconds == nil ||
				(n.TolerationSeconds != nil && *n.TolerationSeconds <= *old.TolerationSeconds) {
				found = true
				break
			}
		}
		if !found {
			errs = append(errs, field.Forbidden(fldPath, "existing toleration can not be modified except its tolerationSeconds"))
			break
		}
	}
	return append(errs, ValidateTolerations(newTols, fldPath)...)
}

var supportedPodPhases = []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown}

// ValidatePodStatusUpdate validates a write to pods/status. A pod that has
// terminated (Succeeded or Failed) may not come back to life.
func ValidatePodStatusUpdate(newPod, oldPod *corev1.Pod) field.ErrorList {
	statusPath := field.NewPath("status")
	errs := apivalidation.ValidateObjectMetaUpdate(&newPod.ObjectMeta, &oldPod.ObjectMeta, field.NewPath("metadata"))
	st := newPod.Status
	if st.Phase != "" && !contains(supportedPodPhases, st.Phase) {
		errs = append(errs, field.NotSupported(statusPath.Child("phase"), st.Phase, supportedPodPhases))
	}
	if op := oldPod.Status.Phase; (op == corev1.PodSucceeded || op == corev1.PodFailed) && st.Phase != op {
		errs = append(errs, field.Forbidden(statusPath.Child("phase"), fmt.Sprintf("cannot transition from terminal phase %q to %q", op, st.Phase)))
	}
	if st.PodIP != "" {
		errs = append(errs, validateIP(st.PodIP, statusPath.Child("podIP"))...)
	}
	for i, ip := range st.PodIPs {
		errs = append(errs, validateIP(ip.IP, statusPath.Child("podIPs").Index(i).Child("ip"))...)
	}
	if len(st.PodIPs) > 0 && st.PodIP != "" && st.PodIPs[0].IP != st.PodIP {
		errs = append(errs, field.Invalid(statusPath.Child("podIPs").Index(0).Child("ip"), st.PodIPs[0].IP, "must match `podIP`"))
	}
	if st.HostIP != "" {
		errs = append(errs, validateIP(st.HostIP, statusPath.Child("hostIP"))...)
	}
	for i, ip := range st.HostIPs {
		errs = append(errs, validateIP(ip.IP, statusPath.Child("hostIPs").Index(i).Child("ip"))...)
	}
	if st.NominatedNodeName != "" {
		errs = append(errs, validateDNSSubdomain(st.NominatedNodeName, statusPath.Child("nominatedNodeName"))...)
	}
	for i, c := range st.Conditions {
		errs = append(errs, validateConditionStatus(c.Status, statusPath.Child("conditions").Index(i).Child("status"))...)
	}
	for _, group := range []struct {
		name     string
		statuses []corev1.ContainerStatus
	}{{"initContainerStatuses", st.InitContainerStatuses}, {"containerStatuses", st.ContainerStatuses}} {
		for i, cs := range group.statuses {
			p := statusPath.Child(group.name).Index(i)
			errs = append(errs, validateNonnegative(int64(cs.RestartCount), p.Child("restartCount"))...)
			if cs.Name == "" {
				errs = append(errs, field.Required(p.Child("name"), ""))
			}
		}
	}
	return errs
}

var supportedConditionStatuses = []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown}

func validateConditionStatus(s corev1.ConditionStatus, fldPath *field.Path) field.ErrorList {
	if !contains(supportedConditionStatuses, s) {
		return field.ErrorList{field.NotSupported(fldPath, s, supportedConditionStatuses)}
	}
	return nil
}

// ValidateBinding validates a pods/binding request body.
func ValidateBinding(b *corev1.Binding) field.ErrorList {
	var errs field.ErrorList
	tp := field.NewPath("target")
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		errs = append(errs, field.NotSupported(tp.Child("kind"), b.Target.Kind, []string{"Node", "<empty>"}))
	}
	if b.Target.Name == "" {
		errs = append(errs, field.Required(tp.Child("name"), ""))
	} else {
		errs = append(errs, validateDNSSubdomain(b.Target.Name, tp.Child("name"))...)
	}
	return errs
}

package defaults

import (
	"strings"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Default applies the defaults of obj's type in place. Lists default every
// item. Types without defaults (Lease, Event, ConfigMap, Scale, ...) and
// unknown types are left untouched.
func Default(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		SetDefaultsPod(o)
	case *corev1.PodList:
		for i := range o.Items {
			SetDefaultsPod(&o.Items[i])
		}
	case *corev1.Service:
		SetDefaultsService(o)
	case *corev1.ServiceList:
		for i := range o.Items {
			SetDefaultsService(&o.Items[i])
		}
	case *corev1.Endpoints:
		SetDefaultsEndpoints(o)
	case *corev1.EndpointsList:
		for i := range o.Items {
			SetDefaultsEndpoints(&o.Items[i])
		}
	case *corev1.Secret:
		SetDefaultsSecret(o)
	case *corev1.SecretList:
		for i := range o.Items {
			SetDefaultsSecret(&o.Items[i])
		}
	case *corev1.Namespace:
		SetDefaultsNamespace(o)
	case *corev1.NamespaceList:
		for i := range o.Items {
			SetDefaultsNamespace(&o.Items[i])
		}
	case *corev1.Node:
		SetDefaultsNode(o)
	case *corev1.NodeList:
		for i := range o.Items {
			SetDefaultsNode(&o.Items[i])
		}
	case *appsv1.Deployment:
		SetDefaultsDeployment(o)
	case *appsv1.DeploymentList:
		for i := range o.Items {
			SetDefaultsDeployment(&o.Items[i])
		}
	case *appsv1.ReplicaSet:
		SetDefaultsReplicaSet(o)
	case *appsv1.ReplicaSetList:
		for i := range o.Items {
			SetDefaultsReplicaSet(&o.Items[i])
		}
	}
}

// defaulted lists one prototype of every type Default handles, so the
// scheme registration cannot miss one.
var defaulted = []runtime.Object{
	&corev1.Pod{}, &corev1.PodList{},
	&corev1.Service{}, &corev1.ServiceList{},
	&corev1.Endpoints{}, &corev1.EndpointsList{},
	&corev1.Secret{}, &corev1.SecretList{},
	&corev1.Namespace{}, &corev1.NamespaceList{},
	&corev1.Node{}, &corev1.NodeList{},
	&appsv1.Deployment{}, &appsv1.DeploymentList{},
	&appsv1.ReplicaSet{}, &appsv1.ReplicaSetList{},
}

// RegisterDefaults makes s.Default(obj) apply Default for every defaulted
// type. The types must already be known to s.
func RegisterDefaults(s *runtime.Scheme) error {
	for _, proto := range defaulted {
		s.AddTypeDefaultingFunc(proto, func(o any) {
			if obj, ok := o.(runtime.Object); ok {
				Default(obj)
			}
		})
	}
	return nil
}

// SetDefaultsPod defaults a pod: its spec plus the defaults Kubernetes only
// applies to real pods, not to templates (requests from limits, service
// links, host-network ports).
func SetDefaultsPod(pod *corev1.Pod) {
	SetDefaultsPodSpec(&pod.Spec)
	spec := &pod.Spec
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			defaultRequestsFromLimits(&cs[i].Resources)
		}
	}
	if spec.EnableServiceLinks == nil {
		spec.EnableServiceLinks = ptr(true)
	}
	if spec.HostNetwork {
		// With the host's network namespace the container port is the host
		// port; recording it lets the scheduler see the port conflict.
		for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
			for i := range cs {
				for j := range cs[i].Ports {
					if cs[i].Ports[j].HostPort == 0 {
						cs[i].Ports[j].HostPort = cs[i].Ports[j].ContainerPort
					}
				}
			}
		}
	}
}

// defaultRequestsFromLimits copies a limit to a missing request, so a
// container with only limits is scheduled by what it may use.
func defaultRequestsFromLimits(r *corev1.ResourceRequirements) {
	if len(r.Limits) == 0 {
		return
	}
	for name, limit := range r.Limits {
		if _, ok := r.Requests[name]; ok {
			continue
		}
		if r.Requests == nil {
			r.Requests = corev1.ResourceList{}
		}
		r.Requests[name] = limit.DeepCopy()
	}
}

// SetDefaultsPodSpec defaults a pod spec, whether in a pod or a template.
func SetDefaultsPodSpec(spec *corev1.PodSpec) {
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = ptr(corev1.DefaultTerminationGracePeriodSeconds)
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}
	// serviceAccount is the deprecated alias of serviceAccountName: the new
	// field wins, the old one mirrors it, as Kubernetes' conversion does.
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = spec.DeprecatedServiceAccount
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName

	for i := range spec.Volumes {
		setDefaultsVolume(&spec.Volumes[i])
	}
	for i := range spec.InitContainers {
		SetDefaultsContainer(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		SetDefaultsContainer(&spec.Containers[i])
	}
}

// SetDefaultsContainer defaults one container.
func SetDefaultsContainer(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = defaultPullPolicy(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil && vf.FieldRef != nil && vf.FieldRef.APIVersion == "" {
			vf.FieldRef.APIVersion = "v1"
		}
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if p != nil {
			setDefaultsProbe(p)
		}
	}
	if l := c.Lifecycle; l != nil {
		for _, h := range []*corev1.LifecycleHandler{l.PostStart, l.PreStop} {
			if h != nil {
				setDefaultsHTTPGet(h.HTTPGet)
			}
		}
	}
}

// defaultPullPolicy is Always for a floating tag (":latest" or none, which
// means latest) and IfNotPresent for a pinned tag or digest.
func defaultPullPolicy(image string) corev1.PullPolicy {
	if image == "" || strings.Contains(image, "@") {
		return corev1.PullIfNotPresent
	}
	// The tag is after the last ':' of the last path component; an earlier
	// ':' belongs to a registry host:port.
	last := image[strings.LastIndex(image, "/")+1:]
	tag := ""
	if i := strings.LastIndex(last, ":"); i >= 0 {
		tag = last[i+1:]
	}
	if tag == "" || tag == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

func setDefaultsProbe(p *corev1.Probe) {
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	setDefaultsHTTPGet(p.HTTPGet)
}

func setDefaultsHTTPGet(h *corev1.HTTPGetAction) {
	if h == nil {
		return
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = corev1.URISchemeHTTP
	}
}

func setDefaultsVolume(v *corev1.Volume) {
	src := &v.VolumeSource
	// A volume with no source is an emptyDir, as in Kubernetes.
	if src.HostPath == nil && src.EmptyDir == nil && src.Secret == nil && src.ConfigMap == nil &&
		src.DownwardAPI == nil && src.Projected == nil {
		src.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	if src.HostPath != nil && src.HostPath.Type == nil {
		src.HostPath.Type = ptr(corev1.HostPathUnset)
	}
	if src.ConfigMap != nil && src.ConfigMap.DefaultMode == nil {
		src.ConfigMap.DefaultMode = ptr(corev1.ConfigMapVolumeSourceDefaultMode)
	}
	if src.Secret != nil && src.Secret.DefaultMode == nil {
		src.Secret.DefaultMode = ptr(corev1.SecretVolumeSourceDefaultMode)
	}
	if d := src.DownwardAPI; d != nil {
		if d.DefaultMode == nil {
			d.DefaultMode = ptr(corev1.DownwardAPIVolumeSourceDefaultMode)
		}
		setDefaultsDownwardAPIFiles(d.Items)
	}
	if p := src.Projected; p != nil {
		if p.DefaultMode == nil {
			p.DefaultMode = ptr(corev1.ProjectedVolumeSourceDefaultMode)
		}
		for i := range p.Sources {
			if d := p.Sources[i].DownwardAPI; d != nil {
				setDefaultsDownwardAPIFiles(d.Items)
			}
		}
	}
}

// setDefaultsDownwardAPIFiles defaults fieldRef.apiVersion to v1, as for env.
func setDefaultsDownwardAPIFiles(items []corev1.DownwardAPIVolumeFile) {
	for i := range items {
		if fr := items[i].FieldRef; fr != nil && fr.APIVersion == "" {
			fr.APIVersion = "v1"
		}
	}
}

// SetDefaultsService defaults a service. ClusterIP and node ports are
// allocated by the API server, not here.
func SetDefaultsService(svc *corev1.Service) {
	spec := &svc.Spec
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	if spec.SessionAffinity == corev1.ServiceAffinityNone {
		spec.SessionAffinityConfig = nil
	}
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP &&
		(spec.SessionAffinityConfig == nil || spec.SessionAffinityConfig.ClientIP == nil || spec.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil) {
		spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{
			ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(corev1.DefaultClientIPServiceAffinitySeconds)},
		}
	}
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0 ||
			p.TargetPort.Type == intstr.String && p.TargetPort.StrVal == "" {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if spec.ExternalTrafficPolicy == "" &&
		(spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer) {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.Type != corev1.ServiceTypeExternalName {
		if spec.InternalTrafficPolicy == nil {
			spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyCluster)
		}
		// minik8s is IPv4 single-stack; Kubernetes fills these in its
		// service registry, we do it here so every path gets them.
		if spec.IPFamilyPolicy == nil {
			spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicySingleStack)
		}
		if len(spec.IPFamilies) == 0 {
			spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}
	}
}

// SetDefaultsEndpoints defaults endpoint port protocols to TCP.
func SetDefaultsEndpoints(ep *corev1.Endpoints) {
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if ep.Subsets[i].Ports[j].Protocol == "" {
				ep.Subsets[i].Ports[j].Protocol = corev1.ProtocolTCP
			}
		}
	}
}

// SetDefaultsSecret defaults the secret type to Opaque.
func SetDefaultsSecret(s *corev1.Secret) {
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
}

// SetDefaultsNamespace sets phase Active and, for a namespace that has not
// been stored yet, the "kubernetes" spec finalizer.
//
// The finalizer is only added while metadata.creationTimestamp is unset
// (i.e. on a create request): the namespace controller empties
// spec.finalizers through namespaces/{name}/finalize with an object read
// from the server, and re-adding the finalizer there would make the
// namespace undeletable.
func SetDefaultsNamespace(ns *corev1.Namespace) {
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
	if ns.CreationTimestamp.IsZero() && ns.DeletionTimestamp == nil && len(ns.Spec.Finalizers) == 0 {
		ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
	}
}

// SetDefaultsNode makes allocatable equal capacity when the kubelet reports
// only capacity.
func SetDefaultsNode(n *corev1.Node) {
	if n.Status.Allocatable == nil && n.Status.Capacity != nil {
		n.Status.Allocatable = make(corev1.ResourceList, len(n.Status.Capacity))
		for k, v := range n.Status.Capacity {
			n.Status.Allocatable[k] = v.DeepCopy()
		}
	}
}

// SetDefaultsDeployment defaults a deployment and its pod template.
func SetDefaultsDeployment(d *appsv1.Deployment) {
	spec := &d.Spec
	if spec.Replicas == nil {
		spec.Replicas = ptr(int32(1))
	}
	if spec.Strategy.Type == "" {
		spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if spec.Strategy.RollingUpdate == nil {
			spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		ru := spec.Strategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = ptr(intstr.FromString("25%"))
		}
		if ru.MaxSurge == nil {
			ru.MaxSurge = ptr(intstr.FromString("25%"))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = ptr(int32(10))
	}
	if spec.ProgressDeadlineSeconds == nil {
		spec.ProgressDeadlineSeconds = ptr(int32(600))
	}
	SetDefaultsPodSpec(&spec.Template.Spec)
}

// SetDefaultsReplicaSet defaults a replica set and its pod template.
func SetDefaultsReplicaSet(rs *appsv1.ReplicaSet) {
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = ptr(int32(1))
	}
	SetDefaultsPodSpec(&rs.Spec.Template.Spec)
}

func ptr[T any](v T) *T { return &v }

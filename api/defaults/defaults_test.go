package defaults

import (
	"reflect"
	"testing"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDefaultPullPolicy(t *testing.T) {
	tests := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"busybox", corev1.PullAlways},
		{"busybox:latest", corev1.PullAlways},
		{"busybox:1.35", corev1.PullIfNotPresent},
		{"minik8s.local/web:v1", corev1.PullIfNotPresent},
		{"registry:5000/web", corev1.PullAlways},
		{"registry:5000/web:latest", corev1.PullAlways},
		{"registry:5000/team/web:v2", corev1.PullIfNotPresent},
		{"web@sha256:0123456789abcdef", corev1.PullIfNotPresent},
		{"web:latest@sha256:0123456789abcdef", corev1.PullIfNotPresent},
		{"", corev1.PullIfNotPresent},
	}
	for _, tt := range tests {
		if got := defaultPullPolicy(tt.image); got != tt.want {
			t.Errorf("defaultPullPolicy(%q) = %q, want %q", tt.image, got, tt.want)
		}
	}
}

func TestPodDefaults(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "none"},
				{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp"}}},
				{Name: "dapi", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
				{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}}}}}},
			},
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1.35"}},
			Containers: []corev1.Container{{
				Name:  "web",
				Image: "web",
				Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				Env: []corev1.EnvVar{{Name: "N", ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
				},
				LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, PeriodSeconds: 2, FailureThreshold: 7},
			}},
			DeprecatedServiceAccount: "builder",
		},
	}
	Default(pod)
	spec := pod.Spec
	checks := []struct {
		field string
		got   any
		want  any
	}{
		{"spec.restartPolicy", spec.RestartPolicy, corev1.RestartPolicyAlways},
		{"spec.dnsPolicy", spec.DNSPolicy, corev1.DNSClusterFirst},
		{"spec.schedulerName", spec.SchedulerName, "default-scheduler"},
		{"spec.terminationGracePeriodSeconds", *spec.TerminationGracePeriodSeconds, int64(30)},
		{"spec.enableServiceLinks", *spec.EnableServiceLinks, true},
		{"spec.securityContext", *spec.SecurityContext, corev1.PodSecurityContext{}},
		{"spec.serviceAccountName", spec.ServiceAccountName, "builder"},
		{"spec.serviceAccount", spec.DeprecatedServiceAccount, "builder"},
		{"spec.volumes[0].emptyDir", spec.Volumes[0].EmptyDir != nil, true},
		{"spec.volumes[1].configMap.defaultMode", *spec.Volumes[1].ConfigMap.DefaultMode, int32(0644)},
		{"spec.volumes[2].secret.defaultMode", *spec.Volumes[2].Secret.DefaultMode, int32(0644)},
		{"spec.volumes[3].hostPath.type", *spec.Volumes[3].HostPath.Type, corev1.HostPathUnset},
		{"spec.volumes[4].downwardAPI.defaultMode", *spec.Volumes[4].DownwardAPI.DefaultMode, int32(0644)},
		{"spec.volumes[4].downwardAPI.items[0].fieldRef.apiVersion", spec.Volumes[4].DownwardAPI.Items[0].FieldRef.APIVersion, "v1"},
		{"spec.volumes[4].emptyDir", spec.Volumes[4].EmptyDir == nil, true},
		{"spec.volumes[5].projected.defaultMode", *spec.Volumes[5].Projected.DefaultMode, int32(0644)},
		{"spec.volumes[5].projected.sources[0].downwardAPI.items[0].fieldRef.apiVersion", spec.Volumes[5].Projected.Sources[0].DownwardAPI.Items[0].FieldRef.APIVersion, "v1"},
		{"spec.initContainers[0].imagePullPolicy", spec.InitContainers[0].ImagePullPolicy, corev1.PullIfNotPresent},
		{"spec.initContainers[0].terminationMessagePath", spec.InitContainers[0].TerminationMessagePath, "/dev/termination-log"},
		{"spec.containers[0].imagePullPolicy", spec.Containers[0].ImagePullPolicy, corev1.PullAlways},
		{"spec.containers[0].terminationMessagePath", spec.Containers[0].TerminationMessagePath, "/dev/termination-log"},
		{"spec.containers[0].terminationMessagePolicy", spec.Containers[0].TerminationMessagePolicy, corev1.TerminationMessageReadFile},
		{"spec.containers[0].ports[0].protocol", spec.Containers[0].Ports[0].Protocol, corev1.ProtocolTCP},
		{"spec.containers[0].ports[0].hostPort", spec.Containers[0].Ports[0].HostPort, int32(0)},
		{"spec.containers[0].env[0].valueFrom.fieldRef.apiVersion", spec.Containers[0].Env[0].ValueFrom.FieldRef.APIVersion, "v1"},
		{"requests.cpu kept", spec.Containers[0].Resources.Requests.Cpu().String(), "100m"},
		{"requests.memory from limit", spec.Containers[0].Resources.Requests.Memory().String(), "1Gi"},
		{"livenessProbe.timeoutSeconds", spec.Containers[0].LivenessProbe.TimeoutSeconds, int32(1)},
		{"livenessProbe.periodSeconds", spec.Containers[0].LivenessProbe.PeriodSeconds, int32(10)},
		{"livenessProbe.successThreshold", spec.Containers[0].LivenessProbe.SuccessThreshold, int32(1)},
		{"livenessProbe.failureThreshold", spec.Containers[0].LivenessProbe.FailureThreshold, int32(3)},
		{"livenessProbe.httpGet.path", spec.Containers[0].LivenessProbe.HTTPGet.Path, "/"},
		{"livenessProbe.httpGet.scheme", spec.Containers[0].LivenessProbe.HTTPGet.Scheme, corev1.URISchemeHTTP},
		{"readinessProbe.periodSeconds kept", spec.Containers[0].ReadinessProbe.PeriodSeconds, int32(2)},
		{"readinessProbe.failureThreshold kept", spec.Containers[0].ReadinessProbe.FailureThreshold, int32(7)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
}

func TestPodDefaultsKeepExplicitValues(t *testing.T) {
	grace := int64(5)
	links := false
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		DNSPolicy:                     corev1.DNSDefault,
		SchedulerName:                 "mine",
		TerminationGracePeriodSeconds: &grace,
		EnableServiceLinks:            &links,
		HostNetwork:                   true,
		Containers: []corev1.Container{{
			Name: "c", Image: "web:latest", ImagePullPolicy: corev1.PullNever,
			Ports: []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolUDP}},
		}},
	}}
	Default(pod)
	s := pod.Spec
	if s.RestartPolicy != corev1.RestartPolicyNever || s.DNSPolicy != corev1.DNSDefault || s.SchedulerName != "mine" ||
		*s.TerminationGracePeriodSeconds != 5 || *s.EnableServiceLinks || s.Containers[0].ImagePullPolicy != corev1.PullNever ||
		s.Containers[0].Ports[0].Protocol != corev1.ProtocolUDP {
		t.Errorf("explicit values overwritten: %+v", s)
	}
	if hp := s.Containers[0].Ports[0].HostPort; hp != 8080 {
		t.Errorf("hostNetwork pod: hostPort = %d, want containerPort 8080", hp)
	}
}

func TestServiceDefaults(t *testing.T) {
	tests := []struct {
		name  string
		in    corev1.ServiceSpec
		check func(t *testing.T, s corev1.ServiceSpec)
	}{
		{
			name: "cluster IP minimal",
			in:   corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
			check: func(t *testing.T, s corev1.ServiceSpec) {
				if s.Type != corev1.ServiceTypeClusterIP || s.SessionAffinity != corev1.ServiceAffinityNone {
					t.Errorf("type/affinity = %q/%q", s.Type, s.SessionAffinity)
				}
				if s.Ports[0].Protocol != corev1.ProtocolTCP || s.Ports[0].TargetPort != intstr.FromInt32(80) {
					t.Errorf("port = %+v", s.Ports[0])
				}
				if s.ExternalTrafficPolicy != "" {
					t.Errorf("externalTrafficPolicy = %q on ClusterIP, want empty", s.ExternalTrafficPolicy)
				}
				if *s.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyCluster ||
					*s.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack ||
					!reflect.DeepEqual(s.IPFamilies, []corev1.IPFamily{corev1.IPv4Protocol}) {
					t.Errorf("traffic/family defaults = %v %v %v", *s.InternalTrafficPolicy, *s.IPFamilyPolicy, s.IPFamilies)
				}
			},
		},
		{
			name: "named target port kept, UDP kept",
			in:   corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")}}},
			check: func(t *testing.T, s corev1.ServiceSpec) {
				if s.Ports[0].TargetPort != intstr.FromString("dns") || s.Ports[0].Protocol != corev1.ProtocolUDP {
					t.Errorf("port = %+v", s.Ports[0])
				}
			},
		},
		{
			name: "node port gets external traffic policy",
			in:   corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}},
			check: func(t *testing.T, s corev1.ServiceSpec) {
				if s.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster {
					t.Errorf("externalTrafficPolicy = %q", s.ExternalTrafficPolicy)
				}
			},
		},
		{
			name: "external name gets no IP families",
			in:   corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"},
			check: func(t *testing.T, s corev1.ServiceSpec) {
				if s.IPFamilyPolicy != nil || s.IPFamilies != nil || s.InternalTrafficPolicy != nil {
					t.Errorf("ExternalName got %v %v %v", s.IPFamilyPolicy, s.IPFamilies, s.InternalTrafficPolicy)
				}
			},
		},
		{
			name: "client IP affinity gets timeout",
			in:   corev1.ServiceSpec{SessionAffinity: corev1.ServiceAffinityClientIP},
			check: func(t *testing.T, s corev1.ServiceSpec) {
				if s.SessionAffinityConfig == nil || *s.SessionAffinityConfig.ClientIP.TimeoutSeconds != 10800 {
					t.Errorf("sessionAffinityConfig = %+v", s.SessionAffinityConfig)
				}
			},
		},
		{
			name: "no affinity drops affinity config",
			in:   corev1.ServiceSpec{SessionAffinityConfig: &corev1.SessionAffinityConfig{}},
			check: func(t *testing.T, s corev1.ServiceSpec) {
				if s.SessionAffinityConfig != nil {
					t.Errorf("sessionAffinityConfig kept: %+v", s.SessionAffinityConfig)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &corev1.Service{Spec: tt.in}
			Default(svc)
			tt.check(t, svc.Spec)
		})
	}
}

func TestNamespaceDefaults(t *testing.T) {
	tests := []struct {
		name           string
		ns             corev1.Namespace
		wantFinalizers []corev1.FinalizerName
		wantPhase      corev1.NamespacePhase
	}{
		{"new namespace", corev1.Namespace{}, []corev1.FinalizerName{"kubernetes"}, corev1.NamespaceActive},
		{"stored namespace being finalized keeps empty finalizers",
			corev1.Namespace{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.Now()}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
			nil, corev1.NamespaceTerminating},
		{"explicit finalizers kept",
			corev1.Namespace{Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/x"}}},
			[]corev1.FinalizerName{"example.com/x"}, corev1.NamespaceActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := tt.ns.DeepCopy()
			Default(ns)
			if !reflect.DeepEqual(ns.Spec.Finalizers, tt.wantFinalizers) || ns.Status.Phase != tt.wantPhase {
				t.Errorf("got finalizers %v phase %q, want %v %q", ns.Spec.Finalizers, ns.Status.Phase, tt.wantFinalizers, tt.wantPhase)
			}
		})
	}
}

func TestDeploymentDefaults(t *testing.T) {
	tests := []struct {
		name  string
		in    appsv1.DeploymentSpec
		check func(t *testing.T, s appsv1.DeploymentSpec)
	}{
		{
			name: "empty",
			in:   appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "web:v1"}}}}},
			check: func(t *testing.T, s appsv1.DeploymentSpec) {
				if *s.Replicas != 1 || *s.RevisionHistoryLimit != 10 || *s.ProgressDeadlineSeconds != 600 {
					t.Errorf("replicas/history/deadline = %d/%d/%d", *s.Replicas, *s.RevisionHistoryLimit, *s.ProgressDeadlineSeconds)
				}
				if s.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
					*s.Strategy.RollingUpdate.MaxSurge != intstr.FromString("25%") ||
					*s.Strategy.RollingUpdate.MaxUnavailable != intstr.FromString("25%") {
					t.Errorf("strategy = %+v", s.Strategy)
				}
				ps := s.Template.Spec
				if ps.RestartPolicy != corev1.RestartPolicyAlways || ps.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
					t.Errorf("template not defaulted: %+v", ps)
				}
				// Kubernetes leaves pod-only defaults out of templates.
				if ps.EnableServiceLinks != nil {
					t.Errorf("template got enableServiceLinks")
				}
			},
		},
		{
			name: "partial rolling update keeps given value",
			in: appsv1.DeploymentSpec{Replicas: ptr(int32(0)), Strategy: appsv1.DeploymentStrategy{
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptr(intstr.FromInt32(2))}}},
			check: func(t *testing.T, s appsv1.DeploymentSpec) {
				if *s.Replicas != 0 {
					t.Errorf("replicas 0 overwritten with %d", *s.Replicas)
				}
				if *s.Strategy.RollingUpdate.MaxSurge != intstr.FromInt32(2) || *s.Strategy.RollingUpdate.MaxUnavailable != intstr.FromString("25%") {
					t.Errorf("rollingUpdate = %+v", s.Strategy.RollingUpdate)
				}
			},
		},
		{
			name: "recreate gets no rolling update",
			in:   appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}},
			check: func(t *testing.T, s appsv1.DeploymentSpec) {
				if s.Strategy.RollingUpdate != nil {
					t.Errorf("rollingUpdate = %+v", s.Strategy.RollingUpdate)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &appsv1.Deployment{Spec: tt.in}
			Default(d)
			tt.check(t, d.Spec)
		})
	}
}

func TestOtherDefaults(t *testing.T) {
	rs := &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}}}
	Default(rs)
	if *rs.Spec.Replicas != 1 || rs.Spec.Template.Spec.DNSPolicy != corev1.DNSClusterFirst {
		t.Errorf("replicaset: %+v", rs.Spec)
	}

	sec := &corev1.Secret{}
	Default(sec)
	if sec.Type != corev1.SecretTypeOpaque {
		t.Errorf("secret type = %q", sec.Type)
	}

	node := &corev1.Node{Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}}}
	Default(node)
	if node.Status.Allocatable.Pods().Value() != 110 {
		t.Errorf("allocatable = %v", node.Status.Allocatable)
	}

	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 80}}}}}
	Default(ep)
	if ep.Subsets[0].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("endpoint protocol = %q", ep.Subsets[0].Ports[0].Protocol)
	}

	list := &corev1.PodList{Items: []corev1.Pod{{}, {}}}
	Default(list)
	for i, p := range list.Items {
		if p.Spec.RestartPolicy != corev1.RestartPolicyAlways {
			t.Errorf("list item %d not defaulted", i)
		}
	}

	// Types without defaults stay untouched.
	cm := &corev1.ConfigMap{}
	Default(cm)
	if !reflect.DeepEqual(cm, &corev1.ConfigMap{}) {
		t.Errorf("configmap changed: %+v", cm)
	}
}

// TestIdempotent: defaulting an already defaulted object changes nothing.
func TestIdempotent(t *testing.T) {
	objs := []runtime.Object{
		&corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}}}},
		&corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, SessionAffinity: corev1.ServiceAffinityClientIP, Ports: []corev1.ServicePort{{Port: 1}}}},
		&appsv1.Deployment{},
		&corev1.Namespace{},
	}
	for _, o := range objs {
		Default(o)
		once := o.DeepCopyObject()
		Default(o)
		if !reflect.DeepEqual(once, o) {
			t.Errorf("%T: second Default changed the object\n once: %+v\ntwice: %+v", o, once, o)
		}
	}
}

func TestRegisterDefaults(t *testing.T) {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := RegisterDefaults(s); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	s.Default(pod)
	if pod.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("scheme.Default did not apply pod defaults")
	}
}

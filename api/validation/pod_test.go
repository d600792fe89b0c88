package validation

import (
	"testing"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValidatePod(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   []string
	}{
		{name: "valid", mutate: func(p *corev1.Pod) {}},
		{name: "valid with affinity, tolerations, env sources", mutate: func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{
				NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "cpus", Operator: corev1.NodeSelectorOpGt, Values: []string{"2"}}},
						MatchFields:      []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}},
					}}}},
				PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, TopologyKey: "kubernetes.io/hostname"}}},
			}
			p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists},
				{Key: "k", Operator: corev1.TolerationOpEqual, Value: "v", Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(5))}}
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env,
				corev1.EnvVar{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}},
				corev1.EnvVar{Name: "TIER", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels['tier']"}}},
				corev1.EnvVar{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "pw"}}})
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), "example.com/gpu": resource.MustParse("1")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
			}
		}},
		{name: "bad name", mutate: func(p *corev1.Pod) { p.Name = "Web_1" },
			want: []string{"metadata.name: Invalid value"}},
		{name: "no namespace", mutate: func(p *corev1.Pod) { p.Namespace = "" },
			want: []string{"metadata.namespace: Required value"}},
		{name: "no containers", mutate: func(p *corev1.Pod) { p.Spec.Containers = nil },
			want: []string{"spec.containers: Required value"}},
		{name: "missing image", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" },
			want: []string{"spec.containers[0].image: Required value"}},
		{name: "container name not a DNS label", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Name = "Web" },
			want: []string{"spec.containers[0].name: Invalid value"}},
		{name: "duplicate container name across init and regular", mutate: func(p *corev1.Pod) {
			c := p.Spec.Containers[0]
			c.ReadinessProbe = nil
			c.Ports = nil
			p.Spec.InitContainers = []corev1.Container{c}
		}, want: []string{"spec.containers[0].name: Duplicate value"}},
		{name: "init container probe forbidden", mutate: func(p *corev1.Pod) {
			c := p.Spec.Containers[0]
			c.Name = "init"
			c.Ports = nil
			p.Spec.InitContainers = []corev1.Container{c}
		}, want: []string{"spec.initContainers[0].readinessProbe: Forbidden"}},
		{name: "port out of range and bad protocol", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 70000, Protocol: "ICMP"}, {ContainerPort: 80, HostPort: -1, Protocol: corev1.ProtocolTCP}}
		}, want: []string{"spec.containers[0].ports[0].containerPort: Invalid value", "spec.containers[0].ports[0].protocol: Unsupported value",
			"spec.containers[0].ports[1].hostPort: Invalid value"}},
		{name: "duplicate host port", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80, Protocol: corev1.ProtocolTCP}, {ContainerPort: 81, HostPort: 80, Protocol: corev1.ProtocolTCP}}
			p.Spec.Containers[0].ReadinessProbe = nil
		}, want: []string{"spec.containers[0].ports[1].hostPort: Duplicate value"}},
		{name: "host network port mismatch", mutate: func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports[0].HostPort = 9090
		}, want: []string{"spec.containers[0].ports[0].hostPort: Invalid value"}},
		{name: "restart policy", mutate: func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" },
			want: []string{"spec.restartPolicy: Unsupported value"}},
		{name: "pull policy", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = "" },
			want: []string{"spec.containers[0].imagePullPolicy: Required value"}},
		{name: "env name and valueFrom", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{
				{Name: ""},
				{Name: "A=B"},
				{Name: "X", Value: "v", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.containers"}}},
				{Name: "Y", ValueFrom: &corev1.EnvVarSource{}},
				{Name: "Z", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "bad/key"}}},
			}
		}, want: []string{"spec.containers[0].env[0].name: Required value", "spec.containers[0].env[1].name: Invalid value",
			"spec.containers[0].env[2].valueFrom: Invalid value", "spec.containers[0].env[2].valueFrom.fieldRef.fieldPath: Unsupported value",
			"spec.containers[0].env[3].valueFrom: Invalid value",
			"spec.containers[0].env[4].valueFrom.configMapKeyRef.name: Required value", "spec.containers[0].env[4].valueFrom.configMapKeyRef.key: Invalid value"}},
		{name: "envFrom needs one source", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{}, {ConfigMapRef: &corev1.ConfigMapEnvSource{}}}
		}, want: []string{"spec.containers[0].envFrom[0]: Invalid value", "spec.containers[0].envFrom[1].configMapRef.name: Required value"}},
		{name: "volume names unique and one source", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes,
				corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				corev1.Volume{Name: "two", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}, HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}},
				corev1.Volume{Name: "none"},
				corev1.Volume{Name: "", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			)
		}, want: []string{"spec.volumes[2].name: Duplicate value", "spec.volumes[3].emptyDir: Forbidden",
			"spec.volumes[4]: Required value", "spec.volumes[5].name: Required value"}},
		{name: "volume sources checked", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes,
				corev1.Volume{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Type: ptr(corev1.HostPathType("Dir"))}}},
				corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{DefaultMode: ptr(int32(01000)),
					Items: []corev1.KeyToPath{{Key: "k", Path: "../etc/passwd"}}}}},
				corev1.Volume{Name: "e", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: "Disk"}}},
			)
		}, want: []string{"spec.volumes[2].hostPath.path: Required value", "spec.volumes[2].hostPath.type: Unsupported value",
			"spec.volumes[3].secret.secretName: Required value", "spec.volumes[3].secret.defaultMode: Invalid value",
			"spec.volumes[3].secret.items[0].path: Invalid value", "spec.volumes[4].emptyDir.medium: Unsupported value"}},
		{name: "valid downwardAPI and projected volumes", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes,
				corev1.Volume{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
					DefaultMode: ptr(int32(0644)), Items: []corev1.DownwardAPIVolumeFile{
						{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels"}},
						{Path: "dir/tier", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels['tier']"}, Mode: ptr(int32(0400))},
						{Path: "mem", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "web", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
					}}}},
				corev1.Volume{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					DefaultMode: ptr(int32(0640)), Sources: []corev1.VolumeProjection{
						{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}},
						{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "c"},
							Items: []corev1.KeyToPath{{Key: "a", Path: "cfg/a"}}, Optional: ptr(true)}},
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
							{Path: "uid", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.uid"}}}}},
					}}}},
			)
		}},
		{name: "downwardAPI volume files checked", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes,
				corev1.Volume{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
					DefaultMode: ptr(int32(01000)), Items: []corev1.DownwardAPIVolumeFile{
						{Path: "../up", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}},
						{Path: "/abs", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}},
						{Path: "..data", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}},
						{Path: "ip", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}},
						{Path: "none"},
						{Path: "both", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"},
							ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "web", Resource: "limits.cpu"}},
						{Path: "disk", ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.ephemeral-storage"}},
						{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v2", FieldPath: "metadata.name"}, Mode: ptr(int32(-1))},
					}}}},
			)
		}, want: []string{"spec.volumes[2].downwardAPI.defaultMode: Invalid value",
			"spec.volumes[2].downwardAPI.items[0].path: Invalid value", "spec.volumes[2].downwardAPI.items[1].path: Invalid value",
			"spec.volumes[2].downwardAPI.items[2].path: Invalid value", "spec.volumes[2].downwardAPI.items[3].fieldRef.fieldPath: Unsupported value",
			"spec.volumes[2].downwardAPI.items[4]: Required value", "spec.volumes[2].downwardAPI.items[5]: Invalid value",
			"spec.volumes[2].downwardAPI.items[6].resourceFieldRef.containerName: Required value",
			"spec.volumes[2].downwardAPI.items[6].resourceFieldRef.resource: Unsupported value",
			"spec.volumes[2].downwardAPI.items[7].path: Required value", "spec.volumes[2].downwardAPI.items[7].mode: Invalid value",
			"spec.volumes[2].downwardAPI.items[7].fieldRef.apiVersion: Unsupported value"}},
		{name: "projected sources checked", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes,
				corev1.Volume{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}},
						ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}},
					{Secret: &corev1.SecretProjection{Items: []corev1.KeyToPath{{Key: "k", Path: "x"}}}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "c"},
						Items: []corev1.KeyToPath{{Key: "k", Path: "x"}, {Key: "j", Path: "/etc/x"}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "a/../b", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}}}},
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
				}}}},
				corev1.Volume{Name: "two", VolumeSource: corev1.VolumeSource{
					DownwardAPI: &corev1.DownwardAPIVolumeSource{},
					Projected:   &corev1.ProjectedVolumeSource{}}},
			)
		}, want: []string{"spec.volumes[2].projected.sources[0]: Required value",
			"spec.volumes[2].projected.sources[1].configMap: Forbidden",
			"spec.volumes[2].projected.sources[2].secret.name: Required value",
			"spec.volumes[2].projected.sources[3].configMap.items[0].path: Invalid value",
			"spec.volumes[2].projected.sources[3].configMap.items[1].path: Invalid value",
			"spec.volumes[2].projected.sources[4].downwardAPI.items[0].path: Invalid value",
			"spec.volumes[2].projected.sources[4].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value",
			"spec.volumes[2].projected.sources[5].serviceAccountToken: Forbidden",
			"spec.volumes[3].projected: Forbidden"}},
		{name: "volume mount refers to missing volume", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts,
				corev1.VolumeMount{Name: "data", MountPath: "/data"},
				corev1.VolumeMount{Name: "scratch", MountPath: "/etc/web", SubPath: "/abs"})
		}, want: []string{"spec.containers[0].volumeMounts[1].name: Not found", "spec.containers[0].volumeMounts[2].mountPath: Invalid value",
			"spec.containers[0].volumeMounts[2].subPath: Invalid value"}},
		{name: "probe with two handlers and bad thresholds", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{
				ProbeHandler:   corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}, TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 2, FailureThreshold: 3,
			}
			p.Spec.Containers[0].ReadinessProbe.TerminationGracePeriodSeconds = ptr(int64(3))
		}, want: []string{"spec.containers[0].livenessProbe.tcpSocket: Forbidden", "spec.containers[0].livenessProbe.successThreshold: Invalid value",
			"spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value"}},
		{name: "lifecycle hooks: two handlers, empty, sleep beyond the grace period, on an init container", mutate: func(p *corev1.Pod) {
			p.Spec.TerminationGracePeriodSeconds = ptr(int64(5))
			p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{
				PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}, Sleep: &corev1.SleepAction{Seconds: 1}},
				PreStop:   &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 10}},
			}
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1.35", ImagePullPolicy: corev1.PullIfNotPresent,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile, TerminationMessagePath: "/dev/termination-log",
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{}}}}
		}, want: []string{"spec.containers[0].lifecycle.postStart.sleep: Forbidden", "spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value",
			"spec.initContainers[0].lifecycle: Forbidden"}},
		{name: "probe without handler, bad port name", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
			p.Spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromString("not_a_port_name")
		}, want: []string{"spec.containers[0].livenessProbe: Required value", "spec.containers[0].readinessProbe.httpGet.port: Invalid value"}},
		{name: "requests above limits", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi"), corev1.ResourceCPU: resource.MustParse("-1"), "bogus": resource.MustParse("1")},
			}
		}, want: []string{"spec.containers[0].resources.requests[memory]: Invalid value", "spec.containers[0].resources.requests[cpu]: Invalid value",
			"spec.containers[0].resources.requests[bogus]: Invalid value"}},
		{name: "tolerations", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{
				{Operator: corev1.TolerationOpEqual, Value: "x"},
				{Key: "k", Operator: corev1.TolerationOpExists, Value: "x"},
				{Key: "k", TolerationSeconds: ptr(int64(1)), Effect: corev1.TaintEffectNoSchedule},
				{Key: "k", Operator: "Like", Effect: "Never"},
			}
		}, want: []string{"spec.tolerations[0].operator: Invalid value", "spec.tolerations[1].operator: Invalid value",
			"spec.tolerations[2].effect: Invalid value", "spec.tolerations[3].operator: Unsupported value", "spec.tolerations[3].effect: Unsupported value"}},
		{name: "affinity", mutate: func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{
				NodeAffinity: &corev1.NodeAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{},
					PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 0, Preference: corev1.NodeSelectorTerm{
						MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn}, {Key: "n", Operator: corev1.NodeSelectorOpLt, Values: []string{"1.5"}}}}}},
				},
				PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{}}},
			}
		}, want: []string{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value",
			"spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value",
			"spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].values: Required value",
			"spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[1].values[0]: Invalid value",
			"spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value"}},
		{name: "dns none needs config", mutate: func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone },
			want: []string{"spec.dnsConfig: Required value"}},
		{name: "misc spec fields", mutate: func(p *corev1.Pod) {
			p.Spec.ActiveDeadlineSeconds = ptr(int64(0))
			p.Spec.TerminationGracePeriodSeconds = ptr(int64(-1))
			p.Spec.NodeName = "Node_1"
			p.Spec.Hostname = "a.b"
			p.Spec.NodeSelector = map[string]string{"bad key!": "v"}
			p.Spec.HostAliases = []corev1.HostAlias{{IP: "300.1.1.1"}}
		}, want: []string{"spec.activeDeadlineSeconds: Invalid value", "spec.terminationGracePeriodSeconds: Invalid value",
			"spec.nodeName: Invalid value", "spec.hostname: Invalid value", "spec.nodeSelector: Invalid value", "spec.hostAliases[0].ip: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPod()
			tt.mutate(p)
			expectErrors(t, ValidatePod(p), tt.want...)
			// The generic entry point must agree with the per-kind one.
			expectErrors(t, ValidateCreate(p), tt.want...)
		})
	}
}

// TestPodErrorMessages pins complete messages for the most common mistakes,
// as users see them in `kubectl apply` output.
func TestPodErrorMessages(t *testing.T) {
	p := validPod()
	p.Spec.Containers[0].Image = ""
	errs := ValidatePod(p)
	if len(errs) != 1 || errs[0].Error() != "spec.containers[0].image: Required value" {
		t.Errorf("got %v", errs)
	}

	p = validPod()
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
	}
	errs = ValidatePod(p)
	want := `spec.containers[0].resources.requests[cpu]: Invalid value: "1": must be less than or equal to cpu limit of 500m`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("got %v\nwant %s", errs, want)
	}
}

func TestValidatePodUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   []string
	}{
		{name: "labels may change", mutate: func(p *corev1.Pod) { p.Labels["tier"] = "fe" }},
		{name: "image may change", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "minik8s.local/web:v2" }},
		{name: "active deadline may be set and shortened", mutate: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr(int64(10)) }},
		{name: "tolerations may be added", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})
		}},
		{name: "image may not be emptied", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" },
			want: []string{"spec.containers[0].image: Required value"}},
		{name: "command is immutable", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Command = []string{"sh"} },
			want: []string{"spec: Forbidden"}},
		{name: "nodeName is immutable", mutate: func(p *corev1.Pod) { p.Spec.NodeName = "node-2" },
			want: []string{"spec: Forbidden"}},
		{name: "containers cannot be added", mutate: func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "x:1", ImagePullPolicy: corev1.PullNever, TerminationMessagePolicy: corev1.TerminationMessageReadFile})
		}, want: []string{"spec: Forbidden"}},
		{name: "tolerations cannot be removed", mutate: func(p *corev1.Pod) { p.Spec.Tolerations = nil },
			want: []string{"spec.tolerations: Forbidden"}},
		{name: "name and uid immutable", mutate: func(p *corev1.Pod) { p.Name = "web-2"; p.UID = "other" },
			want: []string{"metadata.name: Invalid value", "metadata.uid: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := stored(validPod())
			old.Spec.ActiveDeadlineSeconds = ptr(int64(60))
			old.Spec.Tolerations = []corev1.Toleration{{Key: "a", Operator: corev1.TolerationOpExists}}
			p := old.DeepCopy()
			tt.mutate(p)
			expectErrors(t, ValidatePodUpdate(p, old), tt.want...)
			expectErrors(t, ValidateUpdate(p, old), tt.want...)
		})
	}
	// Lengthening the deadline is rejected with a precise message.
	old := stored(validPod())
	old.Spec.ActiveDeadlineSeconds = ptr(int64(60))
	p := old.DeepCopy()
	p.Spec.ActiveDeadlineSeconds = ptr(int64(120))
	expectErrors(t, ValidatePodUpdate(p, old), "spec.activeDeadlineSeconds: Invalid value")
}

func TestValidatePodStatusUpdate(t *testing.T) {
	tests := []struct {
		name     string
		oldPhase corev1.PodPhase
		mutate   func(st *corev1.PodStatus)
		want     []string
	}{
		{name: "running with IPs", oldPhase: corev1.PodPending, mutate: func(st *corev1.PodStatus) {
			st.Phase = corev1.PodRunning
			st.PodIP, st.PodIPs = "10.244.1.5", []corev1.PodIP{{IP: "10.244.1.5"}}
			st.HostIP = "192.168.1.10"
			st.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}},
		{name: "bad values", oldPhase: corev1.PodPending, mutate: func(st *corev1.PodStatus) {
			st.Phase = "Sleeping"
			st.PodIP = "10.0.0"
			st.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: "Yes"}}
			st.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", RestartCount: -1}}
		}, want: []string{"status.phase: Unsupported value", "status.podIP: Invalid value",
			"status.conditions[0].status: Unsupported value", "status.containerStatuses[0].restartCount: Invalid value"}},
		{name: "terminal phase is final", oldPhase: corev1.PodSucceeded, mutate: func(st *corev1.PodStatus) { st.Phase = corev1.PodRunning },
			want: []string{"status.phase: Forbidden"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := stored(validPod())
			old.Status.Phase = tt.oldPhase
			p := old.DeepCopy()
			tt.mutate(&p.Status)
			expectErrors(t, ValidateStatusUpdate(p, old), tt.want...)
		})
	}
}

func TestValidateBinding(t *testing.T) {
	tests := []struct {
		name   string
		target corev1.ObjectReference
		want   []string
	}{
		{"node", corev1.ObjectReference{Kind: "Node", Name: "node-1"}, nil},
		{"kind omitted", corev1.ObjectReference{Name: "node-1"}, nil},
		{"no name", corev1.ObjectReference{Kind: "Node"}, []string{"target.name: Required value"}},
		{"not a node", corev1.ObjectReference{Kind: "Pod", Name: "x"}, []string{"target.kind: Unsupported value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default"}, Target: tt.target}
			expectErrors(t, ValidateCreate(b), tt.want...)
		})
	}
}

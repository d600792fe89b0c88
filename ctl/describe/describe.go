package describe

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// Extras are the related objects a report shows, fetched by the caller.
type Extras struct {
	// Events about the object (any order; they are sorted).
	Events []corev1.Event
	// Endpoints of a Service.
	Endpoints *corev1.Endpoints
	// ReplicaSets owned by a Deployment.
	ReplicaSets []appsv1.ReplicaSet
	// Pods owned by a ReplicaSet, or running on a Node.
	Pods []corev1.Pod
	// NoEvents leaves out the Events section (--show-events=false).
	NoEvents bool
}

// Describe writes the report for obj: a typed object of a kind with a
// dedicated describer, or anything else (unstructured) generically.
func Describe(w io.Writer, obj runtime.Object, x Extras, now time.Time) error {
	o := &out{now: now}
	switch v := obj.(type) {
	case *corev1.Pod:
		o.pod(v)
	case *appsv1.Deployment:
		o.deployment(v, x.ReplicaSets)
	case *appsv1.ReplicaSet:
		o.replicaSet(v, x.Pods)
	case *corev1.Service:
		o.service(v, x.Endpoints)
	case *corev1.Endpoints:
		o.endpoints(v)
	case *corev1.Node:
		o.node(v, x.Pods)
	case *corev1.Namespace:
		o.namespace(v)
	case *corev1.ConfigMap:
		o.configMap(v)
	case *corev1.Secret:
		o.secret(v)
	case *unstructured.Unstructured:
		o.generic(v)
	default:
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return fmt.Errorf("describe %T: %w", obj, err)
		}
		o.generic(&unstructured.Unstructured{Object: u})
	}
	if !x.NoEvents {
		o.events(x.Events)
	}
	return o.flush(w)
}

// ---- pods ----

func (o *out) pod(p *corev1.Pod) {
	o.meta(p.ObjectMeta, true)
	if p.Spec.Priority != nil {
		o.line(0, "Priority:\t%d", *p.Spec.Priority)
	} else {
		o.line(0, "Priority:\t0")
	}
	if p.Spec.PriorityClassName != "" {
		o.line(0, "Priority Class Name:\t%s", p.Spec.PriorityClassName)
	}
	o.line(0, "Service Account:\t%s", orNone(p.Spec.ServiceAccountName))
	node := orNone(p.Spec.NodeName)
	if p.Spec.NodeName != "" && p.Status.HostIP != "" {
		node += "/" + p.Status.HostIP
	}
	o.line(0, "Node:\t%s", node)
	if p.Status.StartTime != nil {
		o.line(0, "Start Time:\t%s", stamp(*p.Status.StartTime))
	}
	o.labelsAndAnnotations(0, p.ObjectMeta)
	status := string(p.Status.Phase)
	if p.DeletionTimestamp != nil {
		status = "Terminating (lasts " + o.age(*p.DeletionTimestamp) + ")"
	}
	o.line(0, "Status:\t%s", status)
	if p.DeletionTimestamp != nil && p.DeletionGracePeriodSeconds != nil {
		o.line(0, "Termination Grace Period:\t%ds", *p.DeletionGracePeriodSeconds)
	}
	if p.Status.Reason != "" {
		o.line(0, "Reason:\t%s", p.Status.Reason)
	}
	if p.Status.Message != "" {
		o.line(0, "Message:\t%s", p.Status.Message)
	}
	o.line(0, "IP:\t%s", p.Status.PodIP)
	if len(p.Status.PodIPs) == 0 {
		o.line(0, "IPs:\t<none>")
	} else {
		o.line(0, "IPs:")
		for _, ip := range p.Status.PodIPs {
			o.line(1, "IP:\t%s", ip.IP)
		}
	}
	o.controlledBy(p.ObjectMeta)
	if len(p.Spec.InitContainers) > 0 {
		o.line(0, "Init Containers:")
		o.containers(1, p.Spec.InitContainers, p.Status.InitContainerStatuses)
	}
	o.line(0, "Containers:")
	o.containers(1, p.Spec.Containers, p.Status.ContainerStatuses)
	if len(p.Status.Conditions) > 0 {
		o.line(0, "Conditions:")
		var rows [][]string
		for _, c := range p.Status.Conditions {
			rows = append(rows, []string{string(c.Type), string(c.Status)})
		}
		o.table(1, []string{"Type", "Status"}, rows)
	}
	o.volumes(0, p.Spec.Volumes)
	if p.Status.QOSClass != "" {
		o.line(0, "QoS Class:\t%s", p.Status.QOSClass)
	}
	o.mapLines(0, "Node-Selectors", p.Spec.NodeSelector, "=")
	var tols []string
	for _, t := range p.Spec.Tolerations {
		tols = append(tols, toleration(t))
	}
	if len(tols) == 0 {
		o.line(0, "Tolerations:\t<none>")
	}
	for i, t := range tols {
		if i == 0 {
			o.line(0, "Tolerations:\t%s", t)
		} else {
			o.line(0, "\t%s", t)
		}
	}
}

// toleration is kubectl's one-line form: key[=value][:effect] [op=Exists] [for Ns].
func toleration(t corev1.Toleration) string {
	s := t.Key
	if t.Value != "" {
		s += "=" + t.Value
	}
	if t.Effect != "" {
		s += ":" + string(t.Effect)
	}
	if t.Operator == corev1.TolerationOpExists {
		if s != "" {
			s += " "
		}
		s += "op=Exists"
	}
	if t.TolerationSeconds != nil {
		s += fmt.Sprintf(" for %ds", *t.TolerationSeconds)
	}
	return s
}

// containers writes the per-container blocks of pods and templates;
// statuses may be nil (templates).
func (o *out) containers(level int, cs []corev1.Container, statuses []corev1.ContainerStatus) {
	for _, c := range cs {
		o.line(level, "%s:", c.Name)
		var st *corev1.ContainerStatus
		for i := range statuses {
			if statuses[i].Name == c.Name {
				st = &statuses[i]
			}
		}
		l := level + 1
		if st != nil && st.ContainerID != "" {
			o.line(l, "Container ID:\t%s", st.ContainerID)
		}
		o.line(l, "Image:\t%s", c.Image)
		if st != nil {
			o.line(l, "Image ID:\t%s", st.ImageID)
		}
		o.ports(l, c.Ports)
		if len(c.Command) > 0 {
			o.line(l, "Command:")
			for _, a := range c.Command {
				o.line(l+1, "%s", a)
			}
		}
		if len(c.Args) > 0 {
			o.line(l, "Args:")
			for _, a := range c.Args {
				o.line(l+1, "%s", a)
			}
		}
		if st != nil {
			o.state(l, "State", st.State)
			if st.LastTerminationState.Terminated != nil || st.LastTerminationState.Waiting != nil || st.LastTerminationState.Running != nil {
				o.state(l, "Last State", st.LastTerminationState)
			}
			o.line(l, "Ready:\t%s", boolWord(st.Ready))
			o.line(l, "Restart Count:\t%d", st.RestartCount)
		}
		o.resources(l, "Limits", c.Resources.Limits)
		o.resources(l, "Requests", c.Resources.Requests)
		for _, p := range []struct {
			name string
			p    *corev1.Probe
		}{{"Liveness", c.LivenessProbe}, {"Readiness", c.ReadinessProbe}, {"Startup", c.StartupProbe}} {
			if p.p != nil {
				o.line(l, "%s:\t%s", p.name, probe(p.p))
			}
		}
		if len(c.Env) == 0 && len(c.EnvFrom) == 0 {
			o.line(l, "Environment:\t<none>")
		} else {
			o.line(l, "Environment:")
			for _, e := range c.EnvFrom {
				switch {
				case e.ConfigMapRef != nil:
					o.line(l+1, "%s\tConfigMap\tOptional: %v", e.ConfigMapRef.Name, e.ConfigMapRef.Optional != nil && *e.ConfigMapRef.Optional)
				case e.SecretRef != nil:
					o.line(l+1, "%s\tSecret\tOptional: %v", e.SecretRef.Name, e.SecretRef.Optional != nil && *e.SecretRef.Optional)
				}
			}
			for _, e := range c.Env {
				o.line(l+1, "%s:\t%s", e.Name, envValue(e))
			}
		}
		if len(c.VolumeMounts) == 0 {
			o.line(l, "Mounts:\t<none>")
		} else {
			o.line(l, "Mounts:")
			for _, m := range c.VolumeMounts {
				mode := "rw"
				if m.ReadOnly {
					mode = "ro"
				}
				path := m.MountPath
				if m.SubPath != "" {
					path += " (path " + m.SubPath + ")"
				}
				o.line(l+1, "%s from %s (%s)", path, m.Name, mode)
			}
		}
	}
}

func boolWord(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func (o *out) ports(level int, ps []corev1.ContainerPort) {
	if len(ps) == 0 {
		return
	}
	var ports, hosts []string
	for _, p := range ps {
		proto := string(p.Protocol)
		if proto == "" {
			proto = "TCP"
		}
		port := fmt.Sprintf("%d/%s", p.ContainerPort, proto)
		if p.Name != "" {
			port += " (" + p.Name + ")"
		}
		ports = append(ports, port)
		hosts = append(hosts, fmt.Sprintf("%d/%s", p.HostPort, proto))
	}
	if len(ports) == 1 {
		o.line(level, "Port:\t%s", ports[0])
		o.line(level, "Host Port:\t%s", hosts[0])
		return
	}
	o.line(level, "Ports:\t%s", strings.Join(ports, ", "))
	o.line(level, "Host Ports:\t%s", strings.Join(hosts, ", "))
}

func (o *out) state(level int, title string, s corev1.ContainerState) {
	switch {
	case s.Running != nil:
		o.line(level, "%s:\tRunning", title)
		o.line(level+1, "Started:\t%s", stamp(s.Running.StartedAt))
	case s.Waiting != nil:
		o.line(level, "%s:\tWaiting", title)
		if s.Waiting.Reason != "" {
			o.line(level+1, "Reason:\t%s", s.Waiting.Reason)
		}
		if s.Waiting.Message != "" {
			o.line(level+1, "Message:\t%s", s.Waiting.Message)
		}
	case s.Terminated != nil:
		t := s.Terminated
		o.line(level, "%s:\tTerminated", title)
		if t.Reason != "" {
			o.line(level+1, "Reason:\t%s", t.Reason)
		}
		if t.Message != "" {
			o.line(level+1, "Message:\t%s", t.Message)
		}
		o.line(level+1, "Exit Code:\t%d", t.ExitCode)
		if t.Signal != 0 {
			o.line(level+1, "Signal:\t%d", t.Signal)
		}
		o.line(level+1, "Started:\t%s", stamp(t.StartedAt))
		o.line(level+1, "Finished:\t%s", stamp(t.FinishedAt))
	default:
		o.line(level, "%s:\tWaiting", title)
	}
}

func (o *out) resources(level int, title string, rl corev1.ResourceList) {
	if len(rl) == 0 {
		return
	}
	o.line(level, "%s:", title)
	keys := make([]string, 0, len(rl))
	for k := range rl {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for _, k := range keys {
		q := rl[corev1.ResourceName(k)]
		o.line(level+1, "%s:\t%s", k, q.String())
	}
}

func probe(p *corev1.Probe) string {
	var what string
	switch {
	case p.HTTPGet != nil:
		scheme := strings.ToLower(string(p.HTTPGet.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		what = fmt.Sprintf("http-get %s://%s:%s%s", scheme, p.HTTPGet.Host, p.HTTPGet.Port.String(), p.HTTPGet.Path)
	case p.TCPSocket != nil:
		what = fmt.Sprintf("tcp-socket %s:%s", p.TCPSocket.Host, p.TCPSocket.Port.String())
	case p.Exec != nil:
		what = fmt.Sprintf("exec %v", p.Exec.Command)
	default:
		what = "unknown"
	}
	return fmt.Sprintf("%s delay=%ds timeout=%ds period=%ds #success=%d #failure=%d",
		what, p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
}

func envValue(e corev1.EnvVar) string {
	if e.ValueFrom == nil {
		return e.Value
	}
	f := e.ValueFrom
	switch {
	case f.FieldRef != nil:
		return fmt.Sprintf("(%s:%s)", orDefault(f.FieldRef.APIVersion, "v1"), f.FieldRef.FieldPath)
	case f.ResourceFieldRef != nil:
		return fmt.Sprintf("%s (%s)", f.ResourceFieldRef.Resource, orDefault(f.ResourceFieldRef.ContainerName, "this container"))
	case f.ConfigMapKeyRef != nil:
		return fmt.Sprintf("<set to the key '%s' of config map '%s'>", f.ConfigMapKeyRef.Key, f.ConfigMapKeyRef.Name)
	case f.SecretKeyRef != nil:
		return fmt.Sprintf("<set to the key '%s' in secret '%s'>", f.SecretKeyRef.Key, f.SecretKeyRef.Name)
	}
	return ""
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (o *out) volumes(level int, vs []corev1.Volume) {
	if len(vs) == 0 {
		o.line(level, "Volumes:\t<none>")
		return
	}
	o.line(level, "Volumes:")
	for _, v := range vs {
		o.line(level+1, "%s:", v.Name)
		l := level + 2
		switch {
		case v.EmptyDir != nil:
			o.line(l, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)")
			o.line(l, "Medium:\t%s", v.EmptyDir.Medium)
			if v.EmptyDir.SizeLimit != nil {
				o.line(l, "SizeLimit:\t%s", v.EmptyDir.SizeLimit.String())
			} else {
				o.line(l, "SizeLimit:\t<unset>")
			}
		case v.HostPath != nil:
			o.line(l, "Type:\tHostPath (bare host directory volume)")
			o.line(l, "Path:\t%s", v.HostPath.Path)
			typ := ""
			if v.HostPath.Type != nil {
				typ = string(*v.HostPath.Type)
			}
			o.line(l, "HostPathType:\t%s", typ)
		case v.ConfigMap != nil:
			o.line(l, "Type:\tConfigMap (a volume populated by a ConfigMap)")
			o.line(l, "Name:\t%s", v.ConfigMap.Name)
			o.line(l, "Optional:\t%v", v.ConfigMap.Optional != nil && *v.ConfigMap.Optional)
		case v.Secret != nil:
			o.line(l, "Type:\tSecret (a volume populated by a Secret)")
			o.line(l, "SecretName:\t%s", v.Secret.SecretName)
			o.line(l, "Optional:\t%v", v.Secret.Optional != nil && *v.Secret.Optional)
		case v.DownwardAPI != nil:
			o.line(l, "Type:\tDownwardAPI (a volume populated by information about the pod)")
			o.line(l, "Items:")
			o.downwardItems(l+1, v.DownwardAPI.Items)
		case v.Projected != nil:
			o.line(l, "Type:\tProjected (a volume that contains injected data from multiple sources)")
			for _, src := range v.Projected.Sources {
				switch {
				case src.Secret != nil:
					o.line(l, "SecretName:\t%s", src.Secret.Name)
					o.line(l, "SecretOptional:\t%v", src.Secret.Optional != nil && *src.Secret.Optional)
				case src.ConfigMap != nil:
					o.line(l, "ConfigMapName:\t%s", src.ConfigMap.Name)
					o.line(l, "ConfigMapOptional:\t%v", src.ConfigMap.Optional != nil && *src.ConfigMap.Optional)
				case src.DownwardAPI != nil:
					o.line(l, "DownwardAPI:\ttrue")
					o.downwardItems(l+1, src.DownwardAPI.Items)
				case src.ServiceAccountToken != nil:
					o.line(l, "TokenExpirationSeconds:\t(not supported by minik8s)")
				}
			}
		default:
			o.line(l, "Type:\t<unknown>")
		}
	}
}

// downwardItems lists a downward API volume's files as "source -> path".
func (o *out) downwardItems(level int, items []corev1.DownwardAPIVolumeFile) {
	for _, it := range items {
		switch {
		case it.FieldRef != nil:
			o.line(level, "%s -> %s", it.FieldRef.FieldPath, it.Path)
		case it.ResourceFieldRef != nil:
			o.line(level, "%s -> %s", it.ResourceFieldRef.Resource, it.Path)
		}
	}
}

func (o *out) podTemplate(level int, t corev1.PodTemplateSpec) {
	o.line(level, "Pod Template:")
	o.mapLines(level+1, "Labels", t.Labels, "=")
	if len(t.Annotations) > 0 {
		o.mapLines(level+1, "Annotations", t.Annotations, ": ")
	}
	if t.Spec.ServiceAccountName != "" {
		o.line(level+1, "Service Account:\t%s", t.Spec.ServiceAccountName)
	}
	if len(t.Spec.InitContainers) > 0 {
		o.line(level+1, "Init Containers:")
		o.containers(level+2, t.Spec.InitContainers, nil)
	}
	o.line(level+1, "Containers:")
	o.containers(level+2, t.Spec.Containers, nil)
	o.volumes(level+1, t.Spec.Volumes)
	o.mapLines(level+1, "Node-Selectors", t.Spec.NodeSelector, "=")
	var tols []string
	for _, tl := range t.Spec.Tolerations {
		tols = append(tols, toleration(tl))
	}
	o.line(level+1, "Tolerations:\t%s", joinOrNone(tols, ", "))
}

// ---- workloads ----

func selectorString(s *metav1.LabelSelector) string {
	if s == nil {
		return "<none>"
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return "<invalid: " + err.Error() + ">"
	}
	return orNone(sel.String())
}

func (o *out) deployment(d *appsv1.Deployment, rss []appsv1.ReplicaSet) {
	o.meta(d.ObjectMeta, true)
	o.line(0, "CreationTimestamp:\t%s", stamp(d.CreationTimestamp))
	o.labelsAndAnnotations(0, d.ObjectMeta)
	o.deletion(d.ObjectMeta)
	o.line(0, "Selector:\t%s", selectorString(d.Spec.Selector))
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	st := d.Status
	o.line(0, "Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable",
		desired, st.UpdatedReplicas, st.Replicas, st.AvailableReplicas, st.UnavailableReplicas)
	o.line(0, "StrategyType:\t%s", d.Spec.Strategy.Type)
	o.line(0, "MinReadySeconds:\t%d", d.Spec.MinReadySeconds)
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		o.line(0, "RollingUpdateStrategy:\t%s max unavailable, %s max surge", intOrStr(ru.MaxUnavailable), intOrStr(ru.MaxSurge))
	}
	if d.Spec.Paused {
		o.line(0, "Paused:\ttrue (changes to the template are not rolled out; `ctl rollout resume` continues)")
	}
	o.podTemplate(0, d.Spec.Template)
	if len(st.Conditions) > 0 {
		o.line(0, "Conditions:")
		var rows [][]string
		for _, c := range st.Conditions {
			rows = append(rows, []string{string(c.Type), string(c.Status), c.Reason})
		}
		o.table(1, []string{"Type", "Status", "Reason"}, rows)
	}
	var oldRS []string
	newRS := "<none>"
	latest := latestRevision(rss)
	for _, rs := range rss {
		summary := fmt.Sprintf("%s (%d/%d replicas created)", rs.Name, rs.Status.Replicas, deref(rs.Spec.Replicas))
		if rs.Annotations[appsv1.RevisionAnnotation] == latest && latest != "" {
			newRS = summary
		} else {
			oldRS = append(oldRS, summary)
		}
	}
	o.line(0, "OldReplicaSets:\t%s", joinOrNone(oldRS, ", "))
	o.line(0, "NewReplicaSet:\t%s", newRS)
}

// latestRevision is the highest deployment.kubernetes.io/revision.
func latestRevision(rss []appsv1.ReplicaSet) string {
	best, bestN := "", int64(-1)
	for _, rs := range rss {
		r := rs.Annotations[appsv1.RevisionAnnotation]
		var n int64
		if _, err := fmt.Sscan(r, &n); err == nil && n > bestN {
			best, bestN = r, n
		}
	}
	return best
}

func deref(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func intOrStr(v *intstr.IntOrString) string {
	if v == nil {
		return "<unset>"
	}
	return v.String()
}

func (o *out) replicaSet(rs *appsv1.ReplicaSet, pods []corev1.Pod) {
	o.meta(rs.ObjectMeta, true)
	o.line(0, "Selector:\t%s", selectorString(rs.Spec.Selector))
	o.labelsAndAnnotations(0, rs.ObjectMeta)
	o.deletion(rs.ObjectMeta)
	o.controlledBy(rs.ObjectMeta)
	o.line(0, "Replicas:\t%d current / %d desired", rs.Status.Replicas, deref(rs.Spec.Replicas))
	counts := map[corev1.PodPhase]int{}
	for _, p := range pods {
		counts[p.Status.Phase]++
	}
	o.line(0, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed",
		counts[corev1.PodRunning], counts[corev1.PodPending], counts[corev1.PodSucceeded], counts[corev1.PodFailed])
	o.podTemplate(0, rs.Spec.Template)
	if len(rs.Status.Conditions) > 0 {
		o.line(0, "Conditions:")
		var rows [][]string
		for _, c := range rs.Status.Conditions {
			rows = append(rows, []string{string(c.Type), string(c.Status), c.Reason})
		}
		o.table(1, []string{"Type", "Status", "Reason"}, rows)
	}
}

// ---- services and endpoints ----

func (o *out) service(s *corev1.Service, ep *corev1.Endpoints) {
	o.meta(s.ObjectMeta, true)
	o.labelsAndAnnotations(0, s.ObjectMeta)
	o.mapLines(0, "Selector", s.Spec.Selector, "=")
	o.line(0, "Type:\t%s", s.Spec.Type)
	if s.Spec.IPFamilyPolicy != nil {
		o.line(0, "IP Family Policy:\t%s", *s.Spec.IPFamilyPolicy)
	}
	if len(s.Spec.IPFamilies) > 0 {
		var fams []string
		for _, f := range s.Spec.IPFamilies {
			fams = append(fams, string(f))
		}
		o.line(0, "IP Families:\t%s", strings.Join(fams, ","))
	}
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		o.line(0, "External Name:\t%s", s.Spec.ExternalName)
	} else {
		o.line(0, "IP:\t%s", orNone(s.Spec.ClusterIP))
		o.line(0, "IPs:\t%s", joinOrNone(s.Spec.ClusterIPs, ","))
	}
	if len(s.Spec.ExternalIPs) > 0 {
		o.line(0, "External IPs:\t%s", strings.Join(s.Spec.ExternalIPs, ","))
	}
	for _, p := range s.Spec.Ports {
		name := p.Name
		if name == "" {
			name = "<unset>"
		}
		o.line(0, "Port:\t%s\t%d/%s", name, p.Port, p.Protocol)
		tp := p.TargetPort
		if tp.Type == intstr.Int && tp.IntVal == 0 || tp.Type == intstr.String && tp.StrVal == "" {
			tp = intstr.FromInt32(p.Port)
		}
		o.line(0, "TargetPort:\t%s/%s", tp.String(), p.Protocol)
		if p.NodePort != 0 {
			o.line(0, "NodePort:\t%s\t%d/%s", name, p.NodePort, p.Protocol)
		}
		o.line(0, "Endpoints:\t%s", endpointsFor(ep, p))
	}
	o.line(0, "Session Affinity:\t%s", orNone(string(s.Spec.SessionAffinity)))
	if s.Spec.ExternalTrafficPolicy != "" {
		o.line(0, "External Traffic Policy:\t%s", s.Spec.ExternalTrafficPolicy)
	}
	if s.Spec.InternalTrafficPolicy != nil {
		o.line(0, "Internal Traffic Policy:\t%s", *s.Spec.InternalTrafficPolicy)
	}
}

// endpointsFor lists the ready addresses serving one service port.
func endpointsFor(ep *corev1.Endpoints, sp corev1.ServicePort) string {
	if ep == nil {
		return "<none>"
	}
	var out []string
	for _, ss := range ep.Subsets {
		for _, p := range ss.Ports {
			if p.Name != sp.Name {
				continue
			}
			for _, a := range ss.Addresses {
				out = append(out, fmt.Sprintf("%s:%d", a.IP, p.Port))
			}
		}
	}
	if len(out) > 3 {
		return strings.Join(out[:3], ",") + fmt.Sprintf(" + %d more...", len(out)-3)
	}
	return joinOrNone(out, ",")
}

func (o *out) endpoints(e *corev1.Endpoints) {
	o.meta(e.ObjectMeta, true)
	o.labelsAndAnnotations(0, e.ObjectMeta)
	if len(e.Subsets) == 0 {
		o.line(0, "Subsets:\t<none>")
		return
	}
	o.line(0, "Subsets:")
	for _, ss := range e.Subsets {
		var ready, notReady []string
		for _, a := range ss.Addresses {
			ready = append(ready, a.IP)
		}
		for _, a := range ss.NotReadyAddresses {
			notReady = append(notReady, a.IP)
		}
		o.line(1, "Addresses:\t%s", joinOrNone(ready, ","))
		o.line(1, "NotReadyAddresses:\t%s", joinOrNone(notReady, ","))
		o.line(1, "Ports:")
		var rows [][]string
		for _, p := range ss.Ports {
			rows = append(rows, []string{orNone(p.Name), fmt.Sprint(p.Port), string(p.Protocol)})
		}
		o.table(2, []string{"Name", "Port", "Protocol"}, rows)
		o.line(0, "")
	}
}

// ---- cluster objects ----

func (o *out) node(n *corev1.Node, pods []corev1.Pod) {
	o.meta(n.ObjectMeta, false)
	var roles []string
	for k := range n.Labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
			roles = append(roles, r)
		}
	}
	sort.Strings(roles)
	o.line(0, "Roles:\t%s", joinOrNone(roles, ","))
	o.labelsAndAnnotations(0, n.ObjectMeta)
	o.line(0, "CreationTimestamp:\t%s", stamp(n.CreationTimestamp))
	var taints []string
	for _, t := range n.Spec.Taints {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		taints = append(taints, s+":"+string(t.Effect))
	}
	if len(taints) == 0 {
		o.line(0, "Taints:\t<none>")
	}
	for i, t := range taints {
		if i == 0 {
			o.line(0, "Taints:\t%s", t)
		} else {
			o.line(0, "\t%s", t)
		}
	}
	o.line(0, "Unschedulable:\t%v", n.Spec.Unschedulable)
	if len(n.Status.Conditions) == 0 {
		o.line(0, "Conditions:\t<none>")
	} else {
		o.line(0, "Conditions:")
		var rows [][]string
		for _, c := range n.Status.Conditions {
			rows = append(rows, []string{string(c.Type), string(c.Status), stamp(c.LastHeartbeatTime), stamp(c.LastTransitionTime), c.Reason, c.Message})
		}
		o.table(1, []string{"Type", "Status", "LastHeartbeatTime", "LastTransitionTime", "Reason", "Message"}, rows)
	}
	o.line(0, "Addresses:")
	for _, a := range n.Status.Addresses {
		o.line(1, "%s:\t%s", a.Type, a.Address)
	}
	for _, rl := range []struct {
		t string
		l corev1.ResourceList
	}{{"Capacity", n.Status.Capacity}, {"Allocatable", n.Status.Allocatable}} {
		if len(rl.l) > 0 {
			o.resources(0, rl.t, rl.l)
		}
	}
	i := n.Status.NodeInfo
	o.line(0, "System Info:")
	o.line(1, "Machine ID:\t%s", i.MachineID)
	o.line(1, "System UUID:\t%s", i.SystemUUID)
	o.line(1, "Boot ID:\t%s", i.BootID)
	o.line(1, "Kernel Version:\t%s", i.KernelVersion)
	o.line(1, "OS Image:\t%s", i.OSImage)
	o.line(1, "Container Runtime Version:\t%s", i.ContainerRuntimeVersion)
	o.line(1, "Kubelet Version:\t%s", i.KubeletVersion)
	o.line(0, "PodCIDR:\t%s", orNone(n.Spec.PodCIDR))
	o.line(0, "PodCIDRs:\t%s", joinOrNone(n.Spec.PodCIDRs, ","))
	o.line(0, "Non-terminated Pods:\t(%d in total)", len(pods))
	if len(pods) > 0 {
		var rows [][]string
		for _, p := range pods {
			rows = append(rows, []string{p.Namespace, p.Name, o.age(p.CreationTimestamp)})
		}
		o.table(1, []string{"Namespace", "Name", "Age"}, rows)
	}
}

func (o *out) namespace(n *corev1.Namespace) {
	o.meta(n.ObjectMeta, false)
	o.labelsAndAnnotations(0, n.ObjectMeta)
	o.line(0, "Status:\t%s", n.Status.Phase)
	o.deletion(n.ObjectMeta)
	if len(n.Status.Conditions) > 0 {
		o.line(0, "Conditions:")
		var rows [][]string
		for _, c := range n.Status.Conditions {
			rows = append(rows, []string{string(c.Type), string(c.Status), c.Reason, c.Message})
		}
		o.table(1, []string{"Type", "Status", "Reason", "Message"}, rows)
	}
	o.line(0, "")
	o.line(0, "No resource quota.")
	o.line(0, "")
	o.line(0, "No LimitRange resource.")
}

func (o *out) configMap(c *corev1.ConfigMap) {
	o.meta(c.ObjectMeta, true)
	o.labelsAndAnnotations(0, c.ObjectMeta)
	o.line(0, "")
	o.line(0, "Data")
	o.line(0, "====")
	keys := make([]string, 0, len(c.Data))
	for k := range c.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o.line(0, "%s:", k)
		o.line(0, "----")
		o.buf.WriteString(strings.ReplaceAll(c.Data[k], "\t", "    "))
		o.line(0, "")
		o.line(0, "")
	}
	o.line(0, "")
	o.line(0, "BinaryData")
	o.line(0, "====")
	bkeys := make([]string, 0, len(c.BinaryData))
	for k := range c.BinaryData {
		bkeys = append(bkeys, k)
	}
	sort.Strings(bkeys)
	for _, k := range bkeys {
		o.line(0, "%s: %d bytes", k, len(c.BinaryData[k]))
	}
	o.line(0, "")
}

func (o *out) secret(s *corev1.Secret) {
	o.meta(s.ObjectMeta, true)
	o.labelsAndAnnotations(0, s.ObjectMeta)
	o.line(0, "")
	o.line(0, "Type:\t%s", s.Type)
	o.line(0, "")
	o.line(0, "Data")
	o.line(0, "====")
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// Values stay hidden, as in kubectl; only their size shows.
		o.line(0, "%s:\t%d bytes", k, len(s.Data[k]))
	}
}

// ---- anything else ----

// generic describes any object: identity, then every other field by its
// name, nested by indentation.
func (o *out) generic(u *unstructured.Unstructured) {
	o.line(0, "Name:\t%s", u.GetName())
	if u.GetNamespace() != "" {
		o.line(0, "Namespace:\t%s", u.GetNamespace())
	}
	o.mapLines(0, "Labels", u.GetLabels(), "=")
	o.mapLines(0, "Annotations", u.GetAnnotations(), ": ")
	o.line(0, "API Version:\t%s", u.GetAPIVersion())
	o.line(0, "Kind:\t%s", u.GetKind())
	keys := make([]string, 0, len(u.Object))
	for k := range u.Object {
		if k != "apiVersion" && k != "kind" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := u.Object[k]
		if k == "metadata" {
			m, _ := v.(map[string]any)
			meta := map[string]any{}
			for mk, mv := range m {
				switch mk {
				case "name", "namespace", "labels", "annotations":
				default:
					meta[mk] = mv
				}
			}
			v = meta
		}
		o.value(0, title(k), v)
	}
}

// title turns a JSON field name into kubectl's generic heading:
// "creationTimestamp" → "Creation Timestamp".
func title(k string) string {
	var b strings.Builder
	for i, r := range k {
		if i == 0 {
			b.WriteString(strings.ToUpper(string(r)))
			continue
		}
		if r >= 'A' && r <= 'Z' && i > 0 && !(k[i-1] >= 'A' && k[i-1] <= 'Z') {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (o *out) value(level int, key string, v any) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			return
		}
		o.line(level, "%s:", key)
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			o.value(level+1, title(k), v[k])
		}
	case []any:
		if len(v) == 0 {
			return
		}
		o.line(level, "%s:", key)
		for _, item := range v {
			if m, ok := item.(map[string]any); ok {
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for i, k := range keys {
					if i == 0 {
						// The first field of each item is marked, so
						// items are told apart.
						o.valueInline(level+1, "- "+title(k), m[k])
					} else {
						o.valueInline(level+1, "  "+title(k), m[k])
					}
				}
				continue
			}
			o.line(level+1, "%v", scalar(item))
		}
	default:
		o.line(level, "%s:\t%v", key, scalar(v))
	}
}

func (o *out) valueInline(level int, key string, v any) {
	switch v.(type) {
	case map[string]any, []any:
		o.value(level, key, v)
	default:
		o.line(level, "%s:\t%v", key, scalar(v))
	}
}

func scalar(v any) string {
	switch v := v.(type) {
	case nil:
		return "<nil>"
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// ---- events ----

func (o *out) events(evs []corev1.Event) {
	if len(evs) == 0 {
		o.line(0, "Events:\t<none>")
		return
	}
	sorted := append([]corev1.Event(nil), evs...)
	sort.SliceStable(sorted, func(i, j int) bool { return lastSeen(sorted[i]).Before(lastSeen(sorted[j])) })
	o.line(0, "Events:")
	var rows [][]string
	for _, e := range sorted {
		age := o.age(metav1.NewTime(lastSeen(e)))
		if e.Count > 1 && !e.FirstTimestamp.IsZero() {
			age = fmt.Sprintf("%s (x%d over %s)", age, e.Count, o.age(e.FirstTimestamp))
		} else if e.Series != nil && e.Series.Count > 1 {
			age = fmt.Sprintf("%s (x%d)", age, e.Series.Count)
		}
		from := e.Source.Component
		if from == "" {
			from = e.ReportingController
		}
		if e.Source.Host != "" {
			from += ", " + e.Source.Host
		}
		msg := strings.TrimSpace(strings.ReplaceAll(e.Message, "\n", " "))
		rows = append(rows, []string{e.Type, e.Reason, age, orNone(from), msg})
	}
	o.table(1, []string{"Type", "Reason", "Age", "From", "Message"}, rows)
}

func lastSeen(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// PodTemplate writes a pod template as the describe reports show it
// (`rollout history --revision=N` prints one).
func PodTemplate(w io.Writer, t corev1.PodTemplateSpec) error {
	o := &out{}
	o.podTemplate(0, t)
	return o.flush(w)
}

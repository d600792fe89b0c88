package kubelet

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

// Annotations the kubelet keeps on containers.
const (
	annotationHash        = "io.minik8s.container.hash"
	annotationGrace       = "io.minik8s.pod.terminationGracePeriod"
	annotationInit        = "io.minik8s.container.init"
	annotationTermMsgPath = "io.minik8s.container.terminationMessageHostPath"
)

// ConfigError is a problem with what a container refers to (a missing
// ConfigMap, Secret or key): the container waits in
// CreateContainerConfigError until it is fixed.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func configErrorf(format string, args ...any) error {
	return &ConfigError{Msg: fmt.Sprintf(format, args...)}
}

// ConfigSource reads ConfigMaps and Secrets (from an informer cache, or
// the API server). A missing object is an error satisfying
// apierrors.IsNotFound.
type ConfigSource interface {
	ConfigMap(namespace, name string) (*corev1.ConfigMap, error)
	Secret(namespace, name string) (*corev1.Secret, error)
}

// containerHash identifies a container's spec, so a changed spec (a new
// image, say) restarts the container, and an adopted container whose spec
// is unchanged keeps running.
func containerHash(c *corev1.Container) string {
	b, _ := json.Marshal(c)
	h := fnv.New64a()
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 16)
}

func podLabels(pod *corev1.Pod, node string) map[string]string {
	l := map[string]string{
		runtime.LabelPodName:      pod.Name,
		runtime.LabelPodNamespace: pod.Namespace,
		runtime.LabelPodUID:       string(pod.UID),
		runtime.LabelNode:         node,
	}
	return l
}

func gracePeriod(pod *corev1.Pod) int64 {
	if pod.DeletionGracePeriodSeconds != nil {
		return *pod.DeletionGracePeriodSeconds
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

// sandboxConfig builds the CRI sandbox config of a pod.
func (k *Kubelet) sandboxConfig(pod *corev1.Pod, attempt uint32) (*runtimeapi.PodSandboxConfig, error) {
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	if pod.Spec.HostNetwork {
		hostname = k.hostname
	}
	if len(hostname) > 63 {
		hostname = strings.TrimRight(hostname[:63], "-.")
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt},
		Hostname:     hostname,
		LogDirectory: k.podLogDir(pod),
		DnsConfig:    k.dnsConfig(pod),
		Labels:       podLabels(pod, k.cfg.NodeName),
		Annotations:  map[string]string{annotationGrace: strconv.FormatInt(gracePeriod(pod), 10)},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: k.podCgroup(pod),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: namespaceOptions(pod),
			},
		},
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			switch p.Protocol {
			case corev1.ProtocolUDP:
				proto = runtimeapi.Protocol_UDP
			case corev1.ProtocolSCTP:
				proto = runtimeapi.Protocol_SCTP
			}
			cfg.PortMappings = append(cfg.PortMappings, &runtimeapi.PortMapping{Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP})
		}
	}
	return cfg, nil
}

func namespaceOptions(pod *corev1.Pod) *runtimeapi.NamespaceOption {
	ns := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	if pod.Spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostPID {
		ns.Pid = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	return ns
}

// podCgroup is the cgroupfs parent of the pod's containers; "" leaves the
// runtime's default.
func (k *Kubelet) podCgroup(pod *corev1.Pod) string {
	if k.cfg.CgroupRoot == "" {
		return ""
	}
	return filepath.Join(k.cfg.CgroupRoot, "pod"+string(pod.UID))
}

// dnsConfig follows the pod's dnsPolicy: ClusterFirst uses the cluster DNS
// (when the kubelet was given one) with the search path of the namespace,
// Default and host-network pods use the node's resolv.conf, None only
// dnsConfig.
func (k *Kubelet) dnsConfig(pod *corev1.Pod) *runtimeapi.DNSConfig {
	cfg := &runtimeapi.DNSConfig{}
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	if policy == corev1.DNSClusterFirstWithHostNet {
		policy = corev1.DNSClusterFirst
	}
	switch {
	case policy == corev1.DNSClusterFirst && len(k.cfg.ClusterDNS) > 0:
		d := k.cfg.ClusterDomain
		cfg.Servers = append(cfg.Servers, k.cfg.ClusterDNS...)
		cfg.Searches = []string{pod.Namespace + ".svc." + d, "svc." + d, d}
		cfg.Options = []string{"ndots:5"}
	case policy != corev1.DNSNone:
		servers, searches, options := k.hostResolvConf()
		cfg.Servers, cfg.Searches, cfg.Options = servers, searches, options
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		cfg.Servers = append(cfg.Servers, dc.Nameservers...)
		cfg.Searches = append(cfg.Searches, dc.Searches...)
		for _, o := range dc.Options {
			if o.Value != nil {
				cfg.Options = append(cfg.Options, o.Name+":"+*o.Value)
			} else {
				cfg.Options = append(cfg.Options, o.Name)
			}
		}
	}
	return cfg
}

func (k *Kubelet) hostResolvConf() (servers, searches, options []string) {
	data, err := os.ReadFile(k.cfg.ResolvConf)
	if err != nil {
		return nil, nil, nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "nameserver":
			servers = append(servers, f[1])
		case "search", "domain":
			searches = append(searches, f[1:]...)
		case "options":
			options = append(options, f[1:]...)
		}
	}
	return servers, searches, options
}

// envFor resolves a container's environment: envFrom first, then env
// (later wins), with $(VAR) references expanded. alloc is the node's
// allocatable resources: a resourceFieldRef to a limit the container does
// not set reads it, as in Kubernetes.
func envFor(pod *corev1.Pod, c *corev1.Container, src ConfigSource, podIP, hostIP, nodeName string, alloc corev1.ResourceList) ([]*runtimeapi.KeyValue, error) {
	vals := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := src.ConfigMap(pod.Namespace, ef.ConfigMapRef.Name)
			if err != nil {
				if isOptional(ef.ConfigMapRef.Optional) {
					continue
				}
				return nil, configErrorf("configmap %q not found", ef.ConfigMapRef.Name)
			}
			for _, k := range sortedKeys(cm.Data) {
				set(ef.Prefix+k, cm.Data[k])
			}
		case ef.SecretRef != nil:
			s, err := src.Secret(pod.Namespace, ef.SecretRef.Name)
			if err != nil {
				if isOptional(ef.SecretRef.Optional) {
					continue
				}
				return nil, configErrorf("secret %q not found", ef.SecretRef.Name)
			}
			keys := make([]string, 0, len(s.Data))
			for k := range s.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				set(ef.Prefix+k, string(s.Data[k]))
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vals))
			continue
		}
		vf := e.ValueFrom
		switch {
		case vf.ConfigMapKeyRef != nil:
			r := vf.ConfigMapKeyRef
			cm, err := src.ConfigMap(pod.Namespace, r.Name)
			if err != nil {
				if isOptional(r.Optional) {
					continue
				}
				return nil, configErrorf("configmap %q not found", r.Name)
			}
			v, ok := cm.Data[r.Key]
			if !ok {
				if b, ok2 := cm.BinaryData[r.Key]; ok2 {
					v, ok = string(b), true
				}
			}
			if !ok {
				if isOptional(r.Optional) {
					continue
				}
				return nil, configErrorf("couldn't find key %s in ConfigMap %s/%s", r.Key, pod.Namespace, r.Name)
			}
			set(e.Name, v)
		case vf.SecretKeyRef != nil:
			r := vf.SecretKeyRef
			s, err := src.Secret(pod.Namespace, r.Name)
			if err != nil {
				if isOptional(r.Optional) {
					continue
				}
				return nil, configErrorf("secret %q not found", r.Name)
			}
			v, ok := s.Data[r.Key]
			if !ok {
				if isOptional(r.Optional) {
					continue
				}
				return nil, configErrorf("couldn't find key %s in Secret %s/%s", r.Key, pod.Namespace, r.Name)
			}
			set(e.Name, string(v))
		case vf.FieldRef != nil:
			v, err := fieldValue(pod, vf.FieldRef.FieldPath, podIP, hostIP, nodeName)
			if err != nil {
				return nil, configErrorf("env %s: %v", e.Name, err)
			}
			set(e.Name, v)
		case vf.ResourceFieldRef != nil:
			v, err := resourceValue(pod, c, vf.ResourceFieldRef, alloc)
			if err != nil {
				return nil, configErrorf("env %s: %v", e.Name, err)
			}
			set(e.Name, v)
		}
	}
	out := make([]*runtimeapi.KeyValue, 0, len(order))
	for _, k := range order {
		out = append(out, &runtimeapi.KeyValue{Key: k, Value: []byte(vals[k])})
	}
	return out, nil
}

func isOptional(b *bool) bool { return b != nil && *b }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// expand replaces $(NAME) with vals[NAME] when defined; $$ is a literal $.
// Undefined references stay as written, as in Kubernetes.
func expand(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vals[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func fieldValue(pod *corev1.Pod, path, podIP, hostIP, nodeName string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return nodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return podIP, nil
	case "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	for _, p := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels", pod.Labels}, {"metadata.annotations", pod.Annotations}} {
		if path == p.prefix {
			var lines []string
			for _, k := range sortedKeys(p.m) {
				lines = append(lines, fmt.Sprintf("%s=%q", k, p.m[k]))
			}
			return strings.Join(lines, "\n"), nil
		}
		if strings.HasPrefix(path, p.prefix+"['") && strings.HasSuffix(path, "']") {
			return p.m[path[len(p.prefix)+2:len(path)-2]], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

// resourceValue is a container's request or limit in units of the
// divisor, rounded up; an unset limit is the node's allocatable amount.
func resourceValue(pod *corev1.Pod, c *corev1.Container, r *corev1.ResourceFieldSelector, alloc corev1.ResourceList) (string, error) {
	target := c
	if r.ContainerName != "" && r.ContainerName != c.Name {
		target = nil
		for i := range pod.Spec.Containers {
			if pod.Spec.Containers[i].Name == r.ContainerName {
				target = &pod.Spec.Containers[i]
			}
		}
		if target == nil {
			return "", fmt.Errorf("container %q not found", r.ContainerName)
		}
	}
	var q resource.Quantity
	limit := func(name corev1.ResourceName) resource.Quantity {
		if l, ok := target.Resources.Limits[name]; ok && !l.IsZero() {
			return l
		}
		return alloc[name]
	}
	switch r.Resource {
	case "limits.cpu":
		q = limit(corev1.ResourceCPU)
	case "limits.memory":
		q = limit(corev1.ResourceMemory)
	case "requests.cpu":
		q = *target.Resources.Requests.Cpu()
	case "requests.memory":
		q = *target.Resources.Requests.Memory()
	default:
		return "", fmt.Errorf("unsupported resource %q", r.Resource)
	}
	div := r.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	if strings.HasSuffix(r.Resource, ".cpu") {
		v := (q.MilliValue() + div.MilliValue() - 1) / div.MilliValue()
		return strconv.FormatInt(v, 10), nil
	}
	v := (q.Value() + div.Value() - 1) / div.Value()
	return strconv.FormatInt(v, 10), nil
}

// linuxResources maps requests and limits to cgroup settings: CPU shares
// from the request (1024 per core, at least 2), a CFS quota from the limit
// over a 100ms period, and the memory limit.
func linuxResources(c *corev1.Container, qos corev1.PodQOSClass, nodeMemory int64) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{}
	cpuReq := c.Resources.Requests.Cpu()
	if cpuReq.IsZero() {
		cpuReq = c.Resources.Limits.Cpu()
	}
	r.CpuShares = max(cpuReq.MilliValue()*1024/1000, 2)
	if lim := c.Resources.Limits.Cpu(); !lim.IsZero() {
		r.CpuPeriod = 100000
		r.CpuQuota = max(lim.MilliValue()*100000/1000, 1000)
	}
	if lim := c.Resources.Limits.Memory(); !lim.IsZero() {
		r.MemoryLimitInBytes = lim.Value()
	}
	switch qos {
	case corev1.PodQOSGuaranteed:
		r.OomScoreAdj = -997 // containerd's restrict_oom_score_adj raises it to its own
	case corev1.PodQOSBestEffort:
		r.OomScoreAdj = 1000
	default:
		adj := int64(1000)
		if req := c.Resources.Requests.Memory(); !req.IsZero() && nodeMemory > 0 {
			adj = 1000 - 1000*req.Value()/nodeMemory
		}
		r.OomScoreAdj = min(max(adj, 2), 999)
	}
	return r
}

// qosClass derives a pod's QoS class from its containers' resources.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	any, guaranteed := false, true
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[name]
			lim, hasLim := c.Resources.Limits[name]
			if (hasReq && !req.IsZero()) || (hasLim && !lim.IsZero()) {
				any = true
			}
			if !hasLim || lim.IsZero() || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// containerConfig builds the CRI config of one container instance.
func (k *Kubelet) containerConfig(pod *corev1.Pod, c *corev1.Container, init bool, attempt uint32, podIP string) (*runtimeapi.ContainerConfig, error) {
	env, err := envFor(pod, c, k.configs, podIP, k.nodeIP, k.cfg.NodeName, k.capacity())
	if err != nil {
		return nil, err
	}
	vals := map[string]string{}
	for _, kv := range env {
		vals[kv.Key] = string(kv.Value)
	}
	var command, args []string
	for _, s := range c.Command {
		command = append(command, expand(s, vals))
	}
	for _, s := range c.Args {
		args = append(args, expand(s, vals))
	}
	mounts, err := k.mountsFor(pod, c)
	if err != nil {
		return nil, err
	}
	labels := podLabels(pod, k.cfg.NodeName)
	labels[runtime.LabelContainerName] = c.Name
	annotations := map[string]string{
		annotationHash:  containerHash(c),
		annotationGrace: strconv.FormatInt(gracePeriod(pod), 10),
	}
	if init {
		annotations[annotationInit] = "true"
	}
	if tm := k.terminationLogPath(pod, c.Name, attempt); tm != "" && c.TerminationMessagePath != "" {
		if err := os.MkdirAll(filepath.Dir(tm), 0o755); err != nil {
			return nil, fmt.Errorf("pod %s/%s container %q: %w", pod.Namespace, pod.Name, c.Name, err)
		}
		if err := os.WriteFile(tm, nil, 0o666); err != nil {
			return nil, fmt.Errorf("pod %s/%s container %q: %w", pod.Namespace, pod.Name, c.Name, err)
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: c.TerminationMessagePath, HostPath: tm})
		annotations[annotationTermMsgPath] = tm
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:       &runtimeapi.ImageSpec{Image: c.Image},
		Command:     command,
		Args:        args,
		WorkingDir:  c.WorkingDir,
		Envs:        env,
		Mounts:      mounts,
		Labels:      labels,
		Annotations: annotations,
		LogPath:     filepath.Join(c.Name, strconv.Itoa(int(attempt))+".log"),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       linuxResources(c, qosClass(pod), k.memoryCapacity),
			SecurityContext: securityContext(pod, c),
		},
	}
	return cfg, nil
}

func securityContext(pod *corev1.Pod, c *corev1.Container) *runtimeapi.LinuxContainerSecurityContext {
	sc := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaceOptions(pod)}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		if psc.FSGroup != nil {
			sc.SupplementalGroups = append(sc.SupplementalGroups, *psc.FSGroup)
		}
	}
	if csc := c.SecurityContext; csc != nil {
		if csc.Privileged != nil {
			sc.Privileged = *csc.Privileged
		}
		if csc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *csc.RunAsUser}
		}
		if csc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *csc.RunAsGroup}
		}
		if csc.ReadOnlyRootFilesystem != nil {
			sc.ReadonlyRootfs = *csc.ReadOnlyRootFilesystem
		}
	}
	return sc
}

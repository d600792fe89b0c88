package registry

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// Namespaces is core/v1 namespaces (cluster-scoped) with status and finalize.
func Namespaces() *Resource {
	return &Resource{
		Version: "v1", Resource: "namespaces", Singular: "namespace", Kind: "Namespace", ListKind: "NamespaceList",
		ShortNames: []string{"ns"},
		New:        func() runtime.Object { return &corev1.Namespace{} },
		NewList:    func() runtime.Object { return &corev1.NamespaceList{} },
		HasStatus:  true,
		Strategy:   namespaceStrategy{},
		Finalize: func(incoming, stored runtime.Object) runtime.Object {
			out := stored.DeepCopyObject().(*corev1.Namespace)
			out.Spec.Finalizers = incoming.(*corev1.Namespace).Spec.Finalizers
			return out
		},
		Fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"status.phase": string(obj.(*corev1.Namespace).Status.Phase)}
		},
		Columns: []metav1.TableColumnDefinition{nameCol,
			col("Status", "string", "The status of the namespace"), ageCol},
		Row: func(obj runtime.Object) []any {
			n := obj.(*corev1.Namespace)
			return []any{n.Name, string(n.Status.Phase), Age(n.CreationTimestamp)}
		},
	}
}

type namespaceStrategy struct{ baseStrategy }

func (namespaceStrategy) PrepareForCreate(obj runtime.Object) {
	n := obj.(*corev1.Namespace)
	n.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
}

// PrepareForUpdate keeps spec.finalizers: only /finalize may change them,
// so an ordinary update cannot skip the namespace controller's cleanup.
func (namespaceStrategy) PrepareForUpdate(newObj, oldObj runtime.Object) {
	newObj.(*corev1.Namespace).Spec.Finalizers = oldObj.(*corev1.Namespace).Spec.Finalizers
}

func (namespaceStrategy) GracePeriod(runtime.Object, *int64) int64 { return 0 }

// BeginDelete moves the namespace to Terminating; new content is refused
// from now on and the namespace controller empties it.
func (namespaceStrategy) BeginDelete(obj runtime.Object) {
	obj.(*corev1.Namespace).Status.Phase = corev1.NamespaceTerminating
}

func (namespaceStrategy) Held(obj runtime.Object) bool {
	return len(obj.(*corev1.Namespace).Spec.Finalizers) > 0
}

// Services is core/v1 services with status.
func Services() *Resource {
	return &Resource{
		Version: "v1", Resource: "services", Singular: "service", Kind: "Service", ListKind: "ServiceList",
		ShortNames: []string{"svc"}, Namespaced: true, Categories: []string{"all"},
		New:       func() runtime.Object { return &corev1.Service{} },
		NewList:   func() runtime.Object { return &corev1.ServiceList{} },
		HasStatus: true,
		Strategy:  serviceStrategy{},
		Fields: func(obj runtime.Object) fields.Set {
			s := obj.(*corev1.Service)
			return fields.Set{"spec.clusterIP": s.Spec.ClusterIP, "spec.type": string(s.Spec.Type)}
		},
		Columns: []metav1.TableColumnDefinition{nameCol,
			col("Type", "string", "The type of the service."),
			col("Cluster-IP", "string", "The virtual IP of the service."),
			col("External-IP", "string", "External addresses of the service."),
			col("Port(s)", "string", "The ports the service exposes."),
			ageCol,
			wide(col("Selector", "string", "The label selector of the backing pods.")),
		},
		Row: func(obj runtime.Object) []any {
			s := obj.(*corev1.Service)
			ports := make([]string, 0, len(s.Spec.Ports))
			for _, p := range s.Spec.Ports {
				if p.NodePort != 0 {
					ports = append(ports, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol))
				} else {
					ports = append(ports, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
				}
			}
			ext := strings.Join(s.Spec.ExternalIPs, ",")
			if ext == "" && s.Spec.Type == corev1.ServiceTypeLoadBalancer {
				ext = "<pending>"
			}
			return []any{s.Name, string(s.Spec.Type), orNone(s.Spec.ClusterIP), orNone(ext),
				orNone(strings.Join(ports, ",")), Age(s.CreationTimestamp), orNone(selectorString(s.Spec.Selector))}
		},
	}
}

type serviceStrategy struct{ statusResetStrategy }

// PrepareForUpdate keeps what the server allocated when the client leaves
// it out (kubectl replace with the original manifest, say): the cluster IP
// and, for ports that stay, their node ports.
func (serviceStrategy) PrepareForUpdate(newObj, oldObj runtime.Object) {
	svc, old := newObj.(*corev1.Service), oldObj.(*corev1.Service)
	if svc.Spec.ClusterIP == "" && len(svc.Spec.ClusterIPs) == 0 {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = old.Spec.ClusterIP, old.Spec.ClusterIPs
	}
	// Fields that only make sense for some types go when the type changes
	// away from them, as Kubernetes does, instead of failing validation.
	if svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
		if old.Spec.Type == corev1.ServiceTypeNodePort || old.Spec.Type == corev1.ServiceTypeLoadBalancer {
			svc.Spec.ExternalTrafficPolicy = ""
		}
	}
	if svc.Spec.Type == old.Spec.Type {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			for _, op := range old.Spec.Ports {
				if p.NodePort == 0 && op.Port == p.Port && op.Protocol == p.Protocol {
					p.NodePort = op.NodePort
				}
			}
		}
	}
}

func selectorString(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// Endpoints is core/v1 endpoints.
func Endpoints() *Resource {
	return &Resource{
		Version: "v1", Resource: "endpoints", Singular: "endpoints", Kind: "Endpoints", ListKind: "EndpointsList",
		ShortNames: []string{"ep"}, Namespaced: true,
		New:      func() runtime.Object { return &corev1.Endpoints{} },
		NewList:  func() runtime.Object { return &corev1.EndpointsList{} },
		Strategy: baseStrategy{},
		Columns: []metav1.TableColumnDefinition{nameCol,
			col("Endpoints", "string", "Ready addresses and ports."), ageCol},
		Row: func(obj runtime.Object) []any {
			e := obj.(*corev1.Endpoints)
			var eps []string
			for _, ss := range e.Subsets {
				for _, a := range ss.Addresses {
					for _, p := range ss.Ports {
						eps = append(eps, fmt.Sprintf("%s:%d", a.IP, p.Port))
					}
					if len(ss.Ports) == 0 {
						eps = append(eps, a.IP)
					}
				}
			}
			s := strings.Join(eps, ",")
			if len(eps) > 3 {
				s = strings.Join(eps[:3], ",") + fmt.Sprintf(" + %d more...", len(eps)-3)
			}
			return []any{e.Name, orNone(s), Age(e.CreationTimestamp)}
		},
	}
}

// ConfigMaps is core/v1 configmaps.
func ConfigMaps() *Resource {
	return &Resource{
		Version: "v1", Resource: "configmaps", Singular: "configmap", Kind: "ConfigMap", ListKind: "ConfigMapList",
		ShortNames: []string{"cm"}, Namespaced: true,
		New:      func() runtime.Object { return &corev1.ConfigMap{} },
		NewList:  func() runtime.Object { return &corev1.ConfigMapList{} },
		Strategy: baseStrategy{},
		Columns:  []metav1.TableColumnDefinition{nameCol, col("Data", "integer", "Number of keys."), ageCol},
		Row: func(obj runtime.Object) []any {
			c := obj.(*corev1.ConfigMap)
			return []any{c.Name, int64(len(c.Data) + len(c.BinaryData)), Age(c.CreationTimestamp)}
		},
	}
}

// Secrets is core/v1 secrets, encrypted at rest.
func Secrets() *Resource {
	return &Resource{
		Version: "v1", Resource: "secrets", Singular: "secret", Kind: "Secret", ListKind: "SecretList",
		Namespaced: true, Encrypt: true,
		New:      func() runtime.Object { return &corev1.Secret{} },
		NewList:  func() runtime.Object { return &corev1.SecretList{} },
		Strategy: secretStrategy{},
		Fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"type": string(obj.(*corev1.Secret).Type)}
		},
		Columns: []metav1.TableColumnDefinition{nameCol, col("Type", "string", "The type of the secret."),
			col("Data", "integer", "Number of keys."), ageCol},
		Row: func(obj runtime.Object) []any {
			s := obj.(*corev1.Secret)
			return []any{s.Name, string(s.Type), int64(len(s.Data)), Age(s.CreationTimestamp)}
		},
	}
}

type secretStrategy struct{ baseStrategy }

// stringData is write-only sugar: fold it into data before storing.
func foldStringData(s *corev1.Secret) {
	if len(s.StringData) == 0 {
		return
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}

func (secretStrategy) PrepareForCreate(obj runtime.Object) { foldStringData(obj.(*corev1.Secret)) }
func (secretStrategy) PrepareForUpdate(newObj, _ runtime.Object) {
	foldStringData(newObj.(*corev1.Secret))
}

// Nodes is core/v1 nodes (cluster-scoped) with status. A node's status is
// written by its kubelet, which also creates it, so create keeps status.
func Nodes() *Resource {
	return &Resource{
		Version: "v1", Resource: "nodes", Singular: "node", Kind: "Node", ListKind: "NodeList",
		ShortNames: []string{"no"},
		New:        func() runtime.Object { return &corev1.Node{} },
		NewList:    func() runtime.Object { return &corev1.NodeList{} },
		HasStatus:  true,
		Strategy:   baseStrategy{},
		Fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"spec.unschedulable": fmt.Sprint(obj.(*corev1.Node).Spec.Unschedulable)}
		},
		Columns: []metav1.TableColumnDefinition{nameCol,
			col("Status", "string", "The status of the node"),
			col("Roles", "string", "The roles of the node"),
			ageCol,
			col("Version", "string", "Kubelet version"),
			wide(col("Internal-IP", "string", "Internal IP of the node")),
			wide(col("External-IP", "string", "External IP of the node")),
			wide(col("OS-Image", "string", "OS image reported by the node")),
			wide(col("Kernel-Version", "string", "Kernel version reported by the node")),
			wide(col("Container-Runtime", "string", "Container runtime reported by the node")),
		},
		Row: func(obj runtime.Object) []any {
			n := obj.(*corev1.Node)
			status := "Unknown"
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					if c.Status == corev1.ConditionTrue {
						status = "Ready"
					} else {
						status = "NotReady"
					}
				}
			}
			if n.Spec.Unschedulable {
				status += ",SchedulingDisabled"
			}
			var roles []string
			for k := range n.Labels {
				if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
					roles = append(roles, r)
				}
			}
			sort.Strings(roles)
			internal, external := "", ""
			for _, a := range n.Status.Addresses {
				switch a.Type {
				case corev1.NodeInternalIP:
					if internal == "" {
						internal = a.Address
					}
				case corev1.NodeExternalIP:
					if external == "" {
						external = a.Address
					}
				}
			}
			info := n.Status.NodeInfo
			return []any{n.Name, status, orNone(strings.Join(roles, ",")), Age(n.CreationTimestamp),
				info.KubeletVersion, orNone(internal), orNone(external), orNone(info.OSImage),
				orNone(info.KernelVersion), orNone(info.ContainerRuntimeVersion)}
		},
	}
}

// Events is core/v1 events.
func Events() *Resource {
	return &Resource{
		Version: "v1", Resource: "events", Singular: "event", Kind: "Event", ListKind: "EventList",
		ShortNames: []string{"ev"}, Namespaced: true,
		New:      func() runtime.Object { return &corev1.Event{} },
		NewList:  func() runtime.Object { return &corev1.EventList{} },
		Strategy: baseStrategy{},
		Fields: func(obj runtime.Object) fields.Set {
			e := obj.(*corev1.Event)
			return fields.Set{
				"involvedObject.kind": e.InvolvedObject.Kind, "involvedObject.namespace": e.InvolvedObject.Namespace,
				"involvedObject.name": e.InvolvedObject.Name, "involvedObject.uid": string(e.InvolvedObject.UID),
				"involvedObject.apiVersion": e.InvolvedObject.APIVersion, "involvedObject.fieldPath": e.InvolvedObject.FieldPath,
				"reason": e.Reason, "type": e.Type, "source": e.Source.Component,
				"reportingComponent": e.ReportingController,
			}
		},
		Columns: []metav1.TableColumnDefinition{
			col("Last Seen", "string", "Time since the event was last seen"),
			col("Type", "string", "Normal or Warning"),
			col("Reason", "string", "Why the event happened"),
			col("Object", "string", "The object the event is about"),
			col("Message", "string", "What happened"),
		},
		Row: func(obj runtime.Object) []any {
			e := obj.(*corev1.Event)
			last := e.LastTimestamp
			if last.IsZero() {
				last = metav1.NewTime(e.EventTime.Time)
			}
			if last.IsZero() {
				last = e.CreationTimestamp
			}
			return []any{Age(last), e.Type, e.Reason,
				strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name, e.Message}
		},
	}
}

package endpoints

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

func pod(name, ip string, ready bool, ports ...corev1.ContainerPort) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	return p
}

func svc(publishNotReady bool, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: ports, PublishNotReadyAddresses: publishNotReady}}
}

var (
	httpByName = corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}
	metrics    = corev1.ServicePort{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9100)}
	named8080  = corev1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}
	named8081  = corev1.ContainerPort{Name: "http", ContainerPort: 8081, Protocol: corev1.ProtocolTCP}
)

// summary renders subsets compactly: ports | ready IPs | not-ready IPs.
func summary(ss []corev1.EndpointSubset) string {
	type sub struct {
		Ports    []string `json:"p"`
		Ready    []string `json:"r,omitempty"`
		NotReady []string `json:"n,omitempty"`
	}
	var out []sub
	for _, s := range ss {
		var x sub
		for _, p := range s.Ports {
			x.Ports = append(x.Ports, fmt.Sprintf("%s:%d", p.Name, p.Port))
		}
		for _, a := range s.Addresses {
			x.Ready = append(x.Ready, a.IP)
		}
		for _, a := range s.NotReadyAddresses {
			x.NotReady = append(x.NotReady, a.IP)
		}
		out = append(out, x)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func TestComputeSubsets(t *testing.T) {
	terminating := pod("term", "10.0.0.9", true, named8080)
	terminating.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	finished := pod("done", "10.0.0.8", false, named8080)
	finished.Status.Phase = corev1.PodSucceeded
	udp := corev1.ContainerPort{Name: "http", ContainerPort: 5353, Protocol: corev1.ProtocolUDP}

	tests := []struct {
		name string
		svc  *corev1.Service
		pods []*corev1.Pod
		want string
	}{
		{"ready and not ready", svc(false, httpByName),
			[]*corev1.Pod{pod("b", "10.0.0.2", false, named8080), pod("a", "10.0.0.1", true, named8080), pod("c", "10.0.0.3", true, named8080)},
			`[{"p":["http:8080"],"r":["10.0.0.1","10.0.0.3"],"n":["10.0.0.2"]}]`},
		{"named port resolved per pod", svc(false, httpByName),
			[]*corev1.Pod{pod("a", "10.0.0.1", true, named8080), pod("b", "10.0.0.2", true, named8081)},
			`[{"p":["http:8080"],"r":["10.0.0.1"]},{"p":["http:8081"],"r":["10.0.0.2"]}]`},
		{"pod without the named port serves only the numeric one", svc(false, httpByName, metrics),
			[]*corev1.Pod{pod("a", "10.0.0.1", true, named8080), pod("b", "10.0.0.2", true)},
			`[{"p":["http:8080","metrics:9100"],"r":["10.0.0.1"]},{"p":["metrics:9100"],"r":["10.0.0.2"]}]`},
		{"protocol must match", svc(false, httpByName), []*corev1.Pod{pod("a", "10.0.0.1", true, udp)}, `null`},
		{"no IP, terminating and finished pods are left out", svc(false, httpByName),
			[]*corev1.Pod{pod("noip", "", true, named8080), terminating, finished}, `null`},
		{"publishNotReadyAddresses", svc(true, httpByName),
			[]*corev1.Pod{pod("a", "10.0.0.1", false, named8080), terminating},
			`[{"p":["http:8080"],"r":["10.0.0.1","10.0.0.9"]}]`},
		{"headless without ports", svc(false), []*corev1.Pod{pod("a", "10.0.0.1", true)}, `[{"p":null,"r":["10.0.0.1"]}]`},
		{"targetPort 0 means the service port", svc(false, corev1.ServicePort{Name: "x", Port: 81, Protocol: corev1.ProtocolTCP}),
			[]*corev1.Pod{pod("a", "10.0.0.1", true)}, `[{"p":["x:81"],"r":["10.0.0.1"]}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summary(ComputeSubsets(tt.svc, tt.pods)); got != tt.want {
				t.Errorf("subsets = %s\nwant      %s", got, tt.want)
			}
		})
	}
}

func TestAddressDetails(t *testing.T) {
	p := pod("a", "10.0.0.1", true, named8080)
	p.Spec.Hostname, p.Spec.Subdomain = "a-host", "web"
	ss := ComputeSubsets(svc(false, httpByName), []*corev1.Pod{p})
	a := ss[0].Addresses[0]
	if a.Hostname != "a-host" || a.NodeName == nil || *a.NodeName != "n1" ||
		a.TargetRef == nil || a.TargetRef.Kind != "Pod" || a.TargetRef.Name != "a" || a.TargetRef.UID != p.UID {
		t.Errorf("address = %+v (targetRef %+v)", a, a.TargetRef)
	}
}

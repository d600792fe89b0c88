package kubelet

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

func TestSandboxConfig(t *testing.T) {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("# host\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := &Kubelet{cfg: Config{NodeName: "n1", RootDir: "/var/lib/k", ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local",
		ResolvConf: resolv, CgroupRoot: "/minik8s/n1"}, hostname: "n1-host", nodeIP: "192.0.2.10"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1"},
		Spec: corev1.PodSpec{
			Hostname:                      "front",
			TerminationGracePeriodSeconds: int64p(7),
			Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{
				{ContainerPort: 8080, HostPort: 30080},
				{ContainerPort: 53, HostPort: 5353, Protocol: corev1.ProtocolUDP},
				{ContainerPort: 9090},
			}}},
		},
	}
	cfg, err := k.sandboxConfig(pod, 2)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname != "front" || cfg.Metadata.Attempt != 2 || cfg.Metadata.Uid != "u1" || cfg.LogDirectory != "/var/lib/k/logs/shop_web_u1" {
		t.Errorf("sandbox %+v", cfg)
	}
	if cfg.Linux.CgroupParent != "/minik8s/n1/podu1" || cfg.Annotations[annotationGrace] != "7" || cfg.Labels["io.minik8s.node"] != "n1" {
		t.Errorf("cgroup %q annotations %v labels %v", cfg.Linux.CgroupParent, cfg.Annotations, cfg.Labels)
	}
	if len(cfg.PortMappings) != 2 || cfg.PortMappings[1].Protocol != runtimeapi.Protocol_UDP || cfg.PortMappings[0].HostPort != 30080 {
		t.Errorf("port mappings %v", cfg.PortMappings)
	}
	if ns := cfg.Linux.SecurityContext.NamespaceOptions; ns.Network != runtimeapi.NamespaceMode_POD || ns.Pid != runtimeapi.NamespaceMode_CONTAINER {
		t.Errorf("namespaces %v", ns)
	}
	// ClusterFirst with a cluster DNS: the cluster's resolver and search path.
	if d := cfg.DnsConfig; !slices.Equal(d.Servers, []string{"10.96.0.10"}) || d.Searches[0] != "shop.svc.cluster.local" || !slices.Contains(d.Options, "ndots:5") {
		t.Errorf("cluster-first DNS %v", d)
	}

	// Host network: the node's name, network namespace and resolv.conf.
	pod.Spec.HostNetwork = true
	cfg, _ = k.sandboxConfig(pod, 0)
	if cfg.Hostname != "n1-host" || cfg.Linux.SecurityContext.NamespaceOptions.Network != runtimeapi.NamespaceMode_NODE {
		t.Errorf("host network sandbox %+v", cfg)
	}
	if d := cfg.DnsConfig; !slices.Equal(d.Servers, []string{"192.0.2.53"}) || !slices.Equal(d.Searches, []string{"corp.example"}) {
		t.Errorf("host network DNS %v", d)
	}
	// dnsPolicy None: only dnsConfig.
	pod.Spec.HostNetwork = false
	pod.Spec.DNSPolicy = corev1.DNSNone
	v := "2"
	pod.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"198.51.100.1"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &v}}}
	cfg, _ = k.sandboxConfig(pod, 0)
	if d := cfg.DnsConfig; !slices.Equal(d.Servers, []string{"198.51.100.1"}) || !slices.Equal(d.Options, []string{"ndots:2"}) || len(d.Searches) != 0 {
		t.Errorf("None DNS %v", d)
	}
}

func int64p(v int64) *int64 { return &v }

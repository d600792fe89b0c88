package kubelet

import (
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/minik8s/minik8s/kubelet/runtime"
)

func nil2cfg() *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "default", Uid: "u1"},
		Labels: map[string]string{runtime.LabelPodUID: "u1"}}
}

func ctrCfg(name string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: "img"},
		Labels: map[string]string{runtime.LabelPodUID: "u1", runtime.LabelContainerName: name}}
}

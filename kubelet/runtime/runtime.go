package runtime

import (
	"context"
	"errors"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Runtime is what the kubelet needs from a container runtime. Every call
// takes a context that bounds it; implementations must be safe for
// concurrent use.
type Runtime interface {
	// Version is the runtime's name and version, e.g. "containerd", "1.6.20".
	Version(ctx context.Context) (name, version string, err error)

	// RunPodSandbox creates and starts a sandbox (network namespace, pause
	// process) and returns its id.
	RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig) (string, error)
	// StopPodSandbox stops the sandbox and every container in it and tears
	// down its network. Stopping a stopped sandbox is not an error.
	StopPodSandbox(ctx context.Context, id string) error
	// RemovePodSandbox removes a sandbox and its containers. Removing a
	// missing sandbox is not an error.
	RemovePodSandbox(ctx context.Context, id string) error
	// PodSandboxStatus reports one sandbox; a missing one is ErrNotFound.
	PodSandboxStatus(ctx context.Context, id string) (*runtimeapi.PodSandboxStatus, error)
	// ListPodSandbox lists sandboxes matching filter (nil = all).
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)

	// CreateContainer creates a container in a sandbox and returns its id.
	CreateContainer(ctx context.Context, sandboxID string, cfg *runtimeapi.ContainerConfig, sandboxCfg *runtimeapi.PodSandboxConfig) (string, error)
	StartContainer(ctx context.Context, id string) error
	// StopContainer sends the stop signal (SIGTERM unless the image says
	// otherwise) and SIGKILL after timeout. Stopping an exited container
	// is not an error.
	StopContainer(ctx context.Context, id string, timeout time.Duration) error
	// RemoveContainer removes a container; a missing one is not an error.
	RemoveContainer(ctx context.Context, id string) error
	// ContainerStatus reports one container; a missing one is ErrNotFound.
	ContainerStatus(ctx context.Context, id string) (*runtimeapi.ContainerStatus, error)
	// ListContainers lists containers matching filter (nil = all).
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	// ReopenContainerLog makes the runtime close a running container's log
	// file and open its LogPath anew (after the kubelet renamed it away to
	// rotate it).
	ReopenContainerLog(ctx context.Context, id string) error
	// ExecSync runs cmd in a running container and waits at most timeout.
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*ExecResult, error)
	// Exec prepares a streaming exec and returns the URL of the runtime's
	// streaming server that serves it (SPDY or WebSocket remotecommand).
	Exec(ctx context.Context, req *runtimeapi.ExecRequest) (string, error)

	// PullImage pulls image and returns its reference (id).
	PullImage(ctx context.Context, image string) (string, error)
	// ImageStatus reports an image, or nil (no error) when it is absent.
	ImageStatus(ctx context.Context, image string) (*runtimeapi.Image, error)
	// ListImages lists every image.
	ListImages(ctx context.Context) ([]*runtimeapi.Image, error)
	// RemoveImage removes an image (by id or reference); a missing one is
	// not an error.
	RemoveImage(ctx context.Context, image string) error
	// ImageFsInfo reports the filesystems that hold images (nil if the
	// runtime keeps none on disk).
	ImageFsInfo(ctx context.Context) ([]*runtimeapi.FilesystemUsage, error)
	// SandboxImage is the image the runtime runs pod sandboxes from ("" if
	// it does not say); image garbage collection must never remove it.
	SandboxImage(ctx context.Context) (string, error)
}

// ExecResult is what ExecSync returns: the command's output and exit code.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int32
}

// ErrNotFound is returned (wrapped) for a sandbox or container the runtime
// does not know.
var ErrNotFound = errors.New("not found")

// Labels the kubelet puts on sandboxes and containers so it can find a
// pod's pieces again after a restart.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
	// LabelNode is minik8s's own: which kubelet made this object, so that
	// several kubelets can share one runtime (hollow nodes, tests).
	LabelNode = "io.minik8s.node"
)

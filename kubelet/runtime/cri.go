package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxMsgSize bounds CRI messages: lists of many containers can be large.
const maxMsgSize = 16 << 20

// CRI is a Runtime over the CRI gRPC API (containerd, CRI-O).
type CRI struct {
	conn    *grpc.ClientConn
	rt      runtimeapi.RuntimeServiceClient
	img     runtimeapi.ImageServiceClient
	address string
}

var _ Runtime = (*CRI)(nil)

// DialCRI connects to the CRI endpoint (a unix socket path or a
// unix:///path URL) and checks that it answers within ctx.
func DialCRI(ctx context.Context, endpoint string) (*CRI, error) {
	target := endpoint
	if !strings.Contains(target, "://") {
		target = "unix://" + target
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)))
	if err != nil {
		return nil, fmt.Errorf("cri %s: %w", endpoint, err)
	}
	c := &CRI{conn: conn, rt: runtimeapi.NewRuntimeServiceClient(conn), img: runtimeapi.NewImageServiceClient(conn), address: endpoint}
	if _, _, err := c.Version(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the connection.
func (c *CRI) Close() error { return c.conn.Close() }

// Address is the endpoint this client talks to.
func (c *CRI) Address() string { return c.address }

// wrap turns a gRPC error into one naming the call and object, mapping
// NotFound to ErrNotFound.
func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("%s: %w: %s", what, ErrNotFound, status.Convert(err).Message())
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Version implements Runtime.
func (c *CRI) Version(ctx context.Context) (string, string, error) {
	r, err := c.rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return "", "", wrap(err, "cri version")
	}
	return r.RuntimeName, r.RuntimeVersion, nil
}

// Status reports the runtime's conditions (RuntimeReady, NetworkReady).
func (c *CRI) Status(ctx context.Context) (*runtimeapi.RuntimeStatus, error) {
	r, err := c.rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return nil, wrap(err, "cri status")
	}
	return r.Status, nil
}

// RunPodSandbox implements Runtime.
func (c *CRI) RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig) (string, error) {
	r, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return "", wrap(err, "run sandbox for pod "+sandboxName(cfg))
	}
	return r.PodSandboxId, nil
}

func sandboxName(cfg *runtimeapi.PodSandboxConfig) string {
	if cfg == nil || cfg.Metadata == nil {
		return "?"
	}
	return cfg.Metadata.Namespace + "/" + cfg.Metadata.Name
}

// StopPodSandbox implements Runtime.
func (c *CRI) StopPodSandbox(ctx context.Context, id string) error {
	_, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return wrap(err, "stop sandbox "+id)
}

// RemovePodSandbox implements Runtime.
func (c *CRI) RemovePodSandbox(ctx context.Context, id string) error {
	_, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return wrap(err, "remove sandbox "+id)
}

// PodSandboxStatus implements Runtime.
func (c *CRI) PodSandboxStatus(ctx context.Context, id string) (*runtimeapi.PodSandboxStatus, error) {
	r, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		return nil, wrap(err, "sandbox status "+id)
	}
	return r.Status, nil
}

// ListPodSandbox implements Runtime.
func (c *CRI) ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	r, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: filter})
	if err != nil {
		return nil, wrap(err, "list sandboxes")
	}
	return r.Items, nil
}

// CreateContainer implements Runtime.
func (c *CRI) CreateContainer(ctx context.Context, sandboxID string, cfg *runtimeapi.ContainerConfig, sandboxCfg *runtimeapi.PodSandboxConfig) (string, error) {
	r, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sandboxID, Config: cfg, SandboxConfig: sandboxCfg})
	if err != nil {
		name := "?"
		if cfg != nil && cfg.Metadata != nil {
			name = cfg.Metadata.Name
		}
		return "", wrap(err, fmt.Sprintf("create container %q of pod %s", name, sandboxName(sandboxCfg)))
	}
	return r.ContainerId, nil
}

// StartContainer implements Runtime.
func (c *CRI) StartContainer(ctx context.Context, id string) error {
	_, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
	return wrap(err, "start container "+id)
}

// StopContainer implements Runtime. The call may take up to timeout plus
// the kill, so ctx should allow for it.
func (c *CRI) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	secs := int64((timeout + time.Second - 1) / time.Second)
	_, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: secs})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return wrap(err, "stop container "+id)
}

// RemoveContainer implements Runtime.
func (c *CRI) RemoveContainer(ctx context.Context, id string) error {
	_, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return wrap(err, "remove container "+id)
}

// ContainerStatus implements Runtime.
func (c *CRI) ContainerStatus(ctx context.Context, id string) (*runtimeapi.ContainerStatus, error) {
	r, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return nil, wrap(err, "container status "+id)
	}
	return r.Status, nil
}

// ListContainers implements Runtime.
func (c *CRI) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	r, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: filter})
	if err != nil {
		return nil, wrap(err, "list containers")
	}
	return r.Containers, nil
}

// ReopenContainerLog implements Runtime.
func (c *CRI) ReopenContainerLog(ctx context.Context, id string) error {
	_, err := c.rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id})
	return wrap(err, "reopen log of container "+id)
}

// ExecSync implements Runtime.
func (c *CRI) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*ExecResult, error) {
	secs := int64((timeout + time.Second - 1) / time.Second)
	// Give the runtime a moment beyond the command's own timeout to answer.
	ctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: secs})
	if err != nil {
		return nil, wrap(err, fmt.Sprintf("exec %q in container %s", cmd, id))
	}
	return &ExecResult{Stdout: r.Stdout, Stderr: r.Stderr, ExitCode: r.ExitCode}, nil
}

// Exec implements Runtime.
func (c *CRI) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (string, error) {
	r, err := c.rt.Exec(ctx, req)
	if err != nil {
		return "", wrap(err, fmt.Sprintf("exec %q in container %s", req.Cmd, req.ContainerId))
	}
	return r.Url, nil
}

// PullImage implements Runtime.
func (c *CRI) PullImage(ctx context.Context, image string) (string, error) {
	r, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: image}})
	if err != nil {
		return "", wrap(err, "pull image "+image)
	}
	return r.ImageRef, nil
}

// ImageStatus implements Runtime.
func (c *CRI) ImageStatus(ctx context.Context, image string) (*runtimeapi.Image, error) {
	r, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: image}})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return nil, nil
		}
		return nil, wrap(err, "image status "+image)
	}
	return r.Image, nil
}

// ListImages implements Runtime.
func (c *CRI) ListImages(ctx context.Context) ([]*runtimeapi.Image, error) {
	r, err := c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return nil, wrap(err, "list images")
	}
	return r.Images, nil
}

// RemoveImage implements Runtime.
func (c *CRI) RemoveImage(ctx context.Context, image string) error {
	_, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: image}})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return wrap(err, "remove image "+image)
}

// ImageFsInfo implements Runtime.
func (c *CRI) ImageFsInfo(ctx context.Context) ([]*runtimeapi.FilesystemUsage, error) {
	r, err := c.img.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		return nil, wrap(err, "image filesystem info")
	}
	return r.ImageFilesystems, nil
}

// SandboxImage implements Runtime: containerd's verbose status carries its
// CRI config, whose sandboxImage is the pause image.
func (c *CRI) SandboxImage(ctx context.Context) (string, error) {
	r, err := c.rt.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return "", wrap(err, "cri status")
	}
	var cfg struct {
		SandboxImage string `json:"sandboxImage"`
	}
	if raw := r.Info["config"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
			return "", fmt.Errorf("cri status: config: %w", err)
		}
	}
	return cfg.SandboxImage, nil
}

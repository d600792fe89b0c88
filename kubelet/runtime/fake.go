package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Fake is an in-memory Runtime: sandboxes are ready and containers run the
// moment they are started, and nothing runs anywhere. Unit tests use it to
// drive the kubelet (and make containers exit with SetExited); hollow nodes
// use it to stand in for thousands of pods. It is safe for concurrent use.
type Fake struct {
	// Now is the clock stamped on sandboxes and containers; nil = time.Now.
	Now func() time.Time
	// PodIP returns the IP of a new sandbox; nil = 10.88.<n>.<n>.
	PodIP func(cfg *runtimeapi.PodSandboxConfig) string
	// ExecHook, if set, answers ExecSync; nil = exit 0 with no output.
	ExecHook func(containerID string, cmd []string) (*ExecResult, error)

	mu         sync.Mutex
	sandboxes  map[string]*fakeSandbox
	containers map[string]*fakeContainer
	images     map[string]bool // present images
	pullErr    map[string]error
	calls      []string
	ipNext     int
}

type fakeSandbox struct {
	cfg     *runtimeapi.PodSandboxConfig
	state   runtimeapi.PodSandboxState
	created time.Time
	ip      string
}

type fakeContainer struct {
	status  *runtimeapi.ContainerStatus
	sandbox string
}

var _ Runtime = (*Fake)(nil)

// NewFake returns an empty fake runtime in which every image is present
// unless RemoveImage or SetPullError says otherwise.
func NewFake() *Fake {
	return &Fake{
		sandboxes:  map[string]*fakeSandbox{},
		containers: map[string]*fakeContainer{},
		images:     map[string]bool{},
		pullErr:    map[string]error{},
	}
}

func (f *Fake) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (f *Fake) record(call string) { f.calls = append(f.calls, call) }

// Calls returns the names of the calls made so far, in order (for tests).
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Version implements Runtime.
func (f *Fake) Version(context.Context) (string, string, error) { return "fake", "0.1.0", nil }

// RunPodSandbox implements Runtime.
func (f *Fake) RunPodSandbox(_ context.Context, cfg *runtimeapi.PodSandboxConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RunPodSandbox")
	id := newID()
	ip := ""
	if f.PodIP != nil {
		ip = f.PodIP(cfg)
	} else {
		f.ipNext++
		ip = fmt.Sprintf("10.88.%d.%d", f.ipNext/250, f.ipNext%250+2)
	}
	f.sandboxes[id] = &fakeSandbox{cfg: cfg, state: runtimeapi.PodSandboxState_SANDBOX_READY, created: f.now(), ip: ip}
	return id, nil
}

// StopPodSandbox implements Runtime.
func (f *Fake) StopPodSandbox(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("StopPodSandbox")
	s, ok := f.sandboxes[id]
	if !ok {
		return nil
	}
	s.state = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	for _, c := range f.containers {
		if c.sandbox == id {
			f.exitLocked(c, 137, "Error")
		}
	}
	return nil
}

// RemovePodSandbox implements Runtime.
func (f *Fake) RemovePodSandbox(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemovePodSandbox")
	for cid, c := range f.containers {
		if c.sandbox == id {
			delete(f.containers, cid)
		}
	}
	delete(f.sandboxes, id)
	return nil
}

// PodSandboxStatus implements Runtime.
func (f *Fake) PodSandboxStatus(_ context.Context, id string) (*runtimeapi.PodSandboxStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sandboxes[id]
	if !ok {
		return nil, fmt.Errorf("sandbox %s: %w", id, ErrNotFound)
	}
	st := &runtimeapi.PodSandboxStatus{
		Id: id, Metadata: s.cfg.Metadata, State: s.state, CreatedAt: s.created.UnixNano(),
		Labels: maps.Clone(s.cfg.Labels), Annotations: maps.Clone(s.cfg.Annotations),
	}
	if s.state == runtimeapi.PodSandboxState_SANDBOX_READY {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: s.ip}
	}
	return st, nil
}

func matchLabels(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// ListPodSandbox implements Runtime.
func (f *Fake) ListPodSandbox(_ context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.PodSandbox
	for id, s := range f.sandboxes {
		if filter != nil {
			if filter.Id != "" && filter.Id != id {
				continue
			}
			if filter.State != nil && filter.State.State != s.state {
				continue
			}
			if !matchLabels(filter.LabelSelector, s.cfg.Labels) {
				continue
			}
		}
		out = append(out, &runtimeapi.PodSandbox{Id: id, Metadata: s.cfg.Metadata, State: s.state, CreatedAt: s.created.UnixNano(),
			Labels: maps.Clone(s.cfg.Labels), Annotations: maps.Clone(s.cfg.Annotations)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out, nil
}

// CreateContainer implements Runtime.
func (f *Fake) CreateContainer(_ context.Context, sandboxID string, cfg *runtimeapi.ContainerConfig, sandboxCfg *runtimeapi.PodSandboxConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("CreateContainer " + cfg.GetMetadata().GetName())
	s, ok := f.sandboxes[sandboxID]
	if !ok {
		return "", fmt.Errorf("create container %q: sandbox %s: %w", cfg.GetMetadata().GetName(), sandboxID, ErrNotFound)
	}
	if s.state != runtimeapi.PodSandboxState_SANDBOX_READY {
		return "", fmt.Errorf("create container %q: sandbox %s is not ready", cfg.GetMetadata().GetName(), sandboxID)
	}
	if img := cfg.GetImage().GetImage(); !f.imagePresentLocked(img) {
		return "", fmt.Errorf("create container %q: image %q: %w", cfg.GetMetadata().GetName(), img, ErrNotFound)
	}
	id := newID()
	logPath := ""
	if cfg.LogPath != "" && s.cfg.LogDirectory != "" {
		logPath = filepath.Join(s.cfg.LogDirectory, cfg.LogPath)
	}
	f.containers[id] = &fakeContainer{sandbox: sandboxID, status: &runtimeapi.ContainerStatus{
		Id: id, Metadata: cfg.Metadata, State: runtimeapi.ContainerState_CONTAINER_CREATED,
		CreatedAt: f.now().UnixNano(), Image: cfg.Image, ImageRef: "fake://" + cfg.GetImage().GetImage(),
		Labels: maps.Clone(cfg.Labels), Annotations: maps.Clone(cfg.Annotations), LogPath: logPath,
	}}
	return id, nil
}

// StartContainer implements Runtime.
func (f *Fake) StartContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("start container %s: %w", id, ErrNotFound)
	}
	f.record("StartContainer " + c.status.Metadata.GetName())
	if c.status.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		return fmt.Errorf("start container %s: state is %s", id, c.status.State)
	}
	c.status.State = runtimeapi.ContainerState_CONTAINER_RUNNING
	c.status.StartedAt = f.now().UnixNano()
	return nil
}

func (f *Fake) exitLocked(c *fakeContainer, code int32, reason string) {
	if c.status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		return
	}
	if c.status.StartedAt == 0 {
		c.status.StartedAt = f.now().UnixNano()
	}
	c.status.State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.status.FinishedAt = f.now().UnixNano()
	c.status.ExitCode = code
	c.status.Reason = reason
}

// StopContainer implements Runtime: a running container exits at once
// with 137 (as if SIGKILLed; fake processes have no SIGTERM handler).
func (f *Fake) StopContainer(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return nil
	}
	f.record("StopContainer " + c.status.Metadata.GetName())
	f.exitLocked(c, 137, "Error")
	return nil
}

// RemoveContainer implements Runtime.
func (f *Fake) RemoveContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[id]; ok {
		f.record("RemoveContainer " + c.status.Metadata.GetName())
	}
	delete(f.containers, id)
	return nil
}

// ContainerStatus implements Runtime.
func (f *Fake) ContainerStatus(_ context.Context, id string) (*runtimeapi.ContainerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	return proto.Clone(c.status).(*runtimeapi.ContainerStatus), nil
}

// ListContainers implements Runtime.
func (f *Fake) ListContainers(_ context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.Container
	for id, c := range f.containers {
		if filter != nil {
			if filter.Id != "" && filter.Id != id {
				continue
			}
			if filter.PodSandboxId != "" && filter.PodSandboxId != c.sandbox {
				continue
			}
			if filter.State != nil && filter.State.State != c.status.State {
				continue
			}
			if !matchLabels(filter.LabelSelector, c.status.Labels) {
				continue
			}
		}
		out = append(out, &runtimeapi.Container{Id: id, PodSandboxId: c.sandbox, Metadata: c.status.Metadata, Image: c.status.Image,
			ImageRef: c.status.ImageRef, State: c.status.State, CreatedAt: c.status.CreatedAt,
			Labels: maps.Clone(c.status.Labels), Annotations: maps.Clone(c.status.Annotations)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out, nil
}

// ReopenContainerLog implements Runtime: like containerd, it creates an
// empty file at the running container's LogPath (the kubelet has renamed
// the old one away).
func (f *Fake) ReopenContainerLog(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("reopen log of container %s: %w", id, ErrNotFound)
	}
	f.record("ReopenContainerLog " + c.status.Metadata.GetName())
	if c.status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return fmt.Errorf("reopen log of container %s: it is not running", id)
	}
	if c.status.LogPath == "" {
		return nil
	}
	file, err := os.OpenFile(c.status.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("reopen log of container %s: %w", id, err)
	}
	return file.Close()
}

// ExecSync implements Runtime.
func (f *Fake) ExecSync(_ context.Context, id string, cmd []string, _ time.Duration) (*ExecResult, error) {
	f.mu.Lock()
	c, ok := f.containers[id]
	running := ok && c.status.State == runtimeapi.ContainerState_CONTAINER_RUNNING
	hook := f.ExecHook
	f.mu.Unlock()
	if !running {
		return nil, fmt.Errorf("exec in container %s: not running", id)
	}
	if hook != nil {
		return hook(id, cmd)
	}
	return &ExecResult{}, nil
}

// Exec implements Runtime: the fake has no streaming server.
func (f *Fake) Exec(_ context.Context, req *runtimeapi.ExecRequest) (string, error) {
	return "", fmt.Errorf("exec in container %s: the fake runtime has no streaming server", req.ContainerId)
}

func (f *Fake) imagePresentLocked(image string) bool {
	present, known := f.images[image]
	return !known || present
}

// PullImage implements Runtime.
func (f *Fake) PullImage(_ context.Context, image string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("PullImage " + image)
	if err := f.pullErr[image]; err != nil {
		return "", fmt.Errorf("pull image %s: %w", image, err)
	}
	f.images[image] = true
	return "fake://" + image, nil
}

// ImageStatus implements Runtime.
func (f *Fake) ImageStatus(_ context.Context, image string) (*runtimeapi.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.imagePresentLocked(image) {
		return nil, nil
	}
	return &runtimeapi.Image{Id: "fake://" + image, RepoTags: []string{image}, Size: 2 << 20}, nil
}

// ListImages implements Runtime.
func (f *Fake) ListImages(context.Context) ([]*runtimeapi.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.Image
	for img, present := range f.images {
		if present {
			out = append(out, &runtimeapi.Image{Id: "fake://" + img, RepoTags: []string{img}, Size: 2 << 20})
		}
	}
	return out, nil
}

// Test controls.

// RemoveImage implements Runtime: image is absent until pulled.
func (f *Fake) RemoveImage(_ context.Context, image string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemoveImage " + image)
	f.images[strings.TrimPrefix(image, "fake://")] = false
	return nil
}

// ImageFsInfo implements Runtime: the fake keeps no images on disk.
func (f *Fake) ImageFsInfo(context.Context) ([]*runtimeapi.FilesystemUsage, error) { return nil, nil }

// SandboxImage implements Runtime.
func (f *Fake) SandboxImage(context.Context) (string, error) { return "", nil }

// SetPullError makes pulls of image fail with err (nil clears it).
func (f *Fake) SetPullError(image string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.pullErr, image)
		return
	}
	f.pullErr[image] = err
	f.images[image] = false
}

// SetExited makes a container exit now with code and reason (e.g.
// "OOMKilled", "Error", "Completed").
func (f *Fake) SetExited(id string, code int32, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	f.exitLocked(c, code, reason)
	return nil
}

// ContainerIDs returns the ids of the containers named name (in creation
// order) of the pod with uid.
func (f *Fake) ContainerIDs(podUID, name string) []string {
	cs, _ := f.ListContainers(context.Background(), &runtimeapi.ContainerFilter{LabelSelector: map[string]string{LabelPodUID: podUID, LabelContainerName: name}})
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.Id)
	}
	return ids
}

// RunningContainerID returns the id of the running container named name
// of the pod with uid, or "".
func (f *Fake) RunningContainerID(podUID, name string) string {
	cs, _ := f.ListContainers(context.Background(), &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{LabelPodUID: podUID, LabelContainerName: name},
	})
	if len(cs) == 0 {
		return ""
	}
	return cs[len(cs)-1].Id
}

// Counts returns how many sandboxes and containers exist, and how many
// containers are running.
func (f *Fake) Counts() (sandboxes, containers, running int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.status.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			running++
		}
	}
	return len(f.sandboxes), len(f.containers), running
}

package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ContainerdOptions say how to run a private containerd for one node.
type ContainerdOptions struct {
	// Dir holds everything: config.toml, root/, state/, containerd.sock,
	// cni/net.d (the conflist), cni/ipam (host-local's leases), and
	// containerd.log.
	Dir string
	// Binary is the containerd executable; "" means "containerd" on PATH.
	Binary string
	// SandboxImage is the pause image (CRI sandbox_image).
	SandboxImage string
	// PodCIDR is the node's pod range for the bridge + host-local network.
	// Empty means no CNI config is written (pods get no network).
	PodCIDR string
	// Bridge is the Linux bridge name (at most 15 bytes); "" derives one
	// from Dir, so two nodes on one machine do not share a bridge.
	Bridge string
	// NoMasquerade leaves out the SNAT of pod traffic leaving the pod CIDR
	// (one node-wide nat chain, see masquerade.go); pods then reach only
	// routed networks.
	NoMasquerade bool
	// NonMasqueradeCIDR is traffic that keeps the pod's source IP although
	// it leaves the pod CIDR: the cluster's pod network, when other nodes'
	// pod CIDRs are routed (pod routes), so pods see each other's real IPs.
	NonMasqueradeCIDR string
	// CNIBinDir holds the CNI plugins; "" means /usr/lib/cni (Debian).
	CNIBinDir string
	// ImportImages are OCI tarballs imported (ctr -n k8s.io images import)
	// after every start, for machines without a registry.
	ImportImages []string
	// StartTimeout bounds how long a start may take to answer on its
	// socket; 0 means 30s.
	StartTimeout time.Duration
	Log          *slog.Logger
}

// Containerd is a containerd process this kubelet started and supervises:
// if it dies it is restarted (with backoff) until Stop.
type Containerd struct {
	opts   ContainerdOptions
	log    *slog.Logger
	socket string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has exited
	cancel  context.CancelFunc
	done    chan struct{} // closed when the supervisor has returned
	stopped bool
}

// Socket is the CRI/containerd gRPC socket path.
func (c *Containerd) Socket() string { return c.socket }

// Pid is the current containerd process id (0 if none).
func (c *Containerd) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Dir is the containerd's directory.
func (c *Containerd) Dir() string { return c.opts.Dir }

// BridgeName derives a bridge name (<= 15 bytes) from a directory.
func BridgeName(dir string) string {
	s := sha256.Sum256([]byte(dir))
	return "mk8s" + hex.EncodeToString(s[:])[:8]
}

// StartContainerd writes the config, starts containerd, waits for its
// socket, imports images, and supervises the process until ctx ends or
// Stop is called.
func StartContainerd(ctx context.Context, opts ContainerdOptions) (*Containerd, error) {
	if opts.Dir == "" {
		return nil, errors.New("containerd: Dir is required")
	}
	if opts.Binary == "" {
		opts.Binary = "containerd"
	}
	if opts.CNIBinDir == "" {
		opts.CNIBinDir = "/usr/lib/cni"
	}
	if opts.Bridge == "" {
		opts.Bridge = BridgeName(opts.Dir)
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	abs, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	opts.Dir = abs
	c := &Containerd{opts: opts, log: opts.Log.With("component", "containerd"), socket: filepath.Join(abs, "containerd.sock")}
	if len(c.socket) > 100 {
		return nil, fmt.Errorf("containerd: socket path %q is too long for a unix socket; use a shorter --root-dir", c.socket)
	}
	if err := c.writeConfig(); err != nil {
		return nil, err
	}
	if opts.PodCIDR != "" && !opts.NoMasquerade {
		err = ensureMasquerade(opts.PodCIDR, opts.NonMasqueradeCIDR, opts.Bridge)
	} else {
		err = removeMasquerade(opts.Bridge)
	}
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	if err := c.startProcess(ctx); err != nil {
		return nil, err
	}
	if err := c.importImages(ctx); err != nil {
		c.kill()
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	c.done = make(chan struct{})
	go c.supervise(sctx)
	return c, nil
}

// Config is the containerd config.toml this package writes.
func (c *Containerd) Config() string {
	o := c.opts
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return fmt.Sprintf(`# Written by the minik8s kubelet; regenerated on every start.
version = 2
root = %s
state = %s
oom_score = 0

[grpc]
  address = %s

[ttrpc]
  address = %s

[plugins."io.containerd.internal.v1.opt"]
  path = %s

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %s
  # This VM refuses negative oom_score_adj; without this, sandboxes fail
  # with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  # A random port, so several containerds can run on one machine.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_tls_streaming = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %s
    conf_dir = %s
    max_conf_num = 1
`, q(filepath.Join(o.Dir, "root")), q(filepath.Join(o.Dir, "state")), q(c.socket), q(c.socket+".ttrpc"),
		q(filepath.Join(o.Dir, "opt")), q(o.SandboxImage), q(o.CNIBinDir), q(filepath.Join(o.Dir, "cni", "net.d")))
}

// CNIConfig is the bridge + host-local + portmap conflist for the pod CIDR.
func (c *Containerd) CNIConfig() ([]byte, error) {
	if _, _, err := net.ParseCIDR(c.opts.PodCIDR); err != nil {
		return nil, fmt.Errorf("containerd: pod CIDR %q: %w", c.opts.PodCIDR, err)
	}
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "minik8s",
		"plugins": []any{
			map[string]any{
				"type":      "bridge",
				"bridge":    c.opts.Bridge,
				"isGateway": true,
				// Masquerading is one node-wide rule (masquerade.go), not
				// a chain per pod.
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": c.opts.PodCIDR}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": filepath.Join(c.opts.Dir, "cni", "ipam"),
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

func (c *Containerd) writeConfig() error {
	o := c.opts
	for _, d := range []string{"root", "state", "opt", "cni/net.d", "cni/ipam"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o711); err != nil {
			return fmt.Errorf("containerd: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "config.toml"), []byte(c.Config()), 0o600); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	if o.PodCIDR != "" {
		data, err := c.CNIConfig()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.Dir, "cni", "net.d", "10-minik8s.conflist"), data, 0o644); err != nil {
			return fmt.Errorf("containerd: %w", err)
		}
	}
	return nil
}

// startProcess starts containerd and waits until its socket answers.
func (c *Containerd) startProcess(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(c.opts.Dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	_ = os.Remove(c.socket)
	// Not exec.CommandContext: the process must outlive a cancelled start
	// context only until Stop, which signals it gracefully.
	cmd := exec.Command(c.opts.Binary, "--config", filepath.Join(c.opts.Dir, "config.toml"), "--log-level", "info")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = c.opts.Dir
	// Its own process group, so a Ctrl-C to the kubelet's terminal does
	// not kill it before the kubelet has stopped it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("containerd: start %s: %w", c.opts.Binary, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	c.mu.Lock()
	c.cmd, c.exited = cmd, exited
	c.mu.Unlock()
	c.log.Info("started containerd", "pid", cmd.Process.Pid, "socket", c.socket, "dir", c.opts.Dir)

	wctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	for {
		if cri, err := DialCRI(wctx, c.socket); err == nil {
			cri.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("containerd exited during start; see %s", filepath.Join(c.opts.Dir, "containerd.log"))
		case <-wctx.Done():
			c.kill()
			return fmt.Errorf("containerd did not answer on %s within %s: %w", c.socket, c.opts.StartTimeout, wctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Containerd) importImages(ctx context.Context) error {
	for _, img := range c.opts.ImportImages {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		var out bytes.Buffer
		cmd := exec.CommandContext(ictx, "ctr", "--address", c.socket, "-n", "k8s.io", "images", "import", img)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil {
			return fmt.Errorf("containerd: import image %s: %w: %s", img, err, strings.TrimSpace(out.String()))
		}
		c.log.Info("imported image", "tarball", img, "output", strings.TrimSpace(out.String()))
	}
	return nil
}

// supervise restarts containerd when it dies, until ctx ends.
func (c *Containerd) supervise(ctx context.Context) {
	defer close(c.done)
	delay := time.Second
	for {
		c.mu.Lock()
		exited := c.exited
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			c.terminate(15 * time.Second)
			return
		case <-exited:
		}
		c.log.Error("containerd exited unexpectedly; restarting", "delay", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
		if err := c.startProcess(ctx); err != nil {
			c.log.Error("restarting containerd failed", "err", err)
			continue
		}
		if err := c.importImages(ctx); err != nil {
			c.log.Error("re-importing images failed", "err", err)
		}
	}
}

// terminate sends SIGTERM and SIGKILL after timeout.
func (c *Containerd) terminate(timeout time.Duration) {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(timeout):
		c.log.Warn("containerd ignored SIGTERM; killing it")
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (c *Containerd) kill() {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Stop stops supervising and terminates containerd (SIGTERM, then SIGKILL
// after 15s). Containers keep running in their shims, as with a system
// containerd; use Teardown to remove them too. Safe to call twice.
func (c *Containerd) Stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	c.mu.Unlock()
	c.cancel()
	<-c.done
	c.log.Info("stopped containerd", "socket", c.socket)
}

// Teardown removes every pod sandbox (stopping its containers and freeing
// its network), stops containerd, unmounts what it left under Dir and
// deletes the bridge. Tests use it to leave the machine as they found it.
func (c *Containerd) Teardown(ctx context.Context) error {
	var errs []error
	if cri, err := DialCRI(ctx, c.socket); err == nil {
		if sbs, err := cri.ListPodSandbox(ctx, nil); err == nil {
			for _, sb := range sbs {
				if err := stopSandboxRetrying(ctx, cri, sb.Id); err != nil {
					errs = append(errs, err)
				}
				if err := cri.RemovePodSandbox(ctx, sb.Id); err != nil {
					errs = append(errs, err)
				}
			}
		} else {
			errs = append(errs, err)
		}
		cri.Close()
	} else {
		errs = append(errs, err)
	}
	c.Stop()
	errs = append(errs, UnmountUnder(c.opts.Dir), removeMasquerade(c.opts.Bridge))
	if out, err := exec.CommandContext(ctx, "ip", "link", "del", c.opts.Bridge).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("delete bridge %s: %w: %s", c.opts.Bridge, err, out))
	}
	return errors.Join(errs...)
}

// stopSandboxRetrying stops a sandbox, trying again for a few seconds:
// a sandbox whose last container is exiting at that moment (the kubelet
// just killed it) can fail with "ttrpc: closed" while its shim goes away,
// and the next try finds it stopped.
func stopSandboxRetrying(ctx context.Context, cri *CRI, id string) error {
	var err error
	for try := 0; try < 5; try++ {
		if err = cri.StopPodSandbox(ctx, id); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
	return err
}

// UnmountUnder lazily unmounts every mount point below dir, deepest first.
func UnmountUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	var errs []error
	for i := len(points) - 1; i >= 0; i-- {
		if err := syscall.Unmount(points[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", points[i], err))
		}
	}
	return errors.Join(errs...)
}

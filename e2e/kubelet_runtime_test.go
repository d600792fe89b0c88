//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/minik8s/minik8s/hack/images/imagebuild"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("MINIK8S_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name())
}

// TestKubeletRuntimeCRI drives a real containerd through the CRI client:
// a sandbox on the CNI bridge, the web:v1 image serving on its pod IP,
// exec, a log file in CRI format, stop and remove.
func TestKubeletRuntimeCRI(t *testing.T) {
	dir := shortDir(t, "mkrt")
	ctd := startContainerd(t, dir, "10.233.1.0/24")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cri, err := runtime.DialCRI(ctx, ctd.Socket())
	if err != nil {
		t.Fatal(err)
	}
	defer cri.Close()
	name, version, err := cri.Version(ctx)
	if err != nil || name != "containerd" {
		t.Fatalf("version %q %q %v", name, version, err)
	}
	img, err := cri.ImageStatus(ctx, imagebuild.WebV1Image)
	if err != nil || img == nil {
		t.Fatalf("image %s not imported: %v", imagebuild.WebV1Image, err)
	}

	logDir := dir + "/logs"
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "uid-1"},
		Hostname:     "web",
		LogDirectory: logDir,
		Labels:       map[string]string{runtime.LabelPodUID: "uid-1"},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
	sb, err := cri.RunPodSandbox(ctx, sbCfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cri.PodSandboxStatus(ctx, sb)
	if err != nil || st.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.GetNetwork().GetIp() == "" {
		t.Fatalf("sandbox status %v %v", st, err)
	}
	ip := st.Network.Ip
	if !strings.HasPrefix(ip, "10.233.1.") {
		t.Errorf("pod IP %s outside the pod CIDR", ip)
	}
	cid, err := cri.CreateContainer(ctx, sb, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
		Image:    &runtimeapi.ImageSpec{Image: imagebuild.WebV1Image},
		LogPath:  "web/0.log",
		Labels:   map[string]string{runtime.LabelPodUID: "uid-1", runtime.LabelContainerName: "web"},
	}, sbCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cri.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	var body string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + ip + ":8080/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
	}
	if !strings.Contains(body, "minik8s web v1") {
		t.Fatalf("GET pod IP: %q", body)
	}
	res, err := cri.ExecSync(ctx, cid, []string{"cat", "/etc/hostname"}, 10*time.Second)
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "web" {
		t.Fatalf("exec: %+v %v", res, err)
	}
	cst, err := cri.ContainerStatus(ctx, cid)
	if err != nil || cst.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container status %v %v", cst, err)
	}
	logData, err := os.ReadFile(cst.LogPath)
	if err != nil || !strings.Contains(string(logData), " stdout F web v1 listening on :8080") {
		t.Fatalf("log %s: %q %v", cst.LogPath, logData, err)
	}
	start := time.Now()
	if err := cri.StopContainer(ctx, cid, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("web stopped on SIGTERM in %s", time.Since(start))
	cst, err = cri.ContainerStatus(ctx, cid)
	if err != nil || cst.State != runtimeapi.ContainerState_CONTAINER_EXITED || cst.ExitCode != 0 {
		t.Fatalf("after stop: %v %v (want exit 0 from the SIGTERM trap)", cst, err)
	}
	if err := cri.StopPodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if err := cri.RemovePodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if _, err := cri.ContainerStatus(ctx, cid); err == nil {
		t.Errorf("container survived its sandbox's removal")
	}
}

// BenchmarkKubeletCRIPodStart measures containerd itself, without the
// kubelet: MINIK8S_BENCH_PODS (30) pods started through CRI, each one
// RunPodSandbox, CreateContainer, StartContainer, with
// MINIK8S_BENCH_PARALLEL (default: all at once) pods in flight. It prints
// each step's p50/p99 and the wall time, which is the floor the kubelet's
// apply->Running latency can reach on this machine.
//
//	go test -tags e2e ./e2e/ -run '^$' -bench KubeletCRIPodStart -benchtime 1x
func BenchmarkKubeletCRIPodStart(b *testing.B) {
	pods := 30
	if n, err := strconv.Atoi(os.Getenv("MINIK8S_BENCH_PODS")); err == nil && n > 0 {
		pods = n
	}
	parallel := pods
	if n, err := strconv.Atoi(os.Getenv("MINIK8S_BENCH_PARALLEL")); err == nil && n > 0 {
		parallel = n
	}
	dir := shortDir(b, "mkcb")
	ctd := startContainerd(b, dir, "10.233.31.0/24")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cri, err := runtime.DialCRI(ctx, ctd.Socket())
	if err != nil {
		b.Fatal(err)
	}
	defer cri.Close()
	for round := 0; round < b.N; round++ {
		steps := map[string][]time.Duration{}
		var mu sync.Mutex
		record := func(step string, d time.Duration) {
			mu.Lock()
			steps[step] = append(steps[step], d)
			mu.Unlock()
		}
		sem := make(chan struct{}, parallel)
		var wg sync.WaitGroup
		errs := make(chan error, pods)
		cpu0 := runtimeCPU(ctd)
		b.StartTimer()
		start := time.Now()
		for i := range pods {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				uid := fmt.Sprintf("bench-%d-%d", round, i)
				sbCfg := &runtimeapi.PodSandboxConfig{
					Metadata:     &runtimeapi.PodSandboxMetadata{Name: uid, Namespace: "default", Uid: uid},
					Hostname:     uid,
					LogDirectory: dir + "/logs/" + uid,
					Labels:       map[string]string{runtime.LabelPodUID: uid},
					Linux:        &runtimeapi.LinuxPodSandboxConfig{},
				}
				t0 := time.Now()
				sb, err := cri.RunPodSandbox(ctx, sbCfg)
				if err != nil {
					errs <- err
					return
				}
				t1 := time.Now()
				record("RunPodSandbox", t1.Sub(t0))
				cid, err := cri.CreateContainer(ctx, sb, &runtimeapi.ContainerConfig{
					Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
					Image:    &runtimeapi.ImageSpec{Image: imagebuild.WebV1Image},
					LogPath:  "web/0.log",
					Labels:   map[string]string{runtime.LabelPodUID: uid},
				}, sbCfg)
				if err != nil {
					errs <- err
					return
				}
				t2 := time.Now()
				record("CreateContainer", t2.Sub(t1))
				if err := cri.StartContainer(ctx, cid); err != nil {
					errs <- err
					return
				}
				record("StartContainer", time.Since(t2))
				record("pod total", time.Since(t0))
				record("since start", time.Since(start))
			}()
		}
		wg.Wait()
		wall := time.Since(start)
		b.StopTimer()
		cpu := runtimeCPU(ctd).sub(cpu0)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		fmt.Printf("CRI start of %d pods, %d in flight: wall %s (%.2f pods/s); runtime CPU %.2fs (%.0f ms/pod): %s\n",
			pods, parallel, wall.Round(time.Millisecond), float64(pods)/wall.Seconds(), cpu.total().Seconds(), cpu.total().Seconds()*1000/float64(pods), cpu)
		for _, step := range []string{"RunPodSandbox", "CreateContainer", "StartContainer", "pod total", "since start"} {
			d := steps[step]
			sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
			fmt.Printf("  %-16s p50 %7s  p99 %7s  max %7s\n", step, d[len(d)/2].Round(time.Millisecond), d[(len(d)*99+99)/100-1].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
		}
		b.ReportMetric(wall.Seconds()*1000, "wall-ms")
		// Clean up so the next round starts from an empty node.
		sbs, err := cri.ListPodSandbox(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, sb := range sbs {
			_ = cri.StopPodSandbox(ctx, sb.Id)
			_ = cri.RemovePodSandbox(ctx, sb.Id)
		}
	}
}

// runtimeCPU is the CPU time (user+system) that containerd and the shims
// serving its socket have used, split by who: [0] containerd itself, [1]
// its waited-for children (CNI plugins, "shim start"), [2] the shims
// themselves, [3] their children (runc).
type cpuSplit [4]time.Duration

func (c cpuSplit) sub(o cpuSplit) cpuSplit {
	for i := range c {
		c[i] -= o[i]
	}
	return c
}

func (c cpuSplit) total() time.Duration { return c[0] + c[1] + c[2] + c[3] }

func (c cpuSplit) String() string {
	return fmt.Sprintf("containerd %.2fs + its children (CNI plugins, shim start) %.2fs + shims %.2fs + their children (runc) %.2fs",
		c[0].Seconds(), c[1].Seconds(), c[2].Seconds(), c[3].Seconds())
}

func runtimeCPU(ctd *runtime.Containerd) cpuSplit {
	var out cpuSplit
	self, children := procCPUSplit(ctd.Pid())
	out[0], out[1] = self, children
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i, a := range args[:len(args)-1] {
			if a == "-address" && args[i+1] == ctd.Socket() {
				self, children := procCPUSplit(pid)
				out[2] += self
				out[3] += children
			}
		}
	}
	return out
}

// procCPUSplit is a process's own user+system CPU time and that of the
// children it has waited for (cutime+cstime).
func procCPUSplit(pid int) (self, children time.Duration) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(data)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fs) < 15 {
		return 0, 0
	}
	v := func(i int) int64 { n, _ := strconv.ParseInt(fs[i], 10, 64); return n }
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / 100 } // USER_HZ
	return tick(v(11) + v(12)), tick(v(13) + v(14))
}

// TestKubeletRuntimeMasquerade: the node's pod traffic is masqueraded by
// one nat chain written at containerd start (not a CNI chain per pod), and
// Teardown removes it.
func TestKubeletRuntimeMasquerade(t *testing.T) {
	needKubeletDeps(t)
	imgs := testImages(t)
	dir := shortDir(t, "mkmq")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctd, err := runtime.StartContainerd(context.WithoutCancel(ctx), runtime.ContainerdOptions{
		Dir: dir, SandboxImage: imagebuild.PauseImage, PodCIDR: "10.233.2.0/24", ImportImages: imgs, Log: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	tornDown := false
	t.Cleanup(func() {
		if !tornDown {
			_ = ctd.Teardown(context.Background())
		}
	})
	bridge := runtime.BridgeName(ctd.Dir())
	chain := "MK8S-MASQ-" + strings.ToUpper(strings.TrimPrefix(bridge, "mk8s"))
	nat := func() string {
		out, err := exec.Command("iptables", "-t", "nat", "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -S: %v: %s", err, out)
		}
		return string(out)
	}
	rules := nat()
	for _, want := range []string{
		"-A POSTROUTING -s 10.233.2.0/24 -m comment --comment \"minik8s pod masquerade " + bridge + "\" -j " + chain,
		"-A " + chain + " -d 10.233.2.0/24 -j RETURN",
		"-A " + chain + " -d 224.0.0.0/4 -j RETURN",
		"-A " + chain + " -j MASQUERADE",
	} {
		if !strings.Contains(rules, want+"\n") {
			t.Errorf("nat table lacks %q", want)
		}
	}
	cri, err := runtime.DialCRI(ctx, ctd.Socket())
	if err != nil {
		t.Fatal(err)
	}
	defer cri.Close()
	sb, err := cri.RunPodSandbox(ctx, &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "mq", Namespace: "default", Uid: "uid-mq"},
		Hostname: "mq", LogDirectory: dir + "/logs", Linux: &runtimeapi.LinuxPodSandboxConfig{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rules := nat(); strings.Contains(rules, sb) {
		t.Errorf("the sandbox got its own nat rules:\n%s", grepLines(rules, sb))
	}
	tornDown = true
	if err := ctd.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if rules := nat(); strings.Contains(rules, chain) {
		t.Errorf("teardown left the masquerade rules:\n%s", grepLines(rules, chain))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

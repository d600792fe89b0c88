//go:build e2e

package e2e

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/hack/images/imagebuild"
)

// BenchmarkKubeletApplyToRunning runs the real kubelet binary on a private
// containerd, creates 30 web pods bound to it at once, and reports how long
// each took from create to phase Running as seen through a watch (p50,
// p99), and the kubelet's resident memory. MINIK8S_BENCH_PODS changes the
// pod count. MINIK8S_BENCH_INTERVAL (e.g. 500ms) creates them one at a
// time at that pace instead: a burst measures how long the runtime takes
// to work through a queue (~0.6 CPU-s of containerd, shim, runc and CNI per
// pod, so 30 pods on 2 cores cannot all start within 1 s), a pace below
// that capacity measures one pod's own start latency. Run it with:
//
//	go test -tags e2e ./e2e/ -run '^$' -bench KubeletApplyToRunning -benchtime 1x
func BenchmarkKubeletApplyToRunning(b *testing.B) {
	pods := 30
	if n, err := strconv.Atoi(os.Getenv("MINIK8S_BENCH_PODS")); err == nil && n > 0 {
		pods = n
	}
	var interval time.Duration
	if v := os.Getenv("MINIK8S_BENCH_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("MINIK8S_BENCH_INTERVAL: %v", err)
		}
		interval = d
	}
	needKubeletDeps(b)
	api := apiservertest.Start(b)
	cs := api.Clientset(b)
	dir := shortDir(b, "mkb")
	b.Cleanup(func() { removeCgroups("/minik8s-bench", "bench-node") })
	ctd := startContainerd(b, dir+"/ctd", "10.233.30.0/24")
	bin := filepath.Join(dir, "kubelet-bin")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/kubelet").CombinedOutput(); err != nil {
		b.Fatalf("build kubelet: %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "kubelet.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--kubeconfig", api.Kubeconfig, "--node-name", "bench-node", "--root-dir", dir+"/kubelet",
		"--container-runtime-endpoint", ctd.Socket(), "--pod-cidr", "10.233.30.0/24", "--node-ip", "127.0.0.1",
		"--port", "0", "--cgroup-root", "/minik8s-bench", "--log-level", cmp.Or(os.Getenv("BENCH_KUBELET_LOG_LEVEL"), "warn"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		n, err := cs.Nodes.Get(ctx, "bench-node", metav1.GetOptions{})
		if err == nil && len(n.Status.Conditions) > 0 {
			break
		}
		select {
		case <-exited:
			b.Fatalf("kubelet exited; see %s", logf.Name())
		case <-ctx.Done():
			b.Fatal("node never registered")
		case <-time.After(100 * time.Millisecond):
		}
	}

	for round := 0; round < b.N; round++ {
		ns := fmt.Sprintf("bench-%d", round)
		if _, err := cs.Namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		podsClient := cs.Pods.Namespace(ns)
		list, err := podsClient.List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		w, err := podsClient.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		created := map[string]time.Time{}
		createErr := make(chan error, 1)
		kCPU0, rCPU0 := procCPU(cmd.Process.Pid), runtimeCPU(ctd)
		b.StartTimer()
		// Created in the background, so that a paced run reads the watch
		// while it creates.
		go func() {
			for i := range pods {
				if i > 0 {
					time.Sleep(interval)
				}
				name := fmt.Sprintf("web-%d", i)
				mu.Lock()
				created[name] = time.Now()
				mu.Unlock()
				if _, err := podsClient.Create(ctx, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
					Spec:       corev1.PodSpec{NodeName: "bench-node", Containers: []corev1.Container{{Name: "web", Image: imagebuild.WebV1Image}}},
				}, metav1.CreateOptions{}); err != nil {
					createErr <- err
					return
				}
			}
		}()
		var lat []time.Duration
		seen := map[string]bool{}
		for len(lat) < pods {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					b.Fatal("watch closed")
				}
				p, ok := ev.Object.(*corev1.Pod)
				if !ok || seen[p.Name] || p.Status.Phase != corev1.PodRunning {
					continue
				}
				seen[p.Name] = true
				mu.Lock()
				lat = append(lat, time.Since(created[p.Name]))
				mu.Unlock()
			case err := <-createErr:
				b.Fatal(err)
			case <-ctx.Done():
				logData, _ := os.ReadFile(logf.Name())
				if len(logData) > 4000 {
					logData = logData[len(logData)-4000:]
				}
				b.Fatalf("only %d of %d pods Running; kubelet log tail:\n%s", len(lat), pods, logData)
			}
		}
		b.StopTimer()
		w.Stop()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p50, p99 := lat[len(lat)/2], lat[(len(lat)*99+99)/100-1]
		rss, hwm := procMemKB(cmd.Process.Pid)
		kCPU, rCPU := procCPU(cmd.Process.Pid)-kCPU0, runtimeCPU(ctd).sub(rCPU0)
		b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
		b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
		b.ReportMetric(float64(rss)/1024, "kubelet-rss-MiB")
		if os.Getenv("BENCH_KUBELET_LOG_LEVEL") != "" {
			logData, _ := os.ReadFile(logf.Name())
			_ = os.WriteFile("/tmp/bench-kubelet.log", logData, 0o644)
		}
		how := "at once"
		if interval > 0 {
			how = "one every " + interval.String()
		}
		fmt.Printf("kubelet apply->Running for %d pods on one node, created %s: p50 %s, p99 %s, max %s; kubelet RSS %.1f MiB (peak %.1f MiB); "+
			"CPU meanwhile: kubelet %.2fs, runtime %.2fs (%.0f ms/pod: %s)\n",
			pods, how, p50.Round(time.Millisecond), p99.Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), float64(rss)/1024, float64(hwm)/1024,
			kCPU.Seconds(), rCPU.total().Seconds(), rCPU.total().Seconds()*1000/float64(pods), rCPU)
	}
}

// procCPU is a process's user+system CPU time so far.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields of the whole line.
	s := string(data)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fs) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// procMemKB reads VmRSS and VmHWM (kB) of a process.
func procMemKB(pid int) (rss, hwm int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fs[1], 10, 64)
		switch fs[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}

//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/rest"
	"github.com/minik8s/minik8s/client/typed"
	"github.com/minik8s/minik8s/hack/images/imagebuild"
	"github.com/minik8s/minik8s/kubelet"
	"github.com/minik8s/minik8s/kubelet/runtime"
)

// kubeletEnv is one real node: an API server, a private containerd, and a
// kubelet (in-process) with its HTTPS server.
type kubeletEnv struct {
	t       *testing.T
	api     *apiservertest.Server
	restCfg *rest.Config
	cs      *typed.Clientset
	ctd     *runtime.Containerd
	cri     *runtime.CRI
	node    string
	rootDir string
	podCIDR string

	stopKubelet func()
	serverURL   string
	// tweak, if set, changes the kubelet's config before it starts.
	tweak func(*kubelet.Config)
	// proxied makes the kubelet reachable through the API server's pod
	// proxy: its Node reports the port its HTTPS server listens on, and
	// it trusts the API server's client certificate.
	proxied bool
}

func newKubeletEnv(t *testing.T, node, podCIDR string) *kubeletEnv {
	t.Helper()
	return newKubeletEnvWith(t, node, podCIDR, nil)
}

// newKubeletEnvWith is newKubeletEnv with tweak applied to the kubelet's
// config.
func newKubeletEnvWith(t *testing.T, node, podCIDR string, tweak func(*kubelet.Config)) *kubeletEnv {
	t.Helper()
	return newKubeletEnvFrom(&kubeletEnv{t: t, node: node, podCIDR: podCIDR, tweak: tweak})
}

// newKubeletEnvFrom sets up the API server, containerd and CRI client of
// e and starts its kubelet.
func newKubeletEnvFrom(e *kubeletEnv) *kubeletEnv {
	t := e.t
	t.Helper()
	needKubeletDeps(t)
	node, podCIDR := e.node, e.podCIDR
	e.api = apiservertest.Start(t)
	e.restCfg = e.api.RESTConfig(t)
	e.cs = e.api.Clientset(t)
	dir := shortDir(t, "mkn")
	// Runs after containerd's teardown has removed every container.
	t.Cleanup(func() { removeCgroups("/minik8s-e2e", node) })
	e.rootDir = dir + "/kubelet"
	// Secret and memory volumes of pods still running at the end are
	// tmpfs mounts the kubelet keeps (as Kubernetes does); unmount them
	// before the directory goes.
	t.Cleanup(func() {
		if err := runtime.UnmountUnder(e.rootDir); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	e.ctd = startContainerd(t, dir+"/ctd", podCIDR)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if e.cri, err = runtime.DialCRI(ctx, e.ctd.Socket()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cri.Close() })
	e.startKubelet()
	t.Cleanup(func() {
		if e.stopKubelet != nil {
			e.stopKubelet()
		}
	})
	return e
}

// startKubelet runs a kubelet against the env's containerd until
// stopKubelet or the end of the test.
func (e *kubeletEnv) startKubelet() {
	t := e.t
	cfg := kubelet.Config{
		NodeName:           e.node,
		RootDir:            e.rootDir,
		PodCIDR:            e.podCIDR,
		NodeIP:             "127.0.0.1",
		CgroupRoot:         "/minik8s-e2e/" + e.node,
		SyncInterval:       500 * time.Millisecond,
		LeaseRenewInterval: 2 * time.Second,
	}
	opts := kubelet.ServerOptions{Address: "127.0.0.1:0", APIServer: e.restCfg}
	if e.proxied {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		opts.Address = fmt.Sprintf("127.0.0.1:%d", cfg.Port)
		opts.ClientCAFile = filepath.Join(e.api.DataDir, "pki", "ca.crt")
	}
	if e.tweak != nil {
		e.tweak(&cfg)
	}
	k, err := kubelet.New(cfg, kubelet.Deps{Client: e.cs, Runtime: e.cri, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := kubelet.NewServer(k, opts)
	ctx, cancel := context.WithCancel(context.Background())
	runDone, srvDone := make(chan error, 1), make(chan error, 1)
	addr := make(chan string, 1)
	go func() { srvDone <- srv.Serve(ctx, func(a string) { addr <- a }) }()
	go func() { runDone <- k.Run(ctx) }()
	select {
	case a := <-addr:
		e.serverURL = "https://" + a
	case err := <-srvDone:
		t.Fatalf("kubelet server: %v", err)
	}
	e.stopKubelet = func() {
		cancel()
		for _, ch := range []chan error{runDone, srvDone} {
			select {
			case err := <-ch:
				if err != nil {
					t.Errorf("kubelet: %v", err)
				}
			case <-time.After(time.Minute):
				t.Errorf("kubelet did not stop within a minute")
			}
		}
		e.stopKubelet = nil
	}
}

// removeCgroups removes the (empty) cgroup directories the test's pods
// used, deepest first, in every hierarchy.
func removeCgroups(top, node string) {
	rel := top + "/" + node
	hier, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hier {
		base := "/sys/fs/cgroup/" + h.Name()
		var dirs []string
		_ = filepath.WalkDir(base+rel, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
		_ = os.Remove(base + top)
	}
}

func (e *kubeletEnv) pods() *typed.PodClient { return e.cs.Pods.Namespace("default") }

func (e *kubeletEnv) create(pod *corev1.Pod) *corev1.Pod {
	e.t.Helper()
	pod.Namespace = "default"
	pod.Spec.NodeName = e.node
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := e.pods().Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return p
}

// waitPod polls the pod until cond holds (2 minutes at most).
func (e *kubeletEnv) waitPod(name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var p *corev1.Pod
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := e.pods().Get(ctx, name, metav1.GetOptions{})
		cancel()
		if err == nil {
			p = got
			if cond(p) {
				return p
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if p != nil {
		e.t.Fatalf("pod %s: timed out waiting for %s; status: phase=%s containers=%+v message=%q", name, what, p.Status.Phase, p.Status.ContainerStatuses, p.Status.Message)
	}
	e.t.Fatalf("pod %s: timed out waiting for %s", name, what)
	return nil
}

func running(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running == nil {
			return false
		}
	}
	return true
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// kubeletGet calls the kubelet's HTTPS server with the admin token.
func (e *kubeletEnv) kubeletDo(method, path string, q url.Values) (int, string, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.serverURL+path+"?"+q.Encode(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.api.AdminToken)
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed kubelet cert
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (e *kubeletEnv) exec(pod, container string, cmd ...string) (string, string) {
	e.t.Helper()
	code, body, h := e.kubeletDo(http.MethodPost, "/exec/default/"+pod+"/"+container, url.Values{"command": cmd})
	if code != http.StatusOK {
		e.t.Fatalf("exec %v in %s: %d %s", cmd, pod, code, body)
	}
	return body, h.Get("X-Minik8s-Exit-Code")
}

func (e *kubeletEnv) logs(pod, container string, q url.Values) string {
	e.t.Helper()
	code, body, _ := e.kubeletDo(http.MethodGet, "/containerLogs/default/"+pod+"/"+container, q)
	if code != http.StatusOK {
		e.t.Fatalf("logs of %s/%s: %d %s", pod, container, code, body)
	}
	return body
}

func int64p(v int64) *int64 { return &v }

// TestKubeletPodRunsServesLogsAndExec: a web pod runs on the CNI network,
// answers on its pod IP, its log is readable through the kubelet, exec
// works, tokens are checked, and the pod is Ready.
func TestKubeletPodRunsServesLogsAndExec(t *testing.T) {
	e := newKubeletEnv(t, "e2e-node-1", "10.233.11.0/24")
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: imagebuild.WebV1Image,
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}, PeriodSeconds: 1},
		}}},
	})
	p := e.waitPod("web", "Running and Ready", func(p *corev1.Pod) bool { return running(p) && ready(p) })
	if !strings.HasPrefix(p.Status.PodIP, "10.233.11.") {
		t.Errorf("pod IP %q outside the node's pod CIDR", p.Status.PodIP)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.Status.PodIP + ":8080/")
	if err != nil {
		t.Fatalf("GET pod IP: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "minik8s web v1") {
		t.Errorf("pod answered %q", body)
	}
	if l := e.logs("web", "web", nil); !strings.Contains(l, "web v1 listening on :8080") {
		t.Errorf("logs: %q", l)
	}
	if l := e.logs("web", "web", url.Values{"timestamps": {"true"}, "tailLines": {"1"}}); !strings.Contains(l, "Z ") || strings.Count(l, "\n") != 1 {
		t.Errorf("tailLines=1 with timestamps: %q", l)
	}
	// follow=true streams lines written after the request started.
	followed := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.serverURL+"/containerLogs/default/web/web?follow=true&tailLines=0", nil)
		req.Header.Set("Authorization", "Bearer "+e.api.AdminToken)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test
		resp, err := c.Do(req)
		if err != nil {
			followed <- err.Error()
			return
		}
		defer resp.Body.Close()
		var got []byte
		buf := make([]byte, 4096)
		for !strings.Contains(string(got), "follow-marker") {
			n, err := resp.Body.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		followed <- string(got)
	}()
	time.Sleep(time.Second)
	e.exec("web", "web", "sh", "-c", "echo follow-marker > /proc/1/fd/1")
	if got := <-followed; !strings.Contains(got, "follow-marker\n") || strings.Contains(got, "listening") {
		t.Errorf("follow with tailLines=0 read %q", got)
	}
	out, code := e.exec("web", "web", "cat", "/etc/hostname")
	if strings.TrimSpace(out) != "web" || code != "0" {
		t.Errorf("exec hostname: %q exit %s", out, code)
	}
	if _, code := e.exec("web", "web", "sh", "-c", "exit 7"); code != "7" {
		t.Errorf("exec exit code %s, want 7", code)
	}
	req, _ := http.NewRequest(http.MethodGet, e.serverURL+"/containerLogs/default/web/web", nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad token: %v %v", resp, err)
	}
	n, err := e.cs.Nodes.Get(context.Background(), e.node, metav1.GetOptions{})
	if err != nil || n.Spec.PodCIDR != "10.233.11.0/24" || !strings.HasPrefix(n.Status.NodeInfo.ContainerRuntimeVersion, "containerd://") {
		t.Errorf("node: %v %+v", err, n)
	}
}

// TestKubeletLivenessProbeRestarts: a container that turns unhealthy is
// killed and restarted (restartCount goes up).
func TestKubeletLivenessProbeRestarts(t *testing.T) {
	e := newKubeletEnv(t, "e2e-node-2", "10.233.12.0/24")
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sick"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: int64p(2),
			Containers: []corev1.Container{{
				Name: "app", Image: imagebuild.ProbeImage,
				Env: []corev1.EnvVar{{Name: "UNHEALTHY_AFTER", Value: "2"}},
				LivenessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
					PeriodSeconds: 1, FailureThreshold: 2,
				},
			}},
		},
	})
	p := e.waitPod("sick", "a liveness restart", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	t.Logf("restartCount=%d lastState=%+v", p.Status.ContainerStatuses[0].RestartCount, p.Status.ContainerStatuses[0].LastTerminationState.Terminated)
	// The exec flavour of the same probe sees the same file.
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sick-exec"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: int64p(2),
			Containers: []corev1.Container{{
				Name: "app", Image: imagebuild.ProbeImage,
				Env: []corev1.EnvVar{{Name: "UNHEALTHY_AFTER", Value: "2"}},
				LivenessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/www/healthz"}}},
					PeriodSeconds: 1, FailureThreshold: 1,
				},
			}},
		},
	})
	e.waitPod("sick-exec", "an exec-liveness restart", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
}

// TestKubeletCrashLoopBackOff: a container that keeps exiting backs off,
// and the previous instance's log is readable.
func TestKubeletCrashLoopBackOff(t *testing.T) {
	e := newKubeletEnv(t, "e2e-node-3", "10.233.13.0/24")
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "crash"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: imagebuild.BusyboxImage,
			Command: []string{"sh", "-c", "echo boom $(cat /etc/hostname); exit 3"},
		}}},
	})
	p := e.waitPod("crash", "CrashLoopBackOff", func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) != 1 {
			return false
		}
		c := p.Status.ContainerStatuses[0]
		return c.RestartCount >= 1 && c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff"
	})
	c := p.Status.ContainerStatuses[0]
	if lt := c.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 3 || lt.Reason != "Error" {
		t.Errorf("lastState %+v", c.LastTerminationState)
	}
	if p.Status.Phase != corev1.PodRunning || ready(p) {
		t.Errorf("phase %s ready %v", p.Status.Phase, ready(p))
	}
	if l := e.logs("crash", "app", url.Values{"previous": {"true"}}); !strings.Contains(l, "boom crash") {
		t.Errorf("previous logs %q", l)
	}

	// restartPolicy Never: one run, the pod Fails with the exit code.
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "once"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
			Name: "app", Image: imagebuild.BusyboxImage, Command: []string{"sh", "-c", "exit 4"},
		}}},
	})
	p = e.waitPod("once", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if st := p.Status.ContainerStatuses[0].State.Terminated; st == nil || st.ExitCode != 4 || p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("Never pod status %+v", p.Status.ContainerStatuses[0])
	}
	// OnFailure + exit 0: Succeeded, Completed.
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "job"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure,
			InitContainers: []corev1.Container{{Name: "init", Image: imagebuild.BusyboxImage, Command: []string{"sh", "-c", "echo init > /work/marker"},
				VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}}},
			Containers: []corev1.Container{{Name: "app", Image: imagebuild.BusyboxImage, Command: []string{"sh", "-c", "test \"$(cat /work/marker)\" = init"},
				VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}}},
			Volumes: []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	})
	p = e.waitPod("job", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if st := p.Status.ContainerStatuses[0].State.Terminated; st == nil || st.Reason != "Completed" {
		t.Errorf("job status %+v", p.Status.ContainerStatuses[0])
	}
}

// TestKubeletConfigMapAndSecret: env and files from a ConfigMap and a
// Secret are visible in the container; a missing ConfigMap holds the
// container in CreateContainerConfigError until it exists; a changed
// ConfigMap updates the projected file.
func TestKubeletConfigMapAndSecret(t *testing.T) {
	e := newKubeletEnv(t, "e2e-node-4", "10.233.14.0/24")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := e.cs.Secrets.Namespace("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Data:       map[string][]byte{"password": []byte("s3cret")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg", Labels: map[string]string{"app": "cfg"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: imagebuild.BusyboxImage, Command: []string{"sleep", "3600"},
				Env: []corev1.EnvVar{
					{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}, Key: "greeting"}}},
					{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
					{Name: "MY_POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "MY_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
					{Name: "MSG", Value: "$(GREETING) from $(MY_POD)"},
				},
				EnvFrom: []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "config", MountPath: "/etc/app"},
					{Name: "secret", MountPath: "/etc/secret"},
					{Name: "cache", MountPath: "/cache"},
					{Name: "podinfo", MountPath: "/etc/podinfo"},
					{Name: "all", MountPath: "/etc/all"},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}},
				{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}},
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
				{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
					{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
				}}}},
				{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"},
						Items: []corev1.KeyToPath{{Key: "greeting", Path: "cfg/greeting"}}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
				}}}},
			},
		},
	})
	e.waitPod("cfg", "CreateContainerConfigError", func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) != 1 {
			return false
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError" && strings.Contains(w.Message, "app-config")
	})
	if _, err := e.cs.ConfigMaps.Namespace("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app-config", Namespace: "default"},
		Data:       map[string]string{"greeting": "hello", "mode": "blue"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := e.waitPod("cfg", "Running", running)
	out, _ := e.exec("cfg", "app", "sh", "-c", "echo $GREETING/$DB_PASSWORD/$MY_POD/$MY_IP/$CFG_mode/$MSG")
	want := fmt.Sprintf("hello/s3cret/cfg/%s/blue/hello from cfg", p.Status.PodIP)
	if strings.TrimSpace(out) != want {
		t.Errorf("env: %q, want %q", strings.TrimSpace(out), want)
	}
	out, _ = e.exec("cfg", "app", "sh", "-c", "cat /etc/app/greeting; echo; cat /etc/secret/password")
	if out != "hello\ns3cret" {
		t.Errorf("files: %q", out)
	}
	// downwardAPI and projected volumes.
	out, _ = e.exec("cfg", "app", "sh", "-c", "cat /etc/podinfo/labels; echo; cat /etc/podinfo/name; echo; cat /etc/all/cfg/greeting; echo; cat /etc/all/password; echo; cat /etc/all/ns")
	if out != "app=\"cfg\"\ncfg\nhello\ns3cret\ndefault" {
		t.Errorf("downwardAPI/projected files: %q", out)
	}
	// Secrets and memory-backed emptyDirs are tmpfs, never on disk.
	mounts, _ := e.exec("cfg", "app", "cat", "/proc/mounts")
	for _, m := range []string{" /etc/secret tmpfs ", " /cache tmpfs ", " /etc/all tmpfs "} {
		if !strings.Contains(mounts, m) {
			t.Errorf("no %q in /proc/mounts:\n%s", m, mounts)
		}
	}
	cm, err := e.cs.ConfigMaps.Namespace("default").Get(ctx, "app-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["greeting"] = "bonjour"
	if _, err := e.cs.ConfigMaps.Namespace("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		out, _ = e.exec("cfg", "app", "cat", "/etc/app/greeting")
		if out == "bonjour" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("configmap update not projected: file says %q", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The projected copy and the pod's labels are refreshed too.
	pod, err := e.cs.Pods.Namespace("default").Get(ctx, "cfg", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Labels["tier"] = "db"
	if _, err := e.cs.Pods.Namespace("default").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(time.Minute)
	for {
		out, _ = e.exec("cfg", "app", "sh", "-c", "cat /etc/all/cfg/greeting; echo; cat /etc/podinfo/labels")
		if out == "bonjour\napp=\"cfg\"\ntier=\"db\"" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("projected configmap / label update not written: %q", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestKubeletMemoryLimitOOMKilled: a container over its memory limit is
// OOM-killed and reported so.
func TestKubeletMemoryLimitOOMKilled(t *testing.T) {
	e := newKubeletEnv(t, "e2e-node-5", "10.233.15.0/24")
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hog"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
			Name: "app", Image: imagebuild.BusyboxImage,
			// dd allocates one 256 MiB block buffer and fills it.
			Command:   []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}},
		}}},
	})
	p := e.waitPod("hog", "terminated", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Terminated != nil
	})
	st := p.Status.ContainerStatuses[0].State.Terminated
	if st.Reason != "OOMKilled" || st.ExitCode != 137 {
		t.Errorf("terminated %+v, want OOMKilled/137", st)
	}
	if p.Status.Phase != corev1.PodFailed || p.Status.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("phase %s qos %s", p.Status.Phase, p.Status.QOSClass)
	}
}

// TestKubeletGracefulDeletion: deleting a pod stops its containers
// (SIGTERM, then SIGKILL when the grace period is over) and removes the
// pod object and its sandbox.
func TestKubeletGracefulDeletion(t *testing.T) {
	e := newKubeletEnv(t, "e2e-node-6", "10.233.16.0/24")
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bye"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: int64p(3),
			Containers: []corev1.Container{
				// web traps SIGTERM and exits 0 at once.
				{Name: "polite", Image: imagebuild.WebV1Image},
				// sleep as PID 1 ignores SIGTERM: it is killed when the grace period ends.
				{Name: "stubborn", Image: imagebuild.BusyboxImage, Command: []string{"sleep", "3600"}},
			},
		},
	})
	p := e.waitPod("bye", "Running", running)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := e.pods().Watch(ctx, metav1.ListOptions{ResourceVersion: p.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	start := time.Now()
	if err := e.pods().Delete(ctx, "bye", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var last *corev1.Pod
	for ev := range w.ResultChan() {
		if pp, ok := ev.Object.(*corev1.Pod); ok {
			last = pp
		}
		if string(ev.Type) == "DELETED" {
			break
		}
	}
	t.Logf("pod deleted %s after the delete request (grace period 3s)", time.Since(start).Round(100*time.Millisecond))
	if last == nil {
		t.Fatal("no watch events")
	}
	if _, err := e.pods().Get(ctx, "bye", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("pod still there: %v", err)
	}
	exit := map[string]int32{}
	for _, c := range last.Status.ContainerStatuses {
		if c.State.Terminated == nil {
			t.Errorf("final status of %s not terminated: %+v", c.Name, c.State)
			continue
		}
		exit[c.Name] = c.State.Terminated.ExitCode
	}
	if exit["polite"] != 0 || exit["stubborn"] != 137 {
		t.Errorf("exit codes %v, want polite=0 (SIGTERM) stubborn=137 (SIGKILL after grace)", exit)
	}
	// The kubelet removes the sandbox right after deleting the object.
	deadline := time.Now().Add(30 * time.Second)
	for {
		sbs, err := e.cri.ListPodSandbox(ctx, nil)
		if err == nil && len(sbs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandboxes left: %d %v", len(sbs), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestKubeletRestartAdoptsContainers: a restarted kubelet adopts running
// containers instead of restarting them.
func TestKubeletRestartAdoptsContainers(t *testing.T) {
	e := newKubeletEnv(t, "e2e-node-7", "10.233.17.0/24")
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "steady"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: imagebuild.WebV2Image}}},
	})
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "doomed"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: imagebuild.WebV1Image}}},
	})
	before := e.waitPod("steady", "Running", running).Status.ContainerStatuses[0]
	e.waitPod("doomed", "Running", running)
	e.stopKubelet()
	// While the kubelet is down, "doomed" is force-deleted from the API:
	// the restarted kubelet must clean up its containers.
	zero := int64(0)
	if err := e.pods().Delete(context.Background(), "doomed", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	e.startKubelet()
	// Give the new kubelet several sync rounds, then make a change it must
	// notice (a label) to prove it is syncing this pod.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.pods().Patch(ctx, "steady", "application/merge-patch+json", []byte(`{"metadata":{"labels":{"poke":"1"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	after := e.waitPod("steady", "Running", running).Status.ContainerStatuses[0]
	if after.ContainerID != before.ContainerID || after.RestartCount != 0 || !after.State.Running.StartedAt.Equal(&before.State.Running.StartedAt) {
		t.Errorf("container changed across a kubelet restart: before %s started %v, after %s started %v restarts %d",
			before.ContainerID, before.State.Running.StartedAt, after.ContainerID, after.State.Running.StartedAt, after.RestartCount)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		sbs, err := e.cri.ListPodSandbox(ctx, nil)
		cs, err2 := e.cri.ListContainers(ctx, nil)
		if err == nil && err2 == nil && len(sbs) == 1 && len(cs) == 1 && sbs[0].Metadata.Name == "steady" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: %d sandboxes, %d containers (%v %v); want only steady's", len(sbs), len(cs), err, err2)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestKubeletLogRotation: a container writing a lot has its log rotated
// by the kubelet (renamed, containerd reopens it) and keeps at most
// ContainerLogMaxFiles files; `logs` reads the current file, and a
// follower sees the lines written after rotations.
func TestKubeletLogRotation(t *testing.T) {
	e := newKubeletEnvWith(t, "e2e-node-9", "10.233.19.0/24", func(c *kubelet.Config) {
		c.ContainerLogMaxSize = 32 << 10
		c.ContainerLogMaxFiles = 3
		// Not faster: a follower that misses a whole file (rotated twice
		// between two of its looks) loses those lines, here as in
		// Kubernetes.
		c.ContainerLogMonitorInterval = time.Second
	})
	// ~100 bytes a line; 4,000 lines in batches, so that several
	// rotations happen while it writes; then a last line and sleep. The
	// first sleep lets the follower below open the first file; the one
	// before the last line lets a rotation due to the batches happen
	// first, so the last line lands in the current file.
	script := `sleep 3; i=0; while [ $i -lt 40 ]; do j=0; while [ $j -lt 100 ]; do ` +
		`echo "line $i-$j xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; j=$((j+1)); done; ` +
		`sleep 0.2; i=$((i+1)); done; sleep 3; echo last-line; exec sleep 3600`
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "chatty"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: imagebuild.BusyboxImage, Command: []string{"sh", "-c", script},
		}}},
	})
	p := e.waitPod("chatty", "Running", running)
	// A follower from the start sees lines from after the rotations.
	followed := make(chan string, 1)
	go func() {
		_, body, _ := e.kubeletDo(http.MethodGet, "/containerLogs/default/chatty/app", url.Values{"follow": {"true"}, "limitBytes": {"2000000"}})
		followed <- body
	}()
	logDir := filepath.Join(e.rootDir, "logs", "default_chatty_"+string(p.UID), "app")
	var files []string
	maxFiles := 0
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		entries, _ := os.ReadDir(logDir)
		files = files[:0]
		for _, en := range entries {
			files = append(files, en.Name())
		}
		maxFiles = max(maxFiles, len(files))
		if strings.Contains(e.logs("chatty", "app", url.Values{"tailLines": {"1"}}), "last-line") {
			break
		}
		if time.Now().After(deadline) {
			var sizes []string
			for _, f := range files {
				if fi, err := os.Stat(filepath.Join(logDir, f)); err == nil {
					sizes = append(sizes, fmt.Sprintf("%s=%d", f, fi.Size()))
				}
			}
			t.Fatalf("no last-line within 4m; files %v", sizes)
		}
	}
	t.Logf("log files at the end: %v; at most %d at once", files, maxFiles)
	if len(files) < 2 || maxFiles > 3 {
		t.Errorf("log files %v (at most %d at once), want a rotated file and never more than 3", files, maxFiles)
	}
	for _, f := range files {
		if f != "0.log" && !strings.HasPrefix(f, "0.log.") {
			t.Errorf("unexpected file %s", f)
		}
	}
	// The current file holds what was written since the last rotation:
	// less than everything, ending with the last line.
	all := e.logs("chatty", "app", nil)
	if n := strings.Count(all, "\n"); n >= 4001 || !strings.HasSuffix(all, "last-line\n") {
		t.Errorf("logs: %d lines, ending %q", n, all[max(0, len(all)-100):])
	}
	// The follower is still reading; deleting the pod ends it.
	if err := e.pods().Delete(context.Background(), "chatty", metav1.DeleteOptions{GracePeriodSeconds: int64p(0)}); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-followed:
		if !strings.Contains(body, "line 0-0 ") || !strings.Contains(body, "last-line\n") {
			t.Errorf("the follower saw %d bytes, without the first or the last line", len(body))
		}
		if n := strings.Count(body, "\n"); n != 4001 {
			t.Errorf("the follower saw %d lines across the rotations, want 4001", n)
		}
	case <-time.After(time.Minute):
		t.Error("the follower did not end when the pod was deleted")
	}
}

// TestKubeletImageGC: with thresholds every disk is over, the kubelet
// removes the images no container uses from the real containerd, and keeps
// the one a running container uses and the sandbox image.
func TestKubeletImageGC(t *testing.T) {
	e := newKubeletEnvWith(t, "e2e-node-10", "10.233.20.0/24", func(c *kubelet.Config) {
		c.ImageGCHighThresholdPercent, c.ImageGCLowThresholdPercent = 1, 1
		c.ImageMinimumGCAge = time.Nanosecond
		c.ImageGCInterval = time.Second
	})
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "keep"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: imagebuild.BusyboxImage, Command: []string{"sleep", "3600"},
		}}},
	})
	e.waitPod("keep", "Running", running)
	tags := func() map[string]bool {
		imgs, err := e.cri.ListImages(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, img := range imgs {
			for _, tag := range img.RepoTags {
				out[tag] = true
			}
		}
		return out
	}
	var now map[string]bool
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if now = tags(); !now[imagebuild.WebV1Image] && !now[imagebuild.WebV2Image] && !now[imagebuild.ProbeImage] {
			break
		}
	}
	for _, gone := range []string{imagebuild.WebV1Image, imagebuild.WebV2Image, imagebuild.ProbeImage} {
		if now[gone] {
			t.Errorf("unused image %s was not removed", gone)
		}
	}
	for _, kept := range []string{imagebuild.BusyboxImage, imagebuild.PauseImage} {
		if !now[kept] {
			t.Errorf("image %s was removed though it is in use", kept)
		}
	}
	// The node still starts pods: the sandbox image is there.
	e.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "after"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: imagebuild.BusyboxImage, Command: []string{"sleep", "3600"},
		}}},
	})
	e.waitPod("after", "Running", running)
}

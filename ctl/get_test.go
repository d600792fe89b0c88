package ctl

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/client/kubeconfig"
	"github.com/minik8s/minik8s/internal/syncbuf"
)

func int32p(i int32) *int32 { return &i }

func testDeployment(name string, replicas int32, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: int32p(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: image,
					Ports: []corev1.ContainerPort{{ContainerPort: 8080, Name: "http"}}}}},
			},
		},
	}
}

func testPod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "minik8s.local/busybox:1.35"}}}}
}

func TestGetAndInfo(t *testing.T) {
	s := apiservertest.Start(t)
	h := newHarness(t, s, "shop")
	ctx := context.Background()
	if _, err := h.cs.Deployments.Namespace("shop").Create(ctx, testDeployment("web", 3, "minik8s.local/web:v1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{testPod("web-a", map[string]string{"app": "web", "tier": "front"}), testPod("db-0", map[string]string{"app": "db"})} {
		if _, err := h.cs.Pods.Namespace("shop").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("version", func(t *testing.T) {
		h := h.at(t)
		out := h.ok("version")
		wantContains(t, "version", out, "Client Version: "+Version, "Server Version: v1.32.0-minik8s")
		var doc map[string]map[string]string
		if err := json.Unmarshal([]byte(h.ok("version", "-o", "json")), &doc); err != nil || doc["serverVersion"]["gitVersion"] == "" {
			t.Errorf("version -o json = %v, %v", doc, err)
		}
		// --client never contacts the server.
		out, _, code := h.run("version", "--client", "--kubeconfig", "/nonexistent")
		if code != 0 || strings.Contains(out, "Server") {
			t.Errorf("version --client = %d %q", code, out)
		}
	})

	t.Run("cluster-info", func(t *testing.T) {
		h := h.at(t)
		wantContains(t, "cluster-info", h.ok("cluster-info"), "control plane (v1.32.0-minik8s) is running at "+s.URL)
	})

	t.Run("api-resources", func(t *testing.T) {
		h := h.at(t)
		out := h.ok("api-resources")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if f := strings.Fields(lines[0]); strings.Join(f, " ") != "NAME SHORTNAMES APIVERSION NAMESPACED KIND" {
			t.Errorf("header = %q", lines[0])
		}
		wantContains(t, "api-resources", out, "deployments", "deploy", "apps/v1", "Deployment")
		names := h.ok("api-resources", "-o", "name", "--api-group=apps")
		if names != "deployments.apps\nreplicasets.apps\n" {
			t.Errorf("-o name --api-group=apps = %q", names)
		}
		cluster := h.ok("api-resources", "--namespaced=false", "--no-headers")
		wantContains(t, "cluster-scoped", cluster, "namespaces", "nodes")
		if strings.Contains(cluster, "pods") {
			t.Errorf("--namespaced=false lists pods:\n%s", cluster)
		}
		wantContains(t, "wide", h.ok("api-resources", "-o", "wide"), "VERBS", "[create delete deletecollection get list patch update watch]")
	})

	t.Run("table columns and short names", func(t *testing.T) {
		h := h.at(t)
		out := h.ok("get", "deploy")
		lines := strings.Split(out, "\n")
		if strings.Join(strings.Fields(lines[0]), " ") != "NAME READY UP-TO-DATE AVAILABLE AGE" {
			t.Errorf("deploy header = %q", lines[0])
		}
		if f := strings.Fields(lines[1]); f[0] != "web" || f[1] != "0/3" {
			t.Errorf("deploy row = %q", lines[1])
		}
		wide := h.ok("get", "deployments.apps", "web", "-o", "wide")
		wantContains(t, "wide", wide, "CONTAINERS", "IMAGES", "SELECTOR", "minik8s.local/web:v1", "app=web")
		// several kinds at once: kind-prefixed names, one table each
		multi := h.ok("get", "deploy,po")
		wantContains(t, "deploy,po", multi, "deployment.apps/web", "pod/web-a", "pod/db-0", "\n\nNAME")
		all := h.ok("get", "all")
		wantContains(t, "get all", all, "deployment.apps/web", "pod/db-0")
		slash := h.ok("get", "deploy/web", "po/db-0")
		wantContains(t, "TYPE/NAME", slash, "deployment.apps/web", "pod/db-0")
	})

	t.Run("selectors and labels", func(t *testing.T) {
		h := h.at(t)
		out := h.ok("get", "pods", "-l", "app=web", "--show-labels")
		wantContains(t, "-l", out, "web-a", "LABELS", "app=web,tier=front")
		if strings.Contains(out, "db-0") {
			t.Errorf("-l app=web shows db-0:\n%s", out)
		}
		out = h.ok("get", "pods", "--field-selector", "metadata.name=db-0", "-L", "app")
		wantContains(t, "--field-selector", out, "db-0", "APP")
		if strings.Contains(out, "web-a") {
			t.Errorf("field selector shows web-a:\n%s", out)
		}
		_, errOut, code := h.run("get", "pods", "-l", "app=nothing")
		if code != 0 || errOut != "No resources found in shop namespace.\n" {
			t.Errorf("empty list: exit %d stderr %q", code, errOut)
		}
	})

	t.Run("all namespaces", func(t *testing.T) {
		h := h.at(t)
		out := h.ok("get", "svc,deploy", "-A")
		wantContains(t, "-A", out, "NAMESPACE", "default     service/kubernetes", "shop        deployment.apps/web")
	})

	t.Run("output formats", func(t *testing.T) {
		h := h.at(t)
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict([]byte(h.ok("get", "deploy", "web", "-o", "yaml")), &d); err != nil {
			t.Fatalf("-o yaml: %v", err)
		}
		if d.Kind != "Deployment" || d.APIVersion != "apps/v1" || d.Name != "web" || *d.Spec.Replicas != 3 {
			t.Errorf("-o yaml object = %+v", d.TypeMeta)
		}
		var list struct {
			Kind  string `json:"kind"`
			Items []struct {
				Kind string `json:"kind"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(h.ok("get", "pods", "-o", "json")), &list); err != nil || list.Kind != "List" || len(list.Items) != 2 || list.Items[0].Kind != "Pod" {
			t.Errorf("-o json list = %+v, %v", list, err)
		}
		if got := h.ok("get", "pods", "-o", "name", "--sort-by", ".metadata.name"); got != "pod/db-0\npod/web-a\n" {
			t.Errorf("-o name = %q", got)
		}
		if got := h.ok("get", "pods", "-o", `jsonpath={range .items[*]}{.metadata.name}:{.spec.containers[0].image}{"\n"}{end}`, "--sort-by=.metadata.name"); got != "db-0:minik8s.local/busybox:1.35\nweb-a:minik8s.local/busybox:1.35\n" {
			t.Errorf("jsonpath = %q", got)
		}
		cc := h.ok("get", "deploy", "-o", "custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas,IMAGE:.spec.template.spec.containers[*].image")
		if cc != "NAME   REPLICAS   IMAGE\nweb    3          minik8s.local/web:v1\n" {
			t.Errorf("custom-columns = %q", cc)
		}
		sorted := h.ok("get", "pods", "--sort-by", "{.metadata.name}", "--no-headers")
		if !strings.HasPrefix(sorted, "db-0") {
			t.Errorf("--sort-by table = %q", sorted)
		}
		wantContains(t, "bad -o", h.fails("get", "pods", "-o", "xml"), "allowed formats are")
	})

	t.Run("errors", func(t *testing.T) {
		h := h.at(t)
		wantContains(t, "unknown type", h.fails("get", "widgets"), `the server doesn't have a resource type "widgets"`)
		errOut := h.fails("get", "deploy", "web", "nope")
		wantContains(t, "missing object", errOut, `Error from server (NotFound): deployments.apps "nope" not found`)
		out, _, _ := h.run("get", "deploy", "web", "nope")
		wantContains(t, "found objects still printed", out, "web")
		if out, _, code := h.run("get", "deploy", "nope", "--ignore-not-found"); code != 0 || out != "" {
			t.Errorf("--ignore-not-found: %d %q", code, out)
		}
		wantContains(t, "no type", h.fails("get"), "you must specify the type of resource")
		wantContains(t, "bad flag", h.fails("get", "pods", "--bogus"), "unknown flag: --bogus", "See 'ctl get --help' for usage.")
		wantContains(t, "no kubeconfig", h.fails("get", "pods", "--kubeconfig", "/nonexistent/config"),
			"kubeconfig /nonexistent/config", "make up")
	})

	t.Run("watch", func(t *testing.T) {
		h := h.at(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errOut syncbuf.Buffer
		done := make(chan int, 1)
		go func() {
			done <- Main(ctx, []string{"--kubeconfig", s.Kubeconfig, "-n", "shop", "get", "deploy", "-w"}, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		}()
		waitFor(t, "initial listing", func() bool { return strings.Contains(out.String(), "web ") })
		if _, err := h.cs.Deployments.Namespace("shop").Create(context.Background(), testDeployment("api", 2, "minik8s.local/web:v2"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "watched deployment", func() bool { return strings.Contains(out.String(), "api ") })
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("watch exit %d: %s", code, errOut.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[2], "api    0/2") {
			t.Errorf("watch output:\n%s", out.String())
		}
	})

	t.Run("kubeconfig context and env", func(t *testing.T) {
		kc, err := kubeconfig.Load(s.Kubeconfig, "")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "config")
		kc.Namespace = "shop"
		if err := kubeconfig.Write(path, "shop-ctx", *kc); err != nil {
			t.Fatal(err)
		}
		kc.Namespace = ""
		if err := kubeconfig.Write(path, "plain", *kc); err != nil {
			t.Fatal(err)
		}
		run := func(args ...string) string {
			var out, errOut syncbuf.Buffer
			if code := Main(context.Background(), args, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}); code != 0 {
				t.Fatalf("ctl %v: exit %d: %s", args, code, errOut.String())
			}
			return out.String()
		}
		// current-context is "plain" (written last): namespace default.
		if out := run("--kubeconfig", path, "get", "deploy", "-o", "name"); out != "" {
			t.Errorf("default namespace shows %q", out)
		}
		if out := run("--kubeconfig", path, "--context", "shop-ctx", "get", "deploy", "-o", "name", "--sort-by=.metadata.name"); out != "deployment.apps/api\ndeployment.apps/web\n" {
			t.Errorf("--context shop-ctx: %q", out)
		}
		t.Setenv("KUBECONFIG", path)
		if out := run("--context", "shop-ctx", "get", "deploy", "web", "-o", "name"); out != "deployment.apps/web\n" {
			t.Errorf("$KUBECONFIG: %q", out)
		}
		var out, errOut syncbuf.Buffer
		Main(context.Background(), []string{"--context", "nope", "get", "pods"}, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		wantContains(t, "bad context", errOut.String(), `context "nope" not found`)
	})

	t.Run("connection refused names the server and make up", func(t *testing.T) {
		kc, err := kubeconfig.Load(s.Kubeconfig, "")
		if err != nil {
			t.Fatal(err)
		}
		kc.Server = "https://127.0.0.1:1"
		path := filepath.Join(t.TempDir(), "config")
		if err := kubeconfig.Write(path, "down", *kc); err != nil {
			t.Fatal(err)
		}
		var out, errOut syncbuf.Buffer
		code := Main(context.Background(), []string{"--kubeconfig", path, "get", "pods"}, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		if code != 1 {
			t.Errorf("exit %d", code)
		}
		wantContains(t, "refused", errOut.String(), "The connection to the server https://127.0.0.1:1 was refused", "make up")
	})
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

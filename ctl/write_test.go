package ctl

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/ctl/apply"
	"github.com/minik8s/minik8s/internal/syncbuf"
)

const webV1 = `# the web app
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    team: payments
spec:
  replicas: 2
  minReadySeconds: 5
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: minik8s.local/web:v1
        env:
        - name: MODE
          value: prod
        - name: DEBUG
          value: "false"
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
`

func TestApplyCreateReplaceDelete(t *testing.T) {
	s := apiservertest.Start(t)
	h := newHarness(t, s, "apps")
	ctx := context.Background()
	dir := t.TempDir()
	web := writeFile(t, dir, "web.yaml", webV1)

	t.Run("apply creates, then is unchanged", func(t *testing.T) {
		h := h.at(t)
		if got := h.ok("apply", "-f", web); got != "deployment.apps/web created\nservice/web created\n" {
			t.Errorf("first apply: %q", got)
		}
		if got := h.ok("apply", "-f", web); got != "deployment.apps/web unchanged\nservice/web unchanged\n" {
			t.Errorf("second apply: %q", got)
		}
		d, err := h.cs.Deployments.Namespace("apps").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		last := d.Annotations[apply.Annotation]
		if !strings.HasPrefix(last, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"labels":{"app":"web","team":"payments"},"name":"web","namespace":"apps"}`) {
			t.Errorf("last-applied annotation = %s", last)
		}
	})

	t.Run("removed fields go, others' fields stay", func(t *testing.T) {
		h := h.at(t)
		// Someone else (a controller, another user) changes the object.
		d, err := h.cs.Deployments.Namespace("apps").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.Labels["owner"] = "alice"
		d.Annotations["example.com/note"] = "keep me"
		d.Spec.Template.Spec.Containers[0].Env = append(d.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "INJECTED", Value: "1"})
		if _, err := h.cs.Deployments.Namespace("apps").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		v2 := strings.NewReplacer("    team: payments\n", "", "  minReadySeconds: 5\n", "", "        - name: DEBUG\n          value: \"false\"\n", "",
			"minik8s.local/web:v1", "minik8s.local/web:v2").Replace(webV1)
		path := writeFile(t, dir, "web-v2.yaml", v2)
		if got := h.ok("apply", "-f", path); got != "deployment.apps/web configured\nservice/web unchanged\n" {
			t.Errorf("apply v2: %q", got)
		}
		d, err = h.cs.Deployments.Namespace("apps").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := d.Labels["team"]; ok || d.Labels["owner"] != "alice" {
			t.Errorf("labels = %v: team (removed from file) must go, owner (not ours) must stay", d.Labels)
		}
		if d.Spec.MinReadySeconds != 0 || d.Annotations["example.com/note"] != "keep me" {
			t.Errorf("minReadySeconds=%d annotations=%v", d.Spec.MinReadySeconds, d.Annotations)
		}
		c := d.Spec.Template.Spec.Containers[0]
		var env []string
		for _, e := range c.Env {
			env = append(env, e.Name)
		}
		if c.Image != "minik8s.local/web:v2" || strings.Join(env, ",") != "MODE,INJECTED" {
			t.Errorf("container image=%s env=%v", c.Image, env)
		}
	})

	t.Run("dry runs change nothing", func(t *testing.T) {
		h := h.at(t)
		rv := func() string {
			d, err := h.cs.Deployments.Namespace("apps").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return d.ResourceVersion
		}
		before := rv()
		if got := h.ok("apply", "-f", web, "--dry-run=client"); got != "deployment.apps/web configured (dry run)\nservice/web unchanged (dry run)\n" {
			t.Errorf("client dry run: %q", got)
		}
		if got := h.ok("apply", "-f", web, "--dry-run=server"); got != "deployment.apps/web configured (server dry run)\nservice/web unchanged (server dry run)\n" {
			t.Errorf("server dry run: %q", got)
		}
		if after := rv(); after != before {
			t.Errorf("dry runs changed the deployment (rv %s -> %s)", before, after)
		}
		cm := writeFile(t, dir, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry}\ndata: {a: b}\n")
		out := h.ok("apply", "-f", cm, "--dry-run=server", "-o", "yaml")
		wantContains(t, "server dry run -o yaml", out, "name: dry", "uid:")
		if _, err := h.cs.ConfigMaps.Namespace("apps").Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("server dry run created the config map: %v", err)
		}
	})

	t.Run("broken manifests name file, line and field; nothing is written", func(t *testing.T) {
		h := h.at(t)
		unknown := writeFile(t, dir, "unknown.yaml", `apiVersion: v1
kind: ConfigMap
metadata:
  name: fine
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
spec:
  replicas: 1
  selector:
    matchLabels: {app: typo}
  template:
    metadata:
      labels: {app: typo}
    spec:
      containers:
      - name: c
        image: x
        imagePullPolice: Always
`)
		errOut := h.fails("apply", "-f", unknown)
		wantContains(t, "unknown field", errOut, "nothing was changed",
			unknown+":21: spec.template.spec.containers[0].imagePullPolice: unknown field in Deployment typo (document 2)")
		if _, err := h.cs.ConfigMaps.Namespace("apps").Get(ctx, "fine", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the valid document of a broken file was applied: %v", err)
		}
		syntax := writeFile(t, dir, "syntax.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: [unclosed\n")
		wantContains(t, "syntax", h.fails("apply", "-f", syntax), syntax+":6: invalid YAML: yaml: line 6:")
		noKind := writeFile(t, dir, "nokind.json", `{"apiVersion": "v1", "metadata": {"name": "x"}}`)
		wantContains(t, "no kind", h.fails("create", "-f", noKind), noKind+":1: kind not set (document 1)")
		// --validate=ignore leaves unknown fields to the server, which
		// drops them.
		if got := h.ok("apply", "-f", unknown, "--validate=ignore"); got != "configmap/fine created\ndeployment.apps/typo created\n" {
			t.Errorf("--validate=ignore: %q", got)
		}
		h.ok("delete", "-f", unknown)
	})

	t.Run("server validation errors name the document and the fields", func(t *testing.T) {
		h := h.at(t)
		bad := writeFile(t, dir, "bad.yaml", `apiVersion: v1
kind: ConfigMap
metadata: {name: ok-one}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
spec:
  replicas: -1
  selector:
    matchLabels: {app: bad}
  template:
    metadata:
      labels: {app: other}
    spec:
      containers:
      - name: c
        image: x
`)
		out, errOut, code := h.run("apply", "-f", bad)
		if code != 1 {
			t.Fatalf("exit %d", code)
		}
		if out != "configmap/ok-one created\n" {
			t.Errorf("stdout %q: the valid object is still applied", out)
		}
		wantContains(t, "server errors", errOut, `Error from server (Invalid): error when applying "`+bad+`" (document 2): Deployment.apps "bad" is invalid:`,
			"spec.replicas: Invalid value: -1", "spec.template.metadata.labels")
	})

	t.Run("stdin, JSON and directories", func(t *testing.T) {
		h := h.at(t)
		if got := h.okIn("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-stdin}\n", "apply", "-f", "-"); got != "configmap/from-stdin created\n" {
			t.Errorf("stdin: %q", got)
		}
		tree := filepath.Join(dir, "tree")
		mustMkdir(t, filepath.Join(tree, "sub"))
		writeFile(t, tree, "a.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"tree-a"}}`)
		writeFile(t, tree, "sub/b.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tree-b}\n")
		if got := h.ok("apply", "-f", tree); got != "configmap/tree-a created\n" {
			t.Errorf("dir: %q", got)
		}
		if got := h.ok("apply", "-R", "-f", tree, "-o", "name"); got != "configmap/tree-a\nconfigmap/tree-b\n" {
			t.Errorf("-R -o name: %q", got)
		}
	})

	t.Run("namespace in file must agree with -n", func(t *testing.T) {
		h := h.at(t)
		other := writeFile(t, dir, "other-ns.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: elsewhere}\n")
		wantContains(t, "ns mismatch", h.fails("apply", "-f", other), `the namespace from the provided object "elsewhere" does not match the namespace "apps"`)
	})

	t.Run("create and replace", func(t *testing.T) {
		h := h.at(t)
		cm := writeFile(t, dir, "created.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: created}\ndata: {a: \"1\", b: \"2\"}\n")
		if got := h.ok("create", "-f", cm); got != "configmap/created created\n" {
			t.Errorf("create: %q", got)
		}
		wantContains(t, "create twice", h.fails("create", "-f", cm), `Error from server (AlreadyExists): error when creating "`+cm+`" (document 1): configmaps "created" already exists`)
		// apply over a created object warns and removes nothing
		applied := writeFile(t, dir, "created2.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: created}\ndata: {a: \"1\"}\n")
		out, errOut, code := h.run("apply", "-f", applied)
		if code != 0 || out != "configmap/created configured\n" {
			t.Errorf("apply over created: %d %q", code, out)
		}
		wantContains(t, "warning", errOut, "Warning: configmap/created has no kubectl.kubernetes.io/last-applied-configuration annotation")
		got, _ := h.cs.ConfigMaps.Namespace("apps").Get(ctx, "created", metav1.GetOptions{})
		if got.Data["b"] != "2" {
			t.Errorf("apply removed a key it never managed: %v", got.Data)
		}
		// replace puts the whole object
		if out := h.ok("replace", "-f", applied); out != "configmap/created replaced\n" {
			t.Errorf("replace: %q", out)
		}
		got, _ = h.cs.ConfigMaps.Namespace("apps").Get(ctx, "created", metav1.GetOptions{})
		if len(got.Data) != 1 {
			t.Errorf("after replace data = %v", got.Data)
		}
		old := got.UID
		if out := h.ok("replace", "--force", "-f", applied); !strings.HasSuffix(out, "configmap/created replaced\n") {
			t.Errorf("replace --force: %q", out)
		}
		got, _ = h.cs.ConfigMaps.Namespace("apps").Get(ctx, "created", metav1.GetOptions{})
		if got.UID == old {
			t.Error("replace --force did not re-create the object")
		}
		missing := writeFile(t, dir, "missing.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: missing}\n")
		wantContains(t, "replace missing", h.fails("replace", "-f", missing), `Error from server (NotFound)`, `configmaps "missing" not found`)
		// create --save-config records the configuration for apply
		saved := writeFile(t, dir, "saved.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: saved}\ndata: {a: \"1\", b: \"2\"}\n")
		h.ok("create", "-f", saved, "--save-config")
		h.ok("apply", "-f", writeFile(t, dir, "saved2.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: saved}\ndata: {a: \"1\"}\n"))
		got, _ = h.cs.ConfigMaps.Namespace("apps").Get(ctx, "saved", metav1.GetOptions{})
		if len(got.Data) != 1 {
			t.Errorf("apply after create --save-config left %v", got.Data)
		}
	})

	t.Run("create subcommands", func(t *testing.T) {
		h := h.at(t)
		if out := h.ok("create", "namespace", "made-by-ctl"); out != "namespace/made-by-ctl created\n" {
			t.Errorf("create ns: %q", out)
		}
		if out := h.ok("create", "deployment", "nginx", "--image=nginx:1.14.2", "--replicas=2", "--port=80"); out != "deployment.apps/nginx created\n" {
			t.Errorf("create deployment: %q", out)
		}
		d, err := h.cs.Deployments.Namespace("apps").Get(ctx, "nginx", metav1.GetOptions{})
		if err != nil || *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Containers[0].Name != "nginx" ||
			d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 80 || d.Spec.Selector.MatchLabels["app"] != "nginx" {
			t.Errorf("created deployment = %+v, %v", d, err)
		}
		h.ok("create", "configmap", "game", "--from-literal=lives=3", "--from-literal=level=1")
		h.ok("create", "secret", "generic", "db", "--from-literal=password=s3cret")
		sec, err := h.cs.Secrets.Namespace("apps").Get(ctx, "db", metav1.GetOptions{})
		if err != nil || string(sec.Data["password"]) != "s3cret" {
			t.Errorf("secret = %v, %v", sec, err)
		}
		out := h.ok("create", "configmap", "dry", "--from-literal=a=b", "--dry-run=client", "-o", "yaml")
		wantContains(t, "create --dry-run -o yaml", out, "kind: ConfigMap", "name: dry", "a: b")
	})

	t.Run("delete", func(t *testing.T) {
		h := h.at(t)
		if out := h.ok("delete", "configmap", "from-stdin"); out != "configmap \"from-stdin\" deleted\n" {
			t.Errorf("delete: %q", out)
		}
		if out := h.ok("delete", "cm", "-l", "missing-label=x"); out != "" {
			t.Errorf("delete -l none: %q", out)
		}
		for _, n := range []string{"tree-a", "tree-b"} {
			if _, err := h.cs.ConfigMaps.Namespace("apps").Patch(ctx, n, types.MergePatchType, []byte(`{"metadata":{"labels":{"group":"tree"}}}`), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if out := h.ok("delete", "cm", "-l", "group=tree", "-o", "name"); out != "configmap/tree-a\nconfigmap/tree-b\n" {
			t.Errorf("delete -l: %q", out)
		}
		wantContains(t, "no name", h.fails("delete", "cm"), "no name was specified")
		wantContains(t, "missing", h.fails("delete", "cm", "nope"), `Error from server (NotFound): configmaps "nope" not found`)
		if out, _, code := h.run("delete", "cm", "nope", "--ignore-not-found"); code != 0 || out != "" {
			t.Errorf("--ignore-not-found: %d %q", code, out)
		}
		// dry run keeps the object
		h.ok("delete", "cm", "game", "--dry-run=server")
		if _, err := h.cs.ConfigMaps.Namespace("apps").Get(ctx, "game", metav1.GetOptions{}); err != nil {
			t.Errorf("server dry-run deleted: %v", err)
		}
		// -f deletes what the file describes
		if out := h.ok("delete", "-f", web); out != "deployment.apps \"web\" deleted\nservice \"web\" deleted\n" {
			t.Errorf("delete -f: %q", out)
		}
		// --all
		h.ok("delete", "cm", "--all")
		if l, _ := h.cs.ConfigMaps.Namespace("apps").List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
			t.Errorf("after --all: %d config maps", len(l.Items))
		}
	})

	t.Run("delete waits for finalizers, with a timeout that explains", func(t *testing.T) {
		h := h.at(t)
		h.ok("create", "configmap", "held", "--from-literal=a=b")
		cm, _ := h.cs.ConfigMaps.Namespace("apps").Get(ctx, "held", metav1.GetOptions{})
		cm.Finalizers = []string{"example.com/hold"}
		if _, err := h.cs.ConfigMaps.Namespace("apps").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		errOut := h.fails("delete", "cm", "held", "--timeout=300ms")
		wantContains(t, "timeout", errOut, "timed out waiting for configmap/held to be deleted", "example.com/hold")
		// With the default (no timeout) delete returns once the finalizer goes.
		ctx2, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan int, 1)
		var out, eo syncbuf.Buffer
		go func() {
			done <- Main(ctx2, []string{"--kubeconfig", s.Kubeconfig, "-n", "apps", "delete", "cm", "held"}, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &eo})
		}()
		waitFor(t, "delete to be requested", func() bool { return strings.Contains(out.String(), "deleted") })
		select {
		case code := <-done:
			t.Fatalf("delete returned (%d) while the finalizer still holds the object", code)
		case <-time.After(200 * time.Millisecond):
		}
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		if _, err := h.cs.ConfigMaps.Namespace("apps").Patch(ctx, "held", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if code := <-done; code != 0 {
			t.Errorf("delete exit %d: %s", code, eo.String())
		}
		if _, err := h.cs.ConfigMaps.Namespace("apps").Get(ctx, "held", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("object still there: %v", err)
		}
	})

	t.Run("delete cascade and grace", func(t *testing.T) {
		h := h.at(t)
		h.ok("create", "deployment", "fg", "--image=x")
		errOut := h.fails("delete", "deploy", "fg", "--cascade=foreground", "--timeout=300ms")
		wantContains(t, "foreground", errOut, "foregroundDeletion", "garbage collector")
		d, err := h.cs.Deployments.Namespace("apps").Get(ctx, "fg", metav1.GetOptions{})
		if err != nil || d.DeletionTimestamp == nil {
			t.Errorf("foreground-deleted deployment: %v %v", d, err)
		}
		// A pod on a node lingers for its grace period; --force
		// --grace-period=0 removes it at once.
		pod := testPod("on-node", nil)
		pod.Spec.NodeName = "node-1"
		if _, err := h.cs.Pods.Namespace("apps").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		h.ok("delete", "pod", "on-node", "--wait=false")
		p, err := h.cs.Pods.Namespace("apps").Get(ctx, "on-node", metav1.GetOptions{})
		if err != nil || p.DeletionTimestamp == nil {
			t.Fatalf("pod after graceful delete: %v %v", p, err)
		}
		wantContains(t, "grace 0 without force", h.fails("delete", "pod", "on-node", "--grace-period=0"), "add --force")
		h.ok("delete", "pod", "on-node", "--grace-period=0", "--force")
		if _, err := h.cs.Pods.Namespace("apps").Get(ctx, "on-node", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("forced pod still there: %v", err)
		}
	})

	t.Run("apply -o json prints the result", func(t *testing.T) {
		h := h.at(t)
		out := h.ok("apply", "-f", web, "-o", "json")
		var list struct {
			Kind  string           `json:"kind"`
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil || list.Kind != "List" || len(list.Items) != 2 {
			t.Errorf("apply -o json: %v %q", err, out)
		}
	})
}

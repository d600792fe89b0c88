package apiserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// TestStockKubectl drives a real kubectl binary against a test API server:
// the wire format, discovery, OpenAPI (v3 for current clients, v2 for
// older ones), tables, patches, client-side apply and watch must all be
// what kubectl expects. It runs the kubectl on PATH (Debian 12's
// kubernetes-client is v1.20, newer machines may have v1.32), or the one
// named by MINIK8S_KUBECTL, so several versions can be checked:
//
//	MINIK8S_KUBECTL=/tmp/k120/usr/bin/kubectl go test ./apiserver -run TestStockKubectl
//
// The manifests are in testdata/kubectl.
func TestStockKubectl(t *testing.T) {
	kubectlPath := os.Getenv("MINIK8S_KUBECTL")
	if kubectlPath == "" {
		var err error
		if kubectlPath, err = exec.LookPath("kubectl"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("kubectl is not on PATH, but CI must have it (.ci/run installs Debian's kubectl): %v", err)
			}
			t.Skip("kubectl is not on PATH: install Debian's kubectl (or kubernetes-client) to run the stock-client compatibility test")
		}
	}
	s := apiservertest.Start(t)
	k := &kubectl{t: t, path: kubectlPath, kubeconfig: s.Kubeconfig, cacheDir: t.TempDir()}
	k.minor = k.clientMinor(t)
	t.Logf("kubectl %s: client v1.%d", kubectlPath, k.minor)
	work := t.TempDir()
	manifest := filepath.Join(work, "web.yaml") // edited in place later, as a user would
	copyFile(t, filepath.Join("testdata", "kubectl", "web.yaml"), manifest)

	step(t, "apply creates", func(t *testing.T) {
		out := k.ok(t, "apply", "-f", manifest)
		wantLines(t, out, "deployment.apps/web created", "service/web created")
	})

	step(t, "get tables", func(t *testing.T) {
		tables := parseTables(k.ok(t, "get", "deploy,svc"))
		if len(tables) != 2 {
			t.Fatalf("want 2 tables (deployments, services), got %d: %q", len(tables), tables)
		}
		deploy, svc := tables[0], tables[1]
		wantHeader(t, deploy, "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE")
		wantRow(t, deploy, "deployment.apps/web", map[string]string{"READY": "0/3", "UP-TO-DATE": "0", "AVAILABLE": "0"})
		wantHeader(t, svc, "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE")
		row := wantRow(t, svc, "service/web", map[string]string{"TYPE": "NodePort", "EXTERNAL-IP": "<none>", "PORT(S)": "80:30080/TCP"})
		if ip := row["CLUSTER-IP"]; !strings.HasPrefix(ip, "10.") {
			t.Errorf("service/web CLUSTER-IP = %q, want an address from 10.96.0.0/12", ip)
		}
		wantRow(t, svc, "service/kubernetes", map[string]string{"TYPE": "ClusterIP", "CLUSTER-IP": "10.96.0.1", "PORT(S)": "443/TCP"})
	})

	step(t, "get -o wide", func(t *testing.T) {
		tables := parseTables(k.ok(t, "get", "deploy,svc", "-o", "wide"))
		if len(tables) != 2 {
			t.Fatalf("want 2 tables, got %d: %q", len(tables), tables)
		}
		wantHeader(t, tables[0], "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR")
		wantRow(t, tables[0], "deployment.apps/web", map[string]string{
			"CONTAINERS": "web", "IMAGES": "minik8s.local/web:v1", "SELECTOR": "app=web"})
		wantHeader(t, tables[1], "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR")
		wantRow(t, tables[1], "service/web", map[string]string{"SELECTOR": "app=web"})
	})

	step(t, "get -o yaml", func(t *testing.T) {
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict([]byte(k.ok(t, "get", "deploy", "web", "-o", "yaml")), &d); err != nil {
			t.Fatalf("kubectl get -o yaml is not a Deployment: %v", err)
		}
		if d.Kind != "Deployment" || d.APIVersion != "apps/v1" || d.Name != "web" || d.Namespace != "default" {
			t.Errorf("typemeta/name: %s %s %s/%s", d.APIVersion, d.Kind, d.Namespace, d.Name)
		}
		if d.UID == "" || d.ResourceVersion == "" || d.CreationTimestamp.IsZero() || d.Generation != 1 {
			t.Errorf("server-set metadata missing: uid=%q rv=%q created=%v generation=%d",
				d.UID, d.ResourceVersion, d.CreationTimestamp, d.Generation)
		}
		if d.Annotations["kubectl.kubernetes.io/last-applied-configuration"] == "" {
			t.Errorf("apply did not store last-applied-configuration: %v", d.Annotations)
		}
		if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || d.Spec.RevisionHistoryLimit == nil || *d.Spec.RevisionHistoryLimit != 10 {
			t.Errorf("defaults not applied: strategy=%q revisionHistoryLimit=%v", d.Spec.Strategy.Type, d.Spec.RevisionHistoryLimit)
		}
		c := d.Spec.Template.Spec.Containers
		if len(c) != 1 || c[0].Image != "minik8s.local/web:v1" || c[0].ImagePullPolicy != corev1.PullIfNotPresent ||
			len(c[0].Ports) != 1 || c[0].Ports[0].Protocol != corev1.ProtocolTCP {
			t.Errorf("containers = %+v", c)
		}
	})

	step(t, "get -o json", func(t *testing.T) {
		var list struct {
			Kind  string            `json:"kind"`
			Items []json.RawMessage `json:"items"`
		}
		mustJSON(t, k.ok(t, "get", "deploy,svc", "-o", "json"), &list)
		if list.Kind != "List" || len(list.Items) != 3 { // web deployment, kubernetes and web services
			t.Fatalf("kind %q with %d items, want a List of 3", list.Kind, len(list.Items))
		}
		var svc corev1.Service
		mustJSON(t, k.ok(t, "get", "svc", "web", "-o", "json"), &svc)
		p := svc.Spec.Ports
		if svc.Spec.Type != corev1.ServiceTypeNodePort || len(p) != 1 || p[0].Port != 80 || p[0].NodePort != 30080 ||
			p[0].TargetPort.IntValue() != 8080 || svc.Spec.ClusterIP == "" || svc.Spec.Selector["app"] != "web" {
			t.Errorf("service spec = %+v", svc.Spec)
		}
	})

	step(t, "run and get pods", func(t *testing.T) {
		wantLines(t, k.ok(t, "run", "web-pod", "--image=minik8s.local/web:v1", "--port=8080", "--labels=app=web-pod"),
			"pod/web-pod created")
		tables := parseTables(k.ok(t, "get", "pods"))
		if len(tables) != 1 {
			t.Fatalf("want 1 table, got %q", tables)
		}
		wantHeader(t, tables[0], "NAME", "READY", "STATUS", "RESTARTS", "AGE")
		wantRow(t, tables[0], "web-pod", map[string]string{"READY": "0/1", "STATUS": "Pending", "RESTARTS": "0"})
		var pod corev1.Pod
		mustJSON(t, k.ok(t, "get", "pod", "web-pod", "-o", "json"), &pod)
		if pod.Spec.Containers[0].Image != "minik8s.local/web:v1" || pod.Labels["app"] != "web-pod" || pod.Status.Phase != corev1.PodPending {
			t.Errorf("pod = %+v", pod)
		}
	})

	step(t, "get -w sees a change", func(t *testing.T) {
		w := k.start(t, "get", "deploy", "web", "-w", "--output-watch-events")
		first := w.waitLine(t, func(f []string) bool { return len(f) > 2 && f[0] == "ADDED" && f[1] == "web" })
		if f := strings.Fields(first); f[2] != "0/3" {
			t.Errorf("initial watch line %q, want READY 0/3", first)
		}
		k.ok(t, "scale", "deploy", "web", "--replicas=4")
		w.waitLine(t, func(f []string) bool { return len(f) > 2 && f[0] == "MODIFIED" && f[1] == "web" && f[2] == "0/4" })
		w.stop()
	})

	step(t, "patch strategic", func(t *testing.T) {
		// A strategic merge patch merges containers by name and env by name:
		// GREETING and COLOR stay, MODE is added, the image is untouched.
		wantLines(t, k.ok(t, "patch", "deploy", "web", "-p",
			`{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"MODE","value":"patched"}]}]}}}}`),
			"deployment.apps/web patched")
		d := getDeployment(t, k, "web")
		c := d.Spec.Template.Spec.Containers
		if len(c) != 1 || c[0].Image != "minik8s.local/web:v1" || len(c[0].Env) != 3 || envValue(c[0].Env, "MODE") != "patched" ||
			envValue(c[0].Env, "GREETING") != "hello" || envValue(c[0].Env, "COLOR") != "blue" {
			t.Errorf("after strategic patch containers = %+v", c)
		}
		if d.Generation != 3 { // created, scaled, patched
			t.Errorf("generation = %d, want 3", d.Generation)
		}
	})

	step(t, "patch merge", func(t *testing.T) {
		// A JSON merge patch replaces lists and deletes keys set to null.
		k.ok(t, "patch", "deploy", "web", "--type=merge", "-p",
			`{"metadata":{"labels":{"merged":"yes"}},"spec":{"revisionHistoryLimit":7}}`)
		k.ok(t, "patch", "deploy", "web", "--type=merge", "-p",
			`{"metadata":{"labels":{"merged":null,"merge2":"yes"}}}`)
		d := getDeployment(t, k, "web")
		if _, ok := d.Labels["merged"]; ok || d.Labels["merge2"] != "yes" || d.Labels["app"] != "web" {
			t.Errorf("labels after merge patches = %v", d.Labels)
		}
		if d.Spec.RevisionHistoryLimit == nil || *d.Spec.RevisionHistoryLimit != 7 {
			t.Errorf("revisionHistoryLimit = %v, want 7", d.Spec.RevisionHistoryLimit)
		}
	})

	step(t, "patch json", func(t *testing.T) {
		k.ok(t, "patch", "deploy", "web", "--type=json", "-p",
			`[{"op":"test","path":"/spec/replicas","value":4},{"op":"replace","path":"/spec/minReadySeconds","value":3},`+
				`{"op":"add","path":"/metadata/labels/jsonpatch","value":"yes"}]`)
		d := getDeployment(t, k, "web")
		if d.Spec.MinReadySeconds != 3 || d.Labels["jsonpatch"] != "yes" {
			t.Errorf("after json patch minReadySeconds=%d labels=%v", d.Spec.MinReadySeconds, d.Labels)
		}
		// A failing test operation rejects the whole patch.
		out := k.fail(t, "patch", "deploy", "web", "--type=json", "-p",
			`[{"op":"replace","path":"/spec/minReadySeconds","value":9},{"op":"test","path":"/spec/replicas","value":99}]`)
		if !strings.Contains(out, `The Deployment "web" is invalid: patch: Invalid value`) || !strings.Contains(out, "/spec/replicas") {
			t.Errorf("failed json patch output %q, want an Invalid error naming the patch and the failed test", out)
		}
		if d := getDeployment(t, k, "web"); d.Spec.MinReadySeconds != 3 {
			t.Errorf("a rejected json patch changed minReadySeconds to %d", d.Spec.MinReadySeconds)
		}
	})

	step(t, "label and annotate", func(t *testing.T) {
		wantLines(t, k.ok(t, "label", "deploy", "web", "team=blue"), "deployment.apps/web labeled")
		k.fail(t, "label", "deploy", "web", "team=red") // no --overwrite
		k.ok(t, "label", "deploy", "web", "merge2-", "jsonpatch-")
		wantLines(t, k.ok(t, "annotate", "deploy", "web", "example.com/note=hello world"), "deployment.apps/web annotated")
		d := getDeployment(t, k, "web")
		want := map[string]string{"app": "web", "team": "blue"}
		if !maps.Equal(d.Labels, want) {
			t.Errorf("labels = %v, want %v", d.Labels, want)
		}
		if d.Annotations["example.com/note"] != "hello world" {
			t.Errorf("annotations = %v", d.Annotations)
		}
		out := k.ok(t, "get", "deploy", "-l", "team=blue", "-o", "name")
		wantLines(t, out, "deployment.apps/web")
	})

	step(t, "scale", func(t *testing.T) {
		wantLines(t, k.ok(t, "scale", "deploy", "web", "--replicas=5"), "deployment.apps/web scaled")
		if d := getDeployment(t, k, "web"); d.Spec.Replicas == nil || *d.Spec.Replicas != 5 {
			t.Errorf("spec.replicas = %v, want 5", d.Spec.Replicas)
		}
		// The scale subresource reads back the same number and the selector.
		var sc struct {
			Kind string `json:"kind"`
			Spec struct {
				Replicas int32 `json:"replicas"`
			} `json:"spec"`
			Status struct {
				Selector string `json:"selector"`
			} `json:"status"`
		}
		if k.minor >= 24 {
			mustJSON(t, k.ok(t, "get", "deploy", "web", "--subresource=scale", "-o", "json"), &sc)
		} else { // --subresource came in kubectl 1.24
			mustJSON(t, k.ok(t, "get", "--raw", "/apis/apps/v1/namespaces/default/deployments/web/scale"), &sc)
		}
		if sc.Kind != "Scale" || sc.Spec.Replicas != 5 || sc.Status.Selector != "app=web" {
			t.Errorf("scale subresource = %+v", sc)
		}
		// --current-replicas is a precondition.
		k.fail(t, "scale", "deploy", "web", "--current-replicas=2", "--replicas=1")
	})

	step(t, "re-apply edited manifest", func(t *testing.T) {
		// The edit drops the GREETING env var and the tier label and moves
		// to v2. kubectl's three-way merge removes what left the file, keeps
		// what others added (the MODE env var, the team label, the
		// annotation), and resets replicas to the file's 3.
		copyFile(t, filepath.Join("testdata", "kubectl", "web-v2.yaml"), manifest)
		out := k.ok(t, "apply", "-f", manifest)
		wantLines(t, out, "deployment.apps/web configured", "service/web unchanged")
		d := getDeployment(t, k, "web")
		c := d.Spec.Template.Spec.Containers
		if len(c) != 1 || c[0].Image != "minik8s.local/web:v2" {
			t.Fatalf("containers = %+v", c)
		}
		// GREETING left the file: gone. COLOR is still in it: kept. MODE
		// was added by the strategic patch, never by apply: kept.
		if len(c[0].Env) != 2 || envValue(c[0].Env, "COLOR") != "blue" || envValue(c[0].Env, "MODE") != "patched" {
			t.Errorf("env after re-apply = %+v, want MODE (patched) and COLOR (from the file), not GREETING", c[0].Env)
		}
		if _, ok := d.Spec.Template.Labels["tier"]; ok {
			t.Errorf("template label removed from the manifest is still there: %v", d.Spec.Template.Labels)
		}
		if d.Labels["team"] != "blue" || d.Annotations["example.com/note"] != "hello world" {
			t.Errorf("apply dropped fields it does not own: labels=%v annotations=%v", d.Labels, d.Annotations)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
			t.Errorf("spec.replicas = %v, want the manifest's 3", d.Spec.Replicas)
		}
		// Applying the same file again changes nothing. (kubectl still
		// sends the deployment a patch of $setElementOrder directives, as
		// MODE is not in the file, and so says "configured"; the server
		// must see it is a no-op and not write.)
		out = k.ok(t, "apply", "-f", manifest)
		wantLines(t, out, "service/web unchanged")
		again := getDeployment(t, k, "web")
		if again.ResourceVersion != d.ResourceVersion || again.Generation != d.Generation {
			t.Errorf("a no-op re-apply wrote the deployment: resourceVersion %s -> %s, generation %d -> %d",
				d.ResourceVersion, again.ResourceVersion, d.Generation, again.Generation)
		}
	})

	step(t, "create configmap and secret", func(t *testing.T) {
		wantLines(t, k.ok(t, "create", "configmap", "settings", "--from-literal=mode=fast", "--from-literal=level=3"),
			"configmap/settings created")
		var cm corev1.ConfigMap
		mustJSON(t, k.ok(t, "get", "cm", "settings", "-o", "json"), &cm)
		if !maps.Equal(cm.Data, map[string]string{"mode": "fast", "level": "3"}) {
			t.Errorf("configmap data = %v", cm.Data)
		}
		k.fail(t, "create", "configmap", "settings", "--from-literal=mode=slow") // AlreadyExists

		wantLines(t, k.ok(t, "create", "secret", "generic", "creds", "--from-literal=user=admin", "--from-literal=password=s3cr3t"),
			"secret/creds created")
		var sec corev1.Secret
		mustJSON(t, k.ok(t, "get", "secret", "creds", "-o", "json"), &sec)
		if sec.Type != corev1.SecretTypeOpaque || string(sec.Data["user"]) != "admin" || string(sec.Data["password"]) != "s3cr3t" {
			t.Errorf("secret = type %q data %q", sec.Type, sec.Data)
		}
		tables := parseTables(k.ok(t, "get", "cm,secret"))
		if len(tables) != 2 {
			t.Fatalf("want 2 tables, got %q", tables)
		}
		wantHeader(t, tables[0], "NAME", "DATA", "AGE")
		wantRow(t, tables[0], "configmap/settings", map[string]string{"DATA": "2"})
		wantHeader(t, tables[1], "NAME", "TYPE", "DATA", "AGE")
		wantRow(t, tables[1], "secret/creds", map[string]string{"TYPE": "Opaque", "DATA": "2"})
	})

	step(t, "delete cm -l", func(t *testing.T) {
		for _, name := range []string{"batch-a", "batch-b"} {
			k.ok(t, "create", "cm", name, "--from-literal=k=v")
			k.ok(t, "label", "cm", name, "batch=yes")
		}
		out := k.ok(t, "delete", "cm", "-l", "batch=yes")
		wantLines(t, out, `configmap "batch-a" deleted`, `configmap "batch-b" deleted`)
		names := strings.Fields(k.ok(t, "get", "cm", "-o", "name"))
		if slices.Contains(names, "configmap/batch-a") || slices.Contains(names, "configmap/batch-b") || !slices.Contains(names, "configmap/settings") {
			t.Errorf("configmaps after delete -l: %v", names)
		}
	})

	step(t, "delete -f", func(t *testing.T) {
		out := k.ok(t, "delete", "-f", manifest)
		wantLines(t, out, `deployment.apps "web" deleted`, `service "web" deleted`)
		for _, obj := range []string{"deploy/web", "svc/web"} {
			if out := k.fail(t, "get", obj); !strings.Contains(out, "NotFound") {
				t.Errorf("get %s after delete: %q, want NotFound", obj, out)
			}
		}
		k.ok(t, "delete", "pod", "web-pod")
		// "No resources found" goes to stderr, the table (none) to stdout.
		if out, errOut, err := k.run("get", "pods"); err != nil || out != "" || !strings.Contains(errOut, "No resources found in default namespace.") {
			t.Errorf("get pods after delete: %v stdout %q stderr %q", err, out, errOut)
		}
	})

	step(t, "unknown field is rejected", func(t *testing.T) {
		out := k.fail(t, "apply", "-f", filepath.Join("testdata", "kubectl", "unknown-field.yaml"))
		// kubectl 1.25 and later find in /openapi/v3 that the server
		// validates and send fieldValidation=Strict: the server names the
		// field. Older ones validate on the client against /openapi/v2,
		// so this checks that the v2 schemas are complete and strict.
		want := `unknown field "spec.replica"`
		if k.minor < 25 {
			want = `unknown field "replica" in io.k8s.api.apps.v1.DeploymentSpec`
		}
		if !strings.Contains(out, want) {
			t.Errorf("apply with an unknown field: %q, want %q", out, want)
		}
		k.fail(t, "get", "deploy", "typo")
	})

	step(t, "invalid name is rejected", func(t *testing.T) {
		out := k.fail(t, "apply", "-f", filepath.Join("testdata", "kubectl", "invalid-name.yaml"))
		if !strings.Contains(out, "metadata.name") || !strings.Contains(out, `"Bad_Name"`) || !strings.Contains(out, "is invalid") {
			t.Errorf("apply with an invalid name: %q, want an Invalid error naming metadata.name", out)
		}
	})

	step(t, "api-resources", func(t *testing.T) {
		tables := parseTables(k.ok(t, "api-resources"))
		if len(tables) != 1 {
			t.Fatalf("want 1 table, got %q", tables)
		}
		tab := tables[0]
		wantHeader(t, tab, "NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")
		want := map[string]string{ // name -> the rest of the row
			"pods":        "po v1 true Pod",
			"services":    "svc v1 true Service",
			"configmaps":  "cm v1 true ConfigMap",
			"namespaces":  "ns v1 false Namespace",
			"nodes":       "no v1 false Node",
			"deployments": "deploy apps/v1 true Deployment",
			"replicasets": "rs apps/v1 true ReplicaSet",
			"leases":      "coordination.k8s.io/v1 true Lease",
			"secrets":     "v1 true Secret",
		}
		for _, row := range tab.rows {
			if w, ok := want[row[0]]; ok {
				if got := strings.Join(row[1:], " "); got != w {
					t.Errorf("api-resources %s: %q, want %q", row[0], got, w)
				}
				delete(want, row[0])
			}
		}
		if len(want) > 0 {
			t.Errorf("api-resources lacks %v", want)
		}
	})

	step(t, "get ns", func(t *testing.T) {
		tables := parseTables(k.ok(t, "get", "ns"))
		if len(tables) != 1 {
			t.Fatalf("want 1 table, got %q", tables)
		}
		wantHeader(t, tables[0], "NAME", "STATUS", "AGE")
		for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
			wantRow(t, tables[0], ns, map[string]string{"STATUS": "Active"})
		}
	})

	step(t, "explain", func(t *testing.T) {
		// kubectl explain reads the OpenAPI schemas (types and fields; the
		// schemas carry no descriptions): v3 since kubectl 1.27, v2 before,
		// with another output format.
		if k.minor >= 27 {
			out := k.ok(t, "explain", "deployments")
			wantLines(t, out, "GROUP:      apps", "KIND:       Deployment", "VERSION:    v1")
			wantLines(t, k.ok(t, "explain", "deployment.spec.replicas"), "FIELD: replicas <integer>")
			wantLines(t, k.ok(t, "explain", "pods.spec.containers.image"), "KIND:       Pod", "FIELD: image <string>")
			out = k.ok(t, "explain", "svc.spec.ports")
			wantLines(t, out, "FIELD: ports <[]ServicePort>", "nodePort\t<integer>", "port\t<integer>", "protocol\t<string>")
		} else {
			out := k.ok(t, "explain", "deployments")
			wantLines(t, out, "KIND:     Deployment", "VERSION:  apps/v1", "metadata\t<Object>", "spec\t<Object>")
			wantLines(t, k.ok(t, "explain", "deployment.spec.replicas"), "FIELD:    replicas <integer>")
			wantLines(t, k.ok(t, "explain", "pods.spec.containers.image"), "KIND:     Pod", "FIELD:    image <string>")
			// IntOrString is a string with format int-or-string in v2.
			out = k.ok(t, "explain", "svc.spec.ports")
			wantLines(t, out, "RESOURCE: ports <[]Object>", "nodePort\t<integer>", "port\t<integer>", "protocol\t<string>",
				"targetPort\t<string>")
		}
		if _, _, err := k.run("explain", "deployment.spec.replica"); err == nil {
			t.Errorf("explain of a field that does not exist succeeded")
		}
	})
}

// kubectl runs the stock binary against one test server.
type kubectl struct {
	t          *testing.T
	path       string
	kubeconfig string
	cacheDir   string
	// minor is the client's minor version: a few commands and output
	// formats differ between the kubectl versions this test runs.
	minor int
}

// clientMinor asks the binary for its version (client only: no server
// request, which is tested separately).
func (k *kubectl) clientMinor(t *testing.T) int {
	var v struct {
		ClientVersion struct {
			Major, Minor string
		} `json:"clientVersion"`
	}
	mustJSON(t, k.ok(t, "version", "--client", "-o", "json"), &v)
	minor, err := strconv.Atoi(strings.TrimSuffix(v.ClientVersion.Minor, "+"))
	if v.ClientVersion.Major != "1" || err != nil {
		t.Fatalf("kubectl client version %q.%q is not 1.x", v.ClientVersion.Major, v.ClientVersion.Minor)
	}
	return minor
}

const kubectlTimeout = time.Minute

func (k *kubectl) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, k.path, args...)
	// A private discovery/HTTP cache: each test server is new.
	c.Env = append(os.Environ(), "KUBECONFIG="+k.kubeconfig, "KUBECACHEDIR="+k.cacheDir)
	return c
}

func (k *kubectl) run(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	c := k.cmd(ctx, args...)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	err = c.Run()
	return o.String(), e.String(), err
}

// ok runs kubectl and fails the test unless it succeeds; it returns stdout.
func (k *kubectl) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := k.run(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s\n(rerun with -v=8 for the HTTP exchange)",
			strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// fail runs kubectl, fails the test if it succeeds, and returns stderr+stdout.
func (k *kubectl) fail(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := k.run(args...)
	if err == nil {
		t.Fatalf("kubectl %s succeeded, want an error\nstdout: %s", strings.Join(args, " "), out)
	}
	if _, ok := err.(*exec.ExitError); !ok {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return errOut + out
}

// watcher is a running `kubectl get -w`.
type watcher struct {
	cancel context.CancelFunc
	cmd    *exec.Cmd
	lines  chan string
	stderr *bytes.Buffer
}

func (k *kubectl) start(t *testing.T, args ...string) *watcher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	w := &watcher{cancel: cancel, cmd: k.cmd(ctx, args...), lines: make(chan string, 100), stderr: &bytes.Buffer{}}
	w.cmd.Stderr = w.stderr
	pipe, err := w.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		defer close(w.lines)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

// waitLine returns the first output line whose fields match.
func (w *watcher) waitLine(t *testing.T, match func(fields []string) bool) string {
	t.Helper()
	var seen []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				w.stop()
				t.Fatalf("kubectl watch ended before the expected line; output %q, stderr %q", seen, w.stderr.String())
			}
			seen = append(seen, l)
			if match(strings.Fields(l)) {
				return l
			}
		case <-timeout:
			t.Fatalf("no matching watch line after 30s; output so far %q", seen)
		}
	}
}

func (w *watcher) stop() {
	w.cancel()
	_ = w.cmd.Wait()
}

// step runs one stage of the scenario and stops the scenario if it fails:
// later stages build on earlier ones.
func step(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, f) {
		t.FailNow()
	}
}

// table is one printed kubectl table.
type table struct {
	header []string
	rows   [][]string
}

// parseTables splits kubectl's output into tables (separated by blank
// lines; `get a,b` prints one per kind). Cells never contain spaces in the
// outputs this test reads.
func parseTables(out string) []table {
	var tables []table
	var cur *table
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			cur = nil
			continue
		}
		if cur == nil {
			tables = append(tables, table{header: f})
			cur = &tables[len(tables)-1]
			continue
		}
		cur.rows = append(cur.rows, f)
	}
	return tables
}

func wantHeader(t *testing.T, tab table, cols ...string) {
	t.Helper()
	if !slices.Equal(tab.header, cols) {
		t.Errorf("table header %q, want %q", tab.header, cols)
	}
}

// wantRow finds the row named name and checks the given cells.
func wantRow(t *testing.T, tab table, name string, cells map[string]string) map[string]string {
	t.Helper()
	for _, r := range tab.rows {
		if r[0] != name {
			continue
		}
		if len(r) != len(tab.header) {
			t.Errorf("row %q has %d cells, header %q has %d", r, len(r), tab.header, len(tab.header))
			return nil
		}
		got := map[string]string{}
		for i, h := range tab.header {
			got[h] = r[i]
		}
		for col, want := range cells {
			if got[col] != want {
				t.Errorf("%s %s = %q, want %q", name, col, got[col], want)
			}
		}
		return got
	}
	t.Errorf("no row %q in table %q %q", name, tab.header, tab.rows)
	return nil
}

// wantLines checks that each line appears in out.
func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	have := strings.Split(strings.TrimSpace(out), "\n")
	for i := range have {
		have[i] = strings.TrimSpace(have[i])
	}
	for _, l := range lines {
		if !slices.Contains(have, l) {
			t.Errorf("output lacks line %q:\n%s", l, out)
		}
	}
}

func mustJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("kubectl output is not the expected JSON (%v):\n%s", err, out)
	}
}

func getDeployment(t *testing.T, k *kubectl, name string) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	mustJSON(t, k.ok(t, "get", "deploy", name, "-o", "json"), &d)
	return &d
}

func envValue(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

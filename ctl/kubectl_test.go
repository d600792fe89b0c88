package ctl

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// stockKubectl runs Debian's kubectl against the test server.
type stockKubectl struct {
	t          *testing.T
	path       string
	kubeconfig string
	cacheDir   string
}

func findKubectl(t *testing.T) string {
	p, err := exec.LookPath("kubectl")
	if err != nil {
		p = "/usr/bin/kubectl"
		if _, serr := os.Stat(p); serr != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("kubectl not found but $CI is set: CI must install Debian's kubectl (%v)", err)
			}
			t.Skip("kubectl not installed: the ctl/kubectl comparison needs a stock kubectl (apt-get install kubectl)")
		}
	}
	return p
}

func (k *stockKubectl) run(args ...string) (string, string, error) {
	cmd := exec.Command(k.path, append([]string{"--cache-dir", k.cacheDir}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+k.kubeconfig, "HOME="+k.cacheDir)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func (k *stockKubectl) ok(args ...string) string {
	k.t.Helper()
	out, errOut, err := k.run(args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

var docManifests = []string{"nginx-deployment.yaml", "service.yaml", "configmap.yaml", "secret-basic-auth.yaml",
	"secret-opaque.yaml", "nginx-app.yaml", "simple-pod.yaml"}

// comparable reduces an object to what both clients decide: everything
// but server-stamped identity, allocations and status. Namespace names
// inside the last-applied annotation are normalised.
func comparable(t *testing.T, raw []byte, ns string) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	md := obj["metadata"].(map[string]any)
	for _, k := range []string{"uid", "resourceVersion", "creationTimestamp", "namespace", "managedFields", "generation"} {
		delete(md, k)
	}
	if a, ok := md["annotations"].(map[string]any); ok {
		for k, v := range a {
			a[k] = strings.ReplaceAll(v.(string), `"namespace":"`+ns+`"`, `"namespace":"NS"`)
		}
	}
	delete(obj, "status")
	if spec, ok := obj["spec"].(map[string]any); ok && obj["kind"] == "Service" {
		delete(spec, "clusterIP")
		delete(spec, "clusterIPs")
		if ports, ok := spec["ports"].([]any); ok {
			for _, p := range ports {
				delete(p.(map[string]any), "nodePort")
			}
		}
	}
	return obj
}

func TestSameObjectsAsKubectl(t *testing.T) {
	kubectlPath := findKubectl(t)
	s := apiservertest.Start(t)
	h := newHarness(t, s, "by-ctl")
	newHarness(t, s, "by-kubectl")
	k := &stockKubectl{t: t, path: kubectlPath, kubeconfig: s.Kubeconfig, cacheDir: t.TempDir()}
	docs := filepath.Join("testdata", "k8sdocs")

	var files []string
	for _, f := range docManifests {
		files = append(files, "-f", filepath.Join(docs, f))
	}
	ctlOut := h.ok(append([]string{"apply"}, files...)...)
	kOut := k.ok(append([]string{"apply", "-n", "by-kubectl"}, files...)...)
	if ctlOut != kOut {
		t.Errorf("apply output differs\nctl:\n%s\nkubectl:\n%s", ctlOut, kOut)
	}

	objects := []string{"deployment/nginx-deployment", "service/my-service", "configmap/game-demo", "secret/secret-basic-auth",
		"secret/mysecret", "service/my-nginx-svc", "deployment/my-nginx", "pod/nginx"}
	for _, o := range objects {
		a := comparable(t, []byte(h.ok("get", o, "-o", "json")), "by-ctl")
		b := comparable(t, []byte(k.ok("get", o, "-n", "by-kubectl", "-o", "json")), "by-kubectl")
		ja, _ := json.MarshalIndent(a, "", "  ")
		jb, _ := json.MarshalIndent(b, "", "  ")
		if !bytes.Equal(ja, jb) {
			t.Errorf("%s differs\nctl apply:\n%s\nkubectl apply:\n%s", o, ja, jb)
		}
	}

	// Each tool sees the other's objects as up to date. (A Secret written
	// with stringData always looks changed to both: the server folds
	// stringData into data and never returns it.)
	kAgain := k.ok(append([]string{"apply", "-n", "by-ctl"}, files...)...)
	ctlAgain := h.ok(append([]string{"apply", "-n", "by-kubectl"}, files...)...)
	if kAgain != ctlAgain {
		t.Errorf("re-apply differs\nkubectl over ctl's objects:\n%s\nctl over kubectl's objects:\n%s", kAgain, ctlAgain)
	}
	for _, l := range strings.Split(strings.TrimSpace(ctlAgain), "\n") {
		if !strings.HasSuffix(l, " unchanged") && l != "secret/secret-basic-auth configured" {
			t.Errorf("ctl apply over kubectl's objects: %q", l)
		}
	}

	// ... and a field removed from the file is removed whichever tool
	// applied before.
	dir := t.TempDir()
	edited := strings.Replace(readTestdata(t, "k8sdocs/nginx-deployment.yaml"), "  labels:\n    app: nginx\nspec:", "spec:", 1)
	path := writeFile(t, dir, "nginx-deployment.yaml", edited)
	wantContains(t, "kubectl apply of ctl's object", k.ok("apply", "-n", "by-ctl", "-f", path), "deployment.apps/nginx-deployment configured")
	wantContains(t, "ctl apply of kubectl's object", h.ok("apply", "-n", "by-kubectl", "-f", path), "deployment.apps/nginx-deployment configured")
	for _, ns := range []string{"by-ctl", "by-kubectl"} {
		labels := h.ok("get", "-n", ns, "deploy", "nginx-deployment", "-o", "jsonpath={.metadata.labels}")
		if labels != "" {
			t.Errorf("namespace %s: labels removed from the file are still there: %s", ns, labels)
		}
	}

	// Both print the same table for the same objects (the server's).
	ctlTable := columnsOf(h.ok("get", "deploy,svc,cm,secret,pods", "-n", "by-ctl"))
	kTable := columnsOf(k.ok("get", "deploy,svc,cm,secret,pods", "-n", "by-ctl"))
	if ctlTable != kTable {
		t.Errorf("tables differ\nctl:\n%s\nkubectl:\n%s", ctlTable, kTable)
	}
}

// columnsOf keeps the header and first columns of table output, sorted,
// ignoring spacing and the columns that differ by nature (AGE, IPs).
func columnsOf(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) > 2 {
			f = f[:2]
		}
		lines = append(lines, strings.Join(f, " "))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func readTestdata(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

package describe

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
	"github.com/minik8s/minik8s/api/scheme"
	"github.com/minik8s/minik8s/ctl/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files in ctl/testdata/describe")

var now = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// load reads testdata/describe/<name>.yaml: the object first, then the
// related objects the command would fetch.
func load(t *testing.T, name string) (runtime.Object, Extras) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "describe", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := manifest.Parse(name, data)
	if err != nil {
		t.Fatal(err)
	}
	typed := func(d *manifest.Doc) runtime.Object {
		obj, err := d.Check(scheme.StrictCodecs.UniversalDeserializer())
		if err != nil {
			t.Fatal(err)
		}
		if obj == nil {
			return d.Object
		}
		return obj
	}
	var x Extras
	for _, d := range docs[1:] {
		switch v := typed(d).(type) {
		case *corev1.Event:
			x.Events = append(x.Events, *v)
		case *corev1.Endpoints:
			x.Endpoints = v
		case *appsv1.ReplicaSet:
			x.ReplicaSets = append(x.ReplicaSets, *v)
		case *corev1.Pod:
			x.Pods = append(x.Pods, *v)
		default:
			t.Fatalf("unexpected extra %T", v)
		}
	}
	return typed(docs[0]), x
}

func TestDescribeGolden(t *testing.T) {
	for _, name := range []string{"pod", "deployment", "service", "configmap", "secret", "node", "lease", "crontab"} {
		t.Run(name, func(t *testing.T) {
			obj, x := load(t, name)
			var b bytes.Buffer
			if err := Describe(&b, obj, x, now); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("..", "testdata", "describe", name+".golden")
			if *update {
				os.WriteFile(path, b.Bytes(), 0o644)
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./ctl/describe -update)", err)
			}
			if b.String() != string(want) {
				t.Errorf("describe %s differs from %s:\n--- got ---\n%s--- want ---\n%s", name, path, b.String(), want)
			}
		})
	}
}

func TestDescribeFacts(t *testing.T) {
	get := func(name string) string {
		obj, x := load(t, name)
		var b bytes.Buffer
		if err := Describe(&b, obj, x, now); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for name, wants := range map[string][]string{
		"pod": {"Node:", "node-1/10.0.0.11", "Controlled By:", "ReplicaSet/web-7d9f8", "CrashLoopBackOff", "Restart Count:", "4",
			"<set to the key 'password' in secret 'db'>", "http-get http://:http/healthz", "/etc/web from config (ro)",
			"Ready False", "BackOff", "30s (x12 over 8m)", "kubelet, node-1",
			"DownwardAPI (a volume populated by information about the pod)", "metadata.labels -> labels", "limits.memory -> mem",
			"Projected (a volume that contains injected data from multiple sources)", "SecretName: db", "ConfigMapOptional: true",
			"metadata.name -> name"},
		"deployment": {"3 desired | 2 updated | 4 total | 3 available | 1 unavailable", "25% max unavailable, 25% max surge",
			"NewReplicaSet:", "nginx-deployment-559d658b74 (2/2 replicas created)", "OldReplicaSets:", "nginx-deployment-66b6c48dd5",
			"Progressing", "ReplicaSetUpdated", "Events:", "<none>"},
		"service":   {"TargetPort:", "http/TCP", "10.244.1.7:8080,10.244.2.3:8080", "NodePort:", "30080/TCP", "10.244.1.7:9090"},
		"secret":    {"password: 12 bytes", "username: 5 bytes"},
		"configmap": {"game.properties:", "enemy.types=aliens,monsters", "player_initial_lives:"},
		"node":      {"Roles:", "worker", "node.kubernetes.io/unreachable:NoExecute", "NodeStatusUnknown", "Non-terminated Pods:", "(1 in total)"},
		"crontab":   {"API Version:", "stable.example.com/v1", "Cron Spec:", "Tolerations:", "- Key:"},
	} {
		out := strings.Join(strings.Fields(get(name)), " ")
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("describe %s: missing %q in\n%s", name, w, out)
			}
		}
	}
	if out := get("deployment"); strings.Contains(out, "last-applied") {
		t.Error("the last-applied annotation is shown")
	}
	if out := get("secret"); strings.Contains(out, "YWRtaW4") || strings.Contains(out, "admin") {
		t.Error("secret values are shown")
	}
}

func TestGenericOfUnstructured(t *testing.T) {
	var u unstructured.Unstructured
	if err := yaml.Unmarshal([]byte("apiVersion: x/v1\nkind: Thing\nmetadata: {name: a}\nspec: {size: 3, parts: [p1, p2]}\n"), &u.Object); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Describe(&b, &u, Extras{NoEvents: true}, now); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Name:", "Kind:", "Thing", "Spec:", "Size:", "Parts:", "p1"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("missing %q in\n%s", w, b.String())
		}
	}
	if strings.Contains(b.String(), "Events") {
		t.Error("NoEvents still shows events")
	}
}

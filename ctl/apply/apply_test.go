package apply

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/minik8s/minik8s/api/scheme"
)

var update = flag.Bool("update", false, "rewrite the golden files in ctl/testdata/apply")

const testdata = "../testdata/apply"

func readObj(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return u
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ctl/apply -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// typedFor is what ctl does: the Go type from the scheme, or nil.
func typedFor(u *unstructured.Unstructured) runtime.Object {
	obj, err := scheme.Scheme.New(u.GroupVersionKind())
	if err != nil {
		return nil
	}
	return obj
}

// result is the live object after the patch, as a generic map.
type result map[string]any

func (r result) get(path ...string) (any, bool) {
	var cur any = map[string]any(r)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func TestThreeWayMergeGolden(t *testing.T) {
	checks := map[string]func(t *testing.T, r result, pt types.PatchType){
		"deployment-remove-field": func(t *testing.T, r result, pt types.PatchType) {
			if _, ok := r.get("metadata", "labels", "team"); ok {
				t.Error("label removed from the file is still there")
			}
			if _, ok := r.get("spec", "minReadySeconds"); ok {
				t.Error("minReadySeconds removed from the file is still there")
			}
			if v, _ := r.get("metadata", "labels", "owner"); v != "alice" {
				t.Error("label set by someone else was dropped")
			}
			if v, _ := r.get("metadata", "annotations", "deployment.kubernetes.io/revision"); v != "1" {
				t.Error("controller's annotation was dropped")
			}
			if v, _ := r.get("spec", "revisionHistoryLimit"); v == nil {
				t.Error("server default was dropped")
			}
			if pt != types.StrategicMergePatchType {
				t.Errorf("patch type %s", pt)
			}
		},
		"deployment-change-image": func(t *testing.T, r result, _ types.PatchType) {
			cs, _ := r.get("spec", "template", "spec", "containers")
			list := cs.([]any)
			if len(list) != 2 {
				t.Fatalf("containers = %v; the injected sidecar must stay", list)
			}
			web := list[0].(map[string]any)
			if web["image"] != "nginx:1.16.1" || web["imagePullPolicy"] != "IfNotPresent" {
				t.Errorf("web container = %v", web)
			}
			var env []string
			for _, e := range web["env"].([]any) {
				env = append(env, e.(map[string]any)["name"].(string))
			}
			if strings.Join(env, ",") != "MODE,INJECTED" {
				t.Errorf("env = %v: DEBUG (removed from file) must go, INJECTED (not ours) must stay", env)
			}
			if v, _ := r.get("spec", "replicas"); v != int64(2) && v != float64(2) {
				t.Errorf("replicas = %v: the file says 2 and always wins for fields it sets", v)
			}
		},
		"deployment-remove-container": func(t *testing.T, r result, _ types.PatchType) {
			cs, _ := r.get("spec", "template", "spec", "containers")
			if list := cs.([]any); len(list) != 1 || list[0].(map[string]any)["name"] != "web" {
				t.Errorf("containers = %v, want only web", list)
			}
		},
		"service-ports": func(t *testing.T, r result, _ types.PatchType) {
			ps, _ := r.get("spec", "ports")
			list := ps.([]any)
			if len(list) != 1 || list[0].(map[string]any)["targetPort"] != int64(8080) && list[0].(map[string]any)["targetPort"] != float64(8080) {
				t.Errorf("ports = %v", list)
			}
			if v, _ := r.get("spec", "clusterIP"); v != "10.96.12.7" {
				t.Error("allocated clusterIP was dropped")
			}
		},
		"configmap-keys": func(t *testing.T, r result, _ types.PatchType) {
			d, _ := r.get("data")
			want := map[string]any{"player_initial_lives": "5", "added_by_hand": "true"}
			if b1, b2 := mustJSON(d), mustJSON(want); b1 != b2 {
				t.Errorf("data = %s, want %s", b1, b2)
			}
		},
		"custom-resource": func(t *testing.T, r result, pt types.PatchType) {
			if pt != types.MergePatchType {
				t.Errorf("unknown kind patched with %s, want a JSON merge patch", pt)
			}
			if _, ok := r.get("spec", "replicas"); ok {
				t.Error("replicas removed from the file is still there")
			}
			if v, _ := r.get("status", "active"); v == nil {
				t.Error("status was dropped")
			}
			if v, _ := r.get("spec", "tags"); mustJSON(v) != `["a"]` {
				t.Errorf("tags = %v (lists are replaced in merge patches)", v)
			}
		},
		"unchanged": func(t *testing.T, _ result, _ types.PatchType) {},
		"never-applied": func(t *testing.T, r result, _ types.PatchType) {
			if v, _ := r.get("data", "ui_properties_file_name"); v == nil {
				t.Error("a key apply never managed was deleted")
			}
			if v, _ := r.get("metadata", "annotations", Annotation); v == nil {
				t.Error("the last-applied annotation was not added")
			}
		},
	}
	dirs, err := os.ReadDir(testdata)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != len(checks) {
		t.Errorf("%d cases in %s, %d checks", len(dirs), testdata, len(checks))
	}
	for _, d := range dirs {
		name := d.Name()
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(testdata, name)
			local := readObj(t, filepath.Join(dir, "local.yaml"))
			live := readObj(t, filepath.Join(dir, "live.yaml"))
			if _, err := os.Stat(filepath.Join(dir, "previous.yaml")); err == nil {
				prev, err := Modified(readObj(t, filepath.Join(dir, "previous.yaml")))
				if err != nil {
					t.Fatal(err)
				}
				p := &unstructured.Unstructured{}
				if err := p.UnmarshalJSON(prev); err != nil {
					t.Fatal(err)
				}
				a := live.GetAnnotations()
				if a == nil {
					a = map[string]string{}
				}
				a[Annotation] = p.GetAnnotations()[Annotation]
				live.SetAnnotations(a)
			}
			modified, err := Modified(local)
			if err != nil {
				t.Fatal(err)
			}
			current, err := live.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			typed := typedFor(local)
			patch, pt, err := Patch(Original(live), modified, current, typed)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			json.Indent(&pretty, patch, "", "  ")
			pretty.WriteByte('\n')
			golden(t, filepath.Join(dir, "patch.golden.json"), pretty.Bytes())
			if name == "unchanged" && !IsEmpty(patch) {
				t.Errorf("unchanged object got patch %s", patch)
			}
			out, err := Apply(current, patch, pt, typed)
			if err != nil {
				t.Fatalf("applying the patch: %v", err)
			}
			y, err := yaml.JSONToYAML(out)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(dir, "result.golden.yaml"), y)
			var r result
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatal(err)
			}
			checks[name](t, r, pt)
			// After the apply, applying the same file again is a no-op.
			again, pt2, err := Patch(Original(objFrom(t, out)), modified, out, typed)
			if err != nil {
				t.Fatal(err)
			}
			if changes, err := Changes(out, again, pt2, typed); err != nil || changes {
				t.Errorf("second apply of the same file changes the object with %s (%v)", again, err)
			}
			if name != "unchanged" {
				if changes, err := Changes(current, patch, pt, typed); err != nil || !changes {
					t.Errorf("the first apply reports no change (%v)", err)
				}
			}
		})
	}
}

func objFrom(t *testing.T, data []byte) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	return u
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestModifiedMatchesKubectlShape(t *testing.T) {
	u := &unstructured.Unstructured{}
	u.UnmarshalJSON([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"default"},"data":{"k":"v"}}`))
	m, err := Modified(u)
	if err != nil {
		t.Fatal(err)
	}
	got := objFrom(t, m).GetAnnotations()[Annotation]
	want := `{"apiVersion":"v1","data":{"k":"v"},"kind":"ConfigMap","metadata":{"annotations":{},"name":"a","namespace":"default"}}` + "\n"
	if got != want {
		t.Errorf("annotation =\n%q\nwant (what kubectl writes)\n%q", got, want)
	}
	if u.GetAnnotations() != nil {
		t.Error("Modified changed its argument")
	}
}

func TestPatchRefusesRename(t *testing.T) {
	cm := func(name string) []byte {
		return []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `"}}`)
	}
	_, _, err := Patch(cm("a"), cm("b"), cm("a"), typedFor(objFrom(t, cm("a"))))
	if err == nil || !strings.Contains(err.Error(), "cannot change") {
		t.Errorf("renaming patch: %v", err)
	}
}

package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minik8s/minik8s/api/scheme"
)

const multi = `# two objects
apiVersion: v1
kind: ConfigMap
metadata:
  name: game-config
data:
  lives: "3"
---
---
# only a comment
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.14.2
        imagePullPolice: Always
`

func TestParseMultiDocument(t *testing.T) {
	docs, err := Parse("multi.yaml", []byte(multi))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d objects, want 2", len(docs))
	}
	if d := docs[0]; d.Object.GetKind() != "ConfigMap" || d.Index != 1 || d.Line != 1 {
		t.Errorf("first = %s index %d line %d", d.Object.GetKind(), d.Index, d.Line)
	}
	if d := docs[1]; d.Object.GetKind() != "Deployment" || d.Index != 4 || d.Line != 12 {
		t.Errorf("second = %s index %d line %d", d.Object.GetKind(), d.Index, d.Line)
	}
	if got := docs[1].String(); got != "multi.yaml (document 4)" {
		t.Errorf("String() = %q", got)
	}
}

func TestCheckNamesUnknownFieldAndLine(t *testing.T) {
	docs, err := Parse("multi.yaml", []byte(multi))
	if err != nil {
		t.Fatal(err)
	}
	if obj, err := docs[0].Check(scheme.StrictCodecs.UniversalDeserializer()); err != nil || obj == nil {
		t.Fatalf("ConfigMap check: %v, %v", obj, err)
	}
	_, err = docs[1].Check(scheme.StrictCodecs.UniversalDeserializer())
	var me *Error
	if !errors.As(err, &me) {
		t.Fatalf("want a manifest Error, got %v", err)
	}
	want := `multi.yaml:27: spec.template.spec.containers[0].imagePullPolice: unknown field in Deployment web (document 4)`
	if err.Error() != want {
		t.Errorf("error =\n  %s\nwant\n  %s", err, want)
	}
}

func TestCheckTypeError(t *testing.T) {
	src := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: \"two\"\n"
	docs, err := Parse("d.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = docs[0].Check(scheme.StrictCodecs.UniversalDeserializer())
	if err == nil || err.Error() != "d.yaml:6: spec.replicas: expected an integer, found string (document 1)" {
		t.Errorf("error = %v", err)
	}
}

func TestCheckUnknownKindIsLeftToServer(t *testing.T) {
	docs, err := Parse("crd.yaml", []byte("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {anything: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := docs[0].Check(scheme.StrictCodecs.UniversalDeserializer())
	if obj != nil || err != nil {
		t.Errorf("Check of unknown kind = %v, %v; want nil, nil", obj, err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"syntax in second doc", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n labels: x\n",
			"bad.yaml:8: invalid YAML: yaml: line 8: did not find expected key (document 2)"},
		{"duplicate key", "apiVersion: v1\nkind: ConfigMap\nkind: Secret\n",
			`bad.yaml:3: invalid YAML: yaml: unmarshal errors:   line 3: key "kind" already set in map (document 1)`},
		{"no kind", "apiVersion: v1\nmetadata: {name: a}\n", "bad.yaml:1: kind not set (document 1)"},
		{"scalar", "just text\n", "bad.yaml:1: a document must be an object with apiVersion and kind, not a string (document 1)"},
		{"json syntax", "{\"apiVersion\": \"v1\",\n \"kind\": \"ConfigMap\",\n \"metadata\": {\"name\": \"a\"}}\n{\"apiVersion\": \"v1\",\n \"kind\" \"x\"}\n",
			"bad.yaml:5: invalid JSON: invalid character '\"' after object key (document 2)"},
	}
	for _, c := range cases {
		_, err := Parse("bad.yaml", []byte(c.src))
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: error =\n  %v\nwant\n  %s", c.name, err, c.want)
		}
	}
}

func TestJSONStreamAndList(t *testing.T) {
	src := `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}},
  {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"}}
]}`
	docs, err := Parse("s.json", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range docs {
		names = append(names, d.Object.GetKind()+"/"+d.Object.GetName()+"@"+d.Pos())
	}
	if got := strings.Join(names, " "); got != "ConfigMap/a@s.json:1 ConfigMap/b@s.json:2 Secret/c@s.json:2" {
		t.Errorf("objects = %s", got)
	}
}

func TestReadDirectoriesAndStdin(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cm := func(n string) string { return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + n + "}\n" }
	write("b.yaml", cm("b"))
	write("a.yml", cm("a"))
	write("notes.txt", "not a manifest")
	write("sub/c.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`)

	names := func(docs []*Doc) string {
		var s []string
		for _, d := range docs {
			s = append(s, d.Object.GetName())
		}
		return strings.Join(s, ",")
	}
	docs, err := Read([]string{dir}, false, nil)
	if err != nil || names(docs) != "a,b" {
		t.Errorf("non-recursive = %q, %v", names(docs), err)
	}
	docs, err = Read([]string{dir}, true, nil)
	if err != nil || names(docs) != "a,b,c" {
		t.Errorf("recursive = %q, %v", names(docs), err)
	}
	docs, err = Read([]string{"-"}, false, strings.NewReader(cm("s")))
	if err != nil || names(docs) != "s" || docs[0].Source != "STDIN" {
		t.Errorf("stdin = %q, %v", names(docs), err)
	}
	if _, err := Read([]string{filepath.Join(dir, "nope.yaml")}, false, nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file error = %v", err)
	}
	if _, err := Read(nil, false, nil); err == nil {
		t.Error("Read with no paths succeeded")
	}
}

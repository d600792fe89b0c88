package jsonpath

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const podList = `{
  "kind": "List",
  "items": [
    {"metadata": {"name": "web-1", "labels": {"app": "web", "kubernetes.io/os": "linux"}},
     "spec": {"containers": [{"name": "web", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]},
                             {"name": "side", "image": "busybox:1.35"}]},
     "status": {"phase": "Running", "podIP": "10.0.0.5", "restarts": 3}},
    {"metadata": {"name": "db-0", "labels": {"app": "db"}},
     "spec": {"containers": [{"name": "db", "image": "postgres:16"}]},
     "status": {"phase": "Pending", "restarts": 0}}
  ]
}`

func decode(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestExecute(t *testing.T) {
	data := decode(t, podList)
	cases := []struct{ tmpl, want string }{
		{`{.kind}`, `List`},
		{`{$.kind}`, `List`},
		{`kind={.kind}!`, `kind=List!`},
		{`{.items[*].metadata.name}`, `web-1 db-0`},
		{`{.items[0].metadata.name}`, `web-1`},
		{`{.items[-1].metadata.name}`, `db-0`},
		{`{.items[0:1].metadata.name}`, `web-1`},
		{`{.items[0,1].status.phase}`, `Running Pending`},
		{`{.items[0].spec.containers[*].image}`, `nginx:1.14.2 busybox:1.35`},
		{`{.items[0].metadata.labels['kubernetes.io/os']}`, `linux`},
		{`{.items[0].metadata['name']}`, `web-1`},
		{`{.items[0].status.restarts}`, `3`},
		{`{.items[1].status.restarts}`, `0`},
		{`{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}`, "web-1\tRunning\ndb-0\tPending\n"},
		{`{range .items}[{.metadata.name}]{end}`, `[web-1][db-0]`},
		{`{range .items[*]}{range .spec.containers[*]}{.name},{end};{end}`, `web,side,;db,;`},
		{`{.items[?(@.status.phase=="Running")].metadata.name}`, `web-1`},
		{`{.items[?(@.status.restarts > 1)].metadata.name}`, `web-1`},
		{`{.items[?(@.status.podIP)].metadata.name}`, `web-1`},
		{`{.items[?(@.metadata.labels.app != 'web')].metadata.name}`, `db-0`},
		{`{..image}`, `nginx:1.14.2 busybox:1.35 postgres:16`},
		{`{.items[1].metadata.labels}`, `{"app":"db"}`},
		{`{.items[0].spec.containers[0].ports}`, `[{"containerPort":80}]`},
		{`{.items[0].nope}`, ``},
		{`{.items[5].metadata.name}`, ``},
		{`{'literal'}`, `literal`},
		{`{.items[0].metadata.*}`, `{"app":"web","kubernetes.io/os":"linux"} web-1`},
	}
	for _, c := range cases {
		tmpl, err := Parse(c.tmpl)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.tmpl, err)
			continue
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, data); err != nil {
			t.Errorf("Execute(%q): %v", c.tmpl, err)
			continue
		}
		if b.String() != c.want {
			t.Errorf("Execute(%q) = %q, want %q", c.tmpl, b.String(), c.want)
		}
	}
}

func TestMissingKeysStrict(t *testing.T) {
	tmpl := MustParse(`{.items[0].nope}`)
	tmpl.AllowMissingKeys = false
	err := tmpl.Execute(&bytes.Buffer{}, decode(t, podList))
	if err == nil || !strings.Contains(err.Error(), "nope is not found") {
		t.Fatalf("want a not-found error naming the key, got %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{
		`{.items[*}`, `{range .items[*]}{.x}`, `{end}`, `{.items[?(@.a ~ 1)]}`, `{.a.}`, `{}`, `{.a[x]}`, `{.a[1:2:0]}`,
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", bad)
		}
	}
}

func TestResultsAndRelaxed(t *testing.T) {
	for in, want := range map[string]string{
		"metadata.name": "{.metadata.name}", ".metadata.name": "{.metadata.name}",
		"{.metadata.name}": "{.metadata.name}", "{metadata.name}": "{.metadata.name}",
	} {
		got, err := Relaxed(in)
		if err != nil || got != want {
			t.Errorf("Relaxed(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	vals, err := MustParse(`{.items[*].metadata.name}`).Results(decode(t, podList))
	if err != nil || len(vals) != 2 || vals[0] != "web-1" || vals[1] != "db-0" {
		t.Fatalf("Results = %v, %v", vals, err)
	}
	if _, err := MustParse(`{.a}{.b}`).Results(decode(t, podList)); err == nil {
		t.Fatal("Results with two paths should fail")
	}
}

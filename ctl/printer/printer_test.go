package printer

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var update = flag.Bool("update", false, "rewrite the golden files in ctl/testdata/printer")

const testdata = "../testdata/printer"

// golden compares got with testdata/printer/<name>.golden.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(testdata, name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ctl/printer -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s: output differs from %s\n--- got ---\n%s--- want ---\n%s", name, path, got, want)
	}
}

func readTable(t *testing.T, file string) *metav1.Table {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdata, file))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := DecodeTable(data)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func readObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdata, "pods.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw []map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	out := make([]*unstructured.Unstructured, len(raw))
	for i, m := range raw {
		out[i] = &unstructured.Unstructured{Object: m}
	}
	return out
}

func TestTableGolden(t *testing.T) {
	cases := []struct {
		name, file string
		opts       TableOptions
	}{
		{"table-default", "deployments-table.json", TableOptions{}},
		{"table-wide", "deployments-table.json", TableOptions{Wide: true}},
		{"table-all-namespaces-labels", "deployments-table.json", TableOptions{WithNamespace: true, ShowLabels: true}},
		{"table-kind-prefix", "deployments-table.json", TableOptions{Kind: "deployment.apps"}},
		{"table-no-headers-label-columns", "deployments-table.json", TableOptions{NoHeaders: true, LabelColumns: []string{"tier", "app"}}},
		{"table-events", "events-table.json", TableOptions{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := PrintTable(&b, readTable(t, c.file), c.opts); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, b.String())
		})
	}
}

func TestTableWriterKeepsWidthsAcrossWatchEvents(t *testing.T) {
	first := readTable(t, "deployments-table.json")
	first.Rows = first.Rows[:1]
	later := readTable(t, "deployments-table.json")
	later.ColumnDefinitions = nil
	later.Rows = later.Rows[1:]
	var b bytes.Buffer
	tw := NewTableWriter(&b, TableOptions{})
	if err := tw.Write(first); err != nil {
		t.Fatal(err)
	}
	if err := tw.Write(later); err != nil {
		t.Fatal(err)
	}
	golden(t, "table-watch", b.String())

	// Rows before any column definitions cannot be shown.
	if err := NewTableWriter(&b, TableOptions{}).Write(later); err == nil {
		t.Error("rows without definitions were accepted by a fresh writer")
	}
}

func TestObjectGolden(t *testing.T) {
	objs := readObjects(t)
	cases := []struct {
		name, output string
		objs         []*unstructured.Unstructured
		single       bool
	}{
		{"yaml-single", "yaml", objs[:1], true},
		{"yaml-list", "yaml", objs, false},
		{"json-single", "json", objs[2:], true},
		{"json-list", "json", objs[:2], false},
		{"name", "name", objs, false},
		{"jsonpath-names", `jsonpath={.items[*].metadata.name}`, objs, false},
		{"jsonpath-range", `jsonpath={range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}`, objs[:2], false},
		{"jsonpath-single", `jsonpath={.spec.containers[0].image}`, objs[:1], true},
		{"custom-columns", "custom-columns=NAME:.metadata.name,IMAGES:.spec.containers[*].image,NODE:spec.nodeName,PORT:{.spec.containers[0].ports[0].containerPort}", objs[:2], false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := New(c.output, false)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := p.Print(&b, c.objs, c.single); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, b.String())
		})
	}
}

func TestCustomColumnsNoHeadersAndFile(t *testing.T) {
	objs := readObjects(t)[:2]
	p, err := New("custom-columns=NAME:.metadata.name", true)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.Print(&b, objs, false); err != nil {
		t.Fatal(err)
	}
	if b.String() != "web-1\ndb-0\n" {
		t.Errorf("no-headers custom columns = %q", b.String())
	}
	file := filepath.Join(t.TempDir(), "cols")
	os.WriteFile(file, []byte("NAME  PHASE\n.metadata.name .status.phase\n"), 0o644)
	p, err = New("custom-columns-file="+file, false)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := p.Print(&b, objs, false); err != nil {
		t.Fatal(err)
	}
	if want := "NAME    PHASE\nweb-1   Running\ndb-0    Pending\n"; b.String() != want {
		t.Errorf("custom-columns-file output = %q, want %q", b.String(), want)
	}
}

func TestBadFormats(t *testing.T) {
	for _, o := range []string{"xml", "jsonpath=", "jsonpath={.a", "custom-columns=", "custom-columns=NAME", "go-template={{.x}}"} {
		if _, err := New(o, false); err == nil {
			t.Errorf("New(%q) succeeded, want an error", o)
		} else if o == "xml" && !strings.Contains(err.Error(), "allowed formats are") {
			t.Errorf("error for -o xml does not list the formats: %v", err)
		}
	}
}

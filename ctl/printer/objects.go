package printer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/minik8s/minik8s/ctl/jsonpath"
)

// ObjectPrinter prints whole objects (everything but tables).
type ObjectPrinter interface {
	// Print prints objs. single means the user named exactly one object,
	// which is then printed alone rather than inside a List.
	Print(w io.Writer, objs []*unstructured.Unstructured, single bool) error
}

// Formats lists the -o values ctl understands, for help and errors.
const Formats = "yaml, json, name, wide, jsonpath=TEMPLATE, jsonpath-file=FILE, custom-columns=SPEC, custom-columns-file=FILE"

// IsTable reports whether an -o value means the server's table.
func IsTable(output string) bool { return output == "" || output == "wide" }

// New returns the printer for an -o value other than "" and "wide".
func New(output string, noHeaders bool) (ObjectPrinter, error) {
	name, arg, _ := strings.Cut(output, "=")
	switch name {
	case "yaml":
		return yamlPrinter{}, nil
	case "json":
		return jsonPrinter{}, nil
	case "name":
		return NamePrinter{}, nil
	case "jsonpath", "jsonpath-file":
		if name == "jsonpath-file" {
			data, err := os.ReadFile(arg)
			if err != nil {
				return nil, fmt.Errorf("-o jsonpath-file: %w", err)
			}
			arg = string(data)
		}
		if arg == "" {
			return nil, fmt.Errorf("-o jsonpath needs a template, e.g. -o jsonpath='{.metadata.name}'")
		}
		t, err := jsonpath.Parse(arg)
		if err != nil {
			return nil, err
		}
		return &jsonpathPrinter{t: t}, nil
	case "custom-columns", "custom-columns-file":
		spec := arg
		if name == "custom-columns-file" {
			return customColumnsFromFile(arg, noHeaders)
		}
		return NewCustomColumns(spec, noHeaders)
	}
	return nil, fmt.Errorf("unable to match a printer for output format %q, allowed formats are: %s", output, Formats)
}

// ToGeneric converts objects to plain JSON values (numbers kept exact)
// for printing and jsonpath.
func ToGeneric(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var out any
	err = d.Decode(&out)
	return out, err
}

// listOf wraps objects in a v1 List as kubectl prints several objects.
func listOf(objs []*unstructured.Unstructured) map[string]any {
	items := make([]any, len(objs))
	for i, o := range objs {
		items[i] = o.Object
	}
	return map[string]any{"apiVersion": "v1", "kind": "List", "items": items,
		"metadata": map[string]any{"resourceVersion": ""}}
}

func subject(objs []*unstructured.Unstructured, single bool) any {
	if single && len(objs) == 1 {
		return objs[0].Object
	}
	return listOf(objs)
}

type yamlPrinter struct{}

func (yamlPrinter) Print(w io.Writer, objs []*unstructured.Unstructured, single bool) error {
	data, err := yaml.Marshal(subject(objs, single))
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

type jsonPrinter struct{}

func (jsonPrinter) Print(w io.Writer, objs []*unstructured.Unstructured, single bool) error {
	data, err := json.MarshalIndent(subject(objs, single), "", "    ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// NamePrinter prints resource/name, e.g. deployment.apps/web.
type NamePrinter struct{}

// Print prints one line per object.
func (NamePrinter) Print(w io.Writer, objs []*unstructured.Unstructured, _ bool) error {
	var b bytes.Buffer
	for _, o := range objs {
		b.WriteString(ResourceName(o.GroupVersionKind(), o.GetName()))
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// KindString is how kubectl names a kind in messages: lower-case kind plus
// group, "deployment.apps", "service".
func KindString(gvk schema.GroupVersionKind) string {
	k := strings.ToLower(gvk.Kind)
	if gvk.Group != "" {
		k += "." + gvk.Group
	}
	return k
}

// ResourceName is "deployment.apps/web".
func ResourceName(gvk schema.GroupVersionKind, name string) string {
	return KindString(gvk) + "/" + name
}

type jsonpathPrinter struct{ t *jsonpath.Template }

func (p *jsonpathPrinter) Print(w io.Writer, objs []*unstructured.Unstructured, single bool) error {
	data, err := ToGeneric(subject(objs, single))
	if err != nil {
		return err
	}
	return p.t.Execute(w, data)
}

// CustomColumns prints one row per object with user-chosen columns.
type CustomColumns struct {
	headers   []string
	templates []*jsonpath.Template
	noHeaders bool
}

// NewCustomColumns parses "NAME:.metadata.name,IMAGE:.spec.containers[*].image".
func NewCustomColumns(spec string, noHeaders bool) (*CustomColumns, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("custom-columns needs a spec, e.g. -o custom-columns=NAME:.metadata.name")
	}
	cc := &CustomColumns{noHeaders: noHeaders}
	for _, part := range strings.Split(spec, ",") {
		h, expr, ok := strings.Cut(part, ":")
		if !ok || h == "" {
			return nil, fmt.Errorf("custom-columns: %q is not HEADER:JSONPATH", part)
		}
		rel, err := jsonpath.Relaxed(expr)
		if err != nil {
			return nil, fmt.Errorf("custom-columns: column %s: %w", h, err)
		}
		t, err := jsonpath.Parse(rel)
		if err != nil {
			return nil, fmt.Errorf("custom-columns: column %s: %w", h, err)
		}
		cc.headers = append(cc.headers, h)
		cc.templates = append(cc.templates, t)
	}
	return cc, nil
}

// customColumnsFromFile reads a file whose first line holds the headers
// and whose second line holds the matching expressions.
func customColumnsFromFile(path string, noHeaders bool) (*CustomColumns, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-o custom-columns-file: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		return nil, fmt.Errorf("-o custom-columns-file %s: want 2 lines (headers, then expressions), found %d", path, len(lines))
	}
	hs, es := strings.Fields(lines[0]), strings.Fields(lines[1])
	if len(hs) != len(es) {
		return nil, fmt.Errorf("-o custom-columns-file %s: %d headers but %d expressions", path, len(hs), len(es))
	}
	parts := make([]string, len(hs))
	for i := range hs {
		parts[i] = hs[i] + ":" + es[i]
	}
	return NewCustomColumns(strings.Join(parts, ","), noHeaders)
}

// Print prints the header (unless disabled) and one row per object.
func (cc *CustomColumns) Print(w io.Writer, objs []*unstructured.Unstructured, _ bool) error {
	t := &tableText{}
	if !cc.noHeaders {
		t.add(cc.headers)
	}
	for _, o := range objs {
		data, err := ToGeneric(o.Object)
		if err != nil {
			return err
		}
		row := make([]string, len(cc.templates))
		for i, tmpl := range cc.templates {
			vals, err := tmpl.Results(data)
			if err != nil {
				return err
			}
			strs := make([]string, 0, len(vals))
			for _, v := range vals {
				s, err := jsonpath.Format(v)
				if err != nil {
					return err
				}
				strs = append(strs, s)
			}
			row[i] = strings.Join(strs, ",")
			if len(vals) == 0 {
				row[i] = "<none>"
			}
		}
		t.add(row)
	}
	return t.write(w)
}

// tableText aligns rows of plain strings.
type tableText struct{ rows [][]string }

func (t *tableText) add(r []string) { t.rows = append(t.rows, r) }

func (t *tableText) write(w io.Writer) error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b bytes.Buffer
	for _, r := range t.rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))+padding))
			}
		}
		trimLine(&b)
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Text prints rows of strings aligned in columns like the tables do
// (api-resources, rollout history).
func Text(w io.Writer, rows [][]string) error {
	return (&tableText{rows: rows}).write(w)
}

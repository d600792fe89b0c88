// Package printer owns how ctl shows objects: server-side Tables (the
// columns `ctl get` prints, wide columns with -o wide), and the object
// formats -o yaml|json|name|jsonpath=...|custom-columns=.... It only formats;
// it never talks to the API server.
package printer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TableOptions shape a printed Table.
type TableOptions struct {
	// Wide shows the priority>0 columns (-o wide).
	Wide bool
	// NoHeaders leaves out the header line.
	NoHeaders bool
	// WithNamespace adds a NAMESPACE column first (-A).
	WithNamespace bool
	// ShowLabels adds a LABELS column last (--show-labels).
	ShowLabels bool
	// LabelColumns adds one column per label key (-L key).
	LabelColumns []string
	// Kind, when set, prefixes names as kubectl does when several
	// resource types are printed: "deployment.apps/web".
	Kind string
}

// padding is the space between columns (kubectl's tabwriter uses 3).
const padding = 3

// TableWriter prints Tables as aligned text. It remembers column widths,
// so rows printed later (watch events) line up with the first ones.
type TableWriter struct {
	out    io.Writer
	opts   TableOptions
	widths []int
	header bool
	// cols are the indexes of the columns shown; nameCol the name column.
	cols    []int
	nameCol int
}

// NewTableWriter returns a writer printing to out.
func NewTableWriter(out io.Writer, opts TableOptions) *TableWriter {
	return &TableWriter{out: out, opts: opts}
}

// PrintTable prints one Table with its header.
func PrintTable(out io.Writer, t *metav1.Table, opts TableOptions) error {
	return NewTableWriter(out, opts).Write(t)
}

// Write prints t's rows; the header is printed with the first rows only
// (from the first table carrying column definitions). A table without rows
// prints nothing.
func (tw *TableWriter) Write(t *metav1.Table) error {
	if len(t.Rows) == 0 {
		// Nothing to show; keep the header for the first real row (a
		// watch that starts empty).
		return nil
	}
	lines, err := tw.cells(t)
	if err != nil {
		return err
	}
	for _, l := range lines {
		for i, c := range l {
			if i >= len(tw.widths) {
				tw.widths = append(tw.widths, 0)
			}
			tw.widths[i] = max(tw.widths[i], utf8.RuneCountInString(c))
		}
	}
	var b bytes.Buffer
	for _, l := range lines {
		for i, c := range l {
			b.WriteString(c)
			if i < len(l)-1 {
				b.WriteString(strings.Repeat(" ", tw.widths[i]-utf8.RuneCountInString(c)+padding))
			}
		}
		trimLine(&b)
		b.WriteByte('\n')
	}
	_, err = tw.out.Write(b.Bytes())
	return err
}

func (tw *TableWriter) cells(t *metav1.Table) ([][]string, error) {
	var lines [][]string
	if len(t.ColumnDefinitions) > 0 && !tw.header {
		// The first table fixes the shape; later ones (watch events) may
		// come without definitions and reuse it.
		tw.header = true
		tw.cols, tw.nameCol = nil, -1
		for i, c := range t.ColumnDefinitions {
			if c.Priority == 0 || tw.opts.Wide {
				tw.cols = append(tw.cols, i)
			}
			if tw.nameCol < 0 && (c.Format == "name" || strings.EqualFold(c.Name, "name")) {
				tw.nameCol = i
			}
		}
		if !tw.opts.NoHeaders {
			var h []string
			if tw.opts.WithNamespace {
				h = append(h, "NAMESPACE")
			}
			for _, i := range tw.cols {
				h = append(h, strings.ToUpper(t.ColumnDefinitions[i].Name))
			}
			for _, k := range tw.opts.LabelColumns {
				h = append(h, labelColumnHeader(k))
			}
			if tw.opts.ShowLabels {
				h = append(h, "LABELS")
			}
			lines = append(lines, h)
		}
	}
	if !tw.header && len(t.Rows) > 0 {
		return nil, fmt.Errorf("table rows arrived before their column definitions")
	}
	for _, row := range t.Rows {
		m, err := RowMetadata(row)
		if err != nil {
			return nil, err
		}
		var l []string
		if tw.opts.WithNamespace {
			l = append(l, m.Namespace)
		}
		for _, i := range tw.cols {
			var cell any
			if i < len(row.Cells) {
				cell = row.Cells[i]
			}
			s := FormatCell(cell)
			if i == tw.nameCol && tw.opts.Kind != "" {
				s = tw.opts.Kind + "/" + s
			}
			l = append(l, s)
		}
		for _, k := range tw.opts.LabelColumns {
			l = append(l, m.Labels[k])
		}
		if tw.opts.ShowLabels {
			l = append(l, LabelsString(m.Labels))
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// labelColumnHeader is the header of a -L column: the key's last path
// segment, upper-cased, as kubectl shows it.
func labelColumnHeader(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		key = key[i+1:]
	}
	return strings.ToUpper(key)
}

// RowMetadata decodes the object metadata the server attaches to a row
// (includeObject=Metadata gives a PartialObjectMetadata; =Object the
// whole object; both carry metadata).
func RowMetadata(row metav1.TableRow) (metav1.ObjectMeta, error) {
	var m struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	raw := row.Object.Raw
	if len(raw) == 0 && row.Object.Object != nil {
		var err error
		if raw, err = json.Marshal(row.Object.Object); err != nil {
			return metav1.ObjectMeta{}, err
		}
	}
	if len(raw) == 0 {
		return metav1.ObjectMeta{}, nil
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return metav1.ObjectMeta{}, fmt.Errorf("decoding table row object: %w", err)
	}
	return m.Metadata, nil
}

// FormatCell renders one table cell: numbers without exponents, nil as
// <none>, control characters flattened so rows stay on one line.
func FormatCell(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		return "<none>"
	case string:
		s = v
	case json.Number:
		s = v.String()
	case float64:
		if v == float64(int64(v)) {
			s = fmt.Sprintf("%d", int64(v))
		} else {
			s = fmt.Sprint(v)
		}
	case []any, map[string]any:
		data, _ := json.Marshal(v)
		s = string(data)
	default:
		s = fmt.Sprint(v)
	}
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// LabelsString is "k=v,k2=v2" sorted by key, or <none>.
func LabelsString(labels map[string]string) string {
	if len(labels) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ",")
}

// DecodeTable decodes a meta.k8s.io/v1 Table keeping numbers exact.
func DecodeTable(data []byte) (*metav1.Table, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	t := &metav1.Table{}
	if err := d.Decode(t); err != nil {
		return nil, fmt.Errorf("decoding Table: %w", err)
	}
	if t.Kind != "Table" {
		return nil, fmt.Errorf("server answered with %q, not a Table", t.Kind)
	}
	return t, nil
}

// trimLine drops the padding left at the end of a line whose last cells
// are empty.
func trimLine(b *bytes.Buffer) {
	data := b.Bytes()
	n := len(data)
	for n > 0 && data[n-1] == ' ' {
		n--
	}
	b.Truncate(n)
}

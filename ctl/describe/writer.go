// Package describe renders the human-readable reports of `ctl describe`:
// an object's identity, its spec and status in words, its conditions,
// containers, endpoints or replica sets, and the events about it, laid out
// like kubectl's. It only formats what the caller fetched (Extras); it
// never talks to the API server.
package describe

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// out collects indented "Key:\tvalue" lines and aligns them with a
// tabwriter, as kubectl's describe output is aligned.
type out struct {
	buf bytes.Buffer
	now time.Time
}

// line writes one line at an indentation level (two spaces each).
func (o *out) line(level int, format string, args ...any) {
	o.buf.WriteString(strings.Repeat("  ", level))
	fmt.Fprintf(&o.buf, format, args...)
	o.buf.WriteByte('\n')
}

func (o *out) flush(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if _, err := tw.Write(o.buf.Bytes()); err != nil {
		return err
	}
	return tw.Flush()
}

// skippedAnnotations are not shown (kubectl hides the apply bookkeeping).
var skippedAnnotations = map[string]bool{"kubectl.kubernetes.io/last-applied-configuration": true}

// mapLines writes "Labels:\tk=v" with further pairs on following lines.
func (o *out) mapLines(level int, title string, m map[string]string, sep string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if title == "Annotations" && skippedAnnotations[k] {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		o.line(level, "%s:\t<none>", title)
		return
	}
	for i, k := range keys {
		v := m[k]
		if i == 0 {
			o.line(level, "%s:\t%s%s%s", title, k, sep, v)
		} else {
			o.line(level, "\t%s%s%s", k, sep, v)
		}
	}
}

// meta writes the identity block every describer starts with.
func (o *out) meta(m metav1.ObjectMeta, namespaced bool) {
	o.line(0, "Name:\t%s", m.Name)
	if namespaced {
		o.line(0, "Namespace:\t%s", m.Namespace)
	}
}

func (o *out) labelsAndAnnotations(level int, m metav1.ObjectMeta) {
	o.mapLines(level, "Labels", m.Labels, "=")
	o.mapLines(level, "Annotations", m.Annotations, ": ")
}

func (o *out) deletion(m metav1.ObjectMeta) {
	if m.DeletionTimestamp != nil {
		o.line(0, "Terminating:\tsince %s (%s ago)", stamp(*m.DeletionTimestamp), o.age(*m.DeletionTimestamp))
		if len(m.Finalizers) > 0 {
			o.line(0, "Finalizers:\t%s", strings.Join(m.Finalizers, ", "))
		}
	}
}

func (o *out) controlledBy(m metav1.ObjectMeta) {
	for _, r := range m.OwnerReferences {
		if r.Controller != nil && *r.Controller {
			o.line(0, "Controlled By:\t%s/%s", r.Kind, r.Name)
		}
	}
}

// stamp is kubectl's time format (RFC 1123 with numeric zone).
func stamp(t metav1.Time) string {
	if t.IsZero() {
		return "<unset>"
	}
	return t.Time.Format(time.RFC1123Z)
}

func (o *out) age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(o.now.Sub(t.Time))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func joinOrNone(ss []string, sep string) string {
	if len(ss) == 0 {
		return "<none>"
	}
	return strings.Join(ss, sep)
}

// table writes a header, a dashed underline and rows, tab-separated, at
// level (kubectl's Conditions and Events tables).
func (o *out) table(level int, header []string, rows [][]string) {
	o.line(level, "%s", strings.Join(header, "\t"))
	under := make([]string, len(header))
	for i, h := range header {
		under[i] = strings.Repeat("-", len(h))
	}
	o.line(level, "%s", strings.Join(under, "\t"))
	for _, r := range rows {
		o.line(level, "%s", strings.Join(r, "\t"))
	}
}

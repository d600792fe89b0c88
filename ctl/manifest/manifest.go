// Package manifest reads the objects ctl is given with -f: files,
// directories (optionally recursive), or "-" for stdin, each holding one or
// more YAML documents or a stream of JSON objects (a v1 List is expanded).
// Every object remembers where it came from (file, document number, first
// line) so errors can say which file, which document and which line or
// field. Known kinds are checked strictly against the Go types of
// api/scheme, so a misspelt field is reported before the server sees it.
// It never talks to the API server.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Doc is one object read from a manifest.
type Doc struct {
	// Source is the file path, or "STDIN".
	Source string
	// Index is the 1-based document number within the source.
	Index int
	// Line is the 1-based line where the document starts.
	Line int
	// Object is the object as written (no defaults).
	Object *unstructured.Unstructured
	// raw is the document's text, for mapping field paths to lines.
	raw []byte
}

// String names the document for messages: "web.yaml (document 2)".
func (d *Doc) String() string {
	return fmt.Sprintf("%s (document %d)", d.Source, d.Index)
}

// Pos is "web.yaml:14", the document's first line, for messages.
func (d *Doc) Pos() string { return fmt.Sprintf("%s:%d", d.Source, d.Line) }

// Error is a problem in a manifest, located as precisely as known.
type Error struct {
	Source string
	Line   int // 0 = unknown
	Index  int // document number, 0 = unknown
	Field  string
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	if e.Index > 0 {
		fmt.Fprintf(&b, " (document %d)", e.Index)
	}
	return b.String()
}

// Extensions are the file name endings read from directories.
var Extensions = []string{".yaml", ".yml", ".json"}

// Read reads every path ("-" = in). Directories contribute their
// .yaml/.yml/.json files in name order, and their subdirectories' too when
// recursive is set. Files named explicitly are read whatever their name.
func Read(paths []string, recursive bool, in io.Reader) ([]*Doc, error) {
	if len(paths) == 0 {
		return nil, errors.New("must specify -f (a file, directory or - for stdin)")
	}
	var docs []*Doc
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(in)
			if err != nil {
				return nil, fmt.Errorf("reading stdin: %w", err)
			}
			d, err := Parse("STDIN", data)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
			continue
		}
		if strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") {
			return nil, fmt.Errorf("%s: reading manifests from URLs is not supported; download the file and pass its path", p)
		}
		files, err := expand(p, recursive)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			d, err := Parse(f, data)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
		}
	}
	return docs, nil
}

func expand(p string, recursive bool) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("the path %q does not exist", p)
		}
		return nil, err
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != p && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		for _, ext := range Extensions {
			if strings.HasSuffix(path, ext) {
				files = append(files, path)
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no %s files found (use -R for subdirectories)", p, strings.Join(Extensions, ", "))
	}
	return files, nil
}

// Parse splits data into documents and decodes each into an object.
// Empty documents (only comments or whitespace) are skipped.
func Parse(source string, data []byte) ([]*Doc, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return parseJSONStream(source, data)
	}
	var docs []*Doc
	for i, part := range splitYAML(data) {
		d, err := parseDoc(source, i+1, part.line, part.text)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d...)
	}
	return docs, nil
}

type yamlPart struct {
	line int
	text []byte
}

// splitYAML cuts a multi-document YAML stream at "---" lines.
func splitYAML(data []byte) []yamlPart {
	var parts []yamlPart
	lines := bytes.SplitAfter(data, []byte("\n"))
	start, cur := 1, []byte{}
	for i, l := range lines {
		t := bytes.TrimRight(l, " \t\r\n")
		if bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) || bytes.HasPrefix(t, []byte("---\t")) {
			parts = append(parts, yamlPart{line: start, text: cur})
			start, cur = i+2, []byte{}
			continue
		}
		cur = append(cur, l...)
	}
	parts = append(parts, yamlPart{line: start, text: cur})
	// A leading "---" makes an empty first part; drop it without
	// renumbering the documents users count.
	if len(parts) > 1 && isBlank(parts[0].text) {
		parts = parts[1:]
	}
	return parts
}

func isBlank(b []byte) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return false
		}
	}
	return true
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

func parseDoc(source string, index, line int, text []byte) ([]*Doc, error) {
	if isBlank(text) {
		return nil, nil
	}
	j, err := yaml.YAMLToJSONStrict(text)
	if err != nil {
		msg := err.Error()
		errLine := 0
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			errLine = n + line - 1
			msg = yamlLineRE.ReplaceAllStringFunc(msg, func(s string) string {
				n, _ := strconv.Atoi(yamlLineRE.FindStringSubmatch(s)[1])
				return "line " + strconv.Itoa(n+line-1)
			})
		}
		msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
		msg = strings.ReplaceAll(msg, "\n", " ")
		return nil, &Error{Source: source, Line: errLine, Index: index, Msg: "invalid YAML: " + msg}
	}
	return objects(source, index, line, text, j)
}

func parseJSONStream(source string, data []byte) ([]*Doc, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var docs []*Doc
	for index := 1; ; index++ {
		// Skip to the next value to learn the line it starts on.
		var raw json.RawMessage
		startOff := dec.InputOffset()
		err := dec.Decode(&raw)
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			off := dec.InputOffset()
			var se *json.SyntaxError
			if errors.As(err, &se) {
				off = se.Offset
			}
			return nil, &Error{Source: source, Line: lineAt(data, int(off)), Index: index, Msg: "invalid JSON: " + err.Error()}
		}
		rawStart := startOff + int64(len(data[startOff:])-len(bytes.TrimLeft(data[startOff:], " \t\r\n")))
		line := lineAt(data, int(rawStart))
		if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
			return nil, &Error{Source: source, Line: line, Index: index, Msg: "a JSON array is not an object; use a v1 List ({\"kind\":\"List\",\"items\":[...]})"}
		}
		d, err := objects(source, index, line, raw, raw)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d...)
	}
}

func lineAt(data []byte, off int) int {
	off = min(max(off, 0), len(data))
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// objects turns one document's JSON into objects (expanding a List).
func objects(source string, index, line int, text, j []byte) ([]*Doc, error) {
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, &Error{Source: source, Line: line, Index: index, Msg: err.Error()}
	}
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &Error{Source: source, Line: line, Index: index, Msg: fmt.Sprintf("a document must be an object with apiVersion and kind, not a %T", v)}
	}
	if err := checkTypeMeta(m); err != nil {
		return nil, &Error{Source: source, Line: line, Index: index, Msg: err.Error()}
	}
	if m["kind"] == "List" || strings.HasSuffix(fmt.Sprint(m["kind"]), "List") && m["items"] != nil {
		items, _ := m["items"].([]any)
		var docs []*Doc
		for i, it := range items {
			im, ok := it.(map[string]any)
			if !ok {
				return nil, &Error{Source: source, Line: line, Index: index, Field: fmt.Sprintf("items[%d]", i), Msg: "not an object"}
			}
			if err := checkTypeMeta(im); err != nil {
				return nil, &Error{Source: source, Line: line, Index: index, Field: fmt.Sprintf("items[%d]", i), Msg: err.Error()}
			}
			docs = append(docs, &Doc{Source: source, Index: index, Line: line, Object: &unstructured.Unstructured{Object: im}})
		}
		return docs, nil
	}
	return []*Doc{{Source: source, Index: index, Line: line, Object: &unstructured.Unstructured{Object: m}, raw: text}}, nil
}

func checkTypeMeta(m map[string]any) error {
	var missing []string
	for _, k := range []string{"apiVersion", "kind"} {
		s, ok := m[k].(string)
		if !ok || s == "" {
			missing = append(missing, k+" not set")
		}
	}
	if len(missing) > 0 {
		return errors.New(strings.Join(missing, ", "))
	}
	return nil
}

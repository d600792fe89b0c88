// Package jsonpath evaluates kubectl-style JSONPath templates such as
// `{.items[*].metadata.name}` or `{range .items[*]}{.metadata.name}{"\n"}{end}`
// against decoded JSON (map[string]any, []any, string, json.Number,
// float64, bool, nil). It is what `ctl get -o jsonpath=...` and
// `-o custom-columns=...` print with.
//
// Supported: text outside braces, quoted literals {"\n"} {'x'}, $ and @,
// .field, ['field'], .*, [*], [n] (negative counts from the end),
// [a:b] and [a:b:step], unions [0,2] and ['a','b'], recursive descent ..field,
// filters [?(@.x == "y")] with == != < <= > >= and existence [?(@.x)],
// and {range PATH}...{end}. It owns no state besides parsed templates.
package jsonpath

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Template is a parsed JSONPath template. It is not safe for concurrent
// use by several goroutines.
type Template struct {
	src   string
	nodes []node
	// AllowMissingKeys makes a missing field produce no output instead of
	// an error, as kubectl does by default (--allow-missing-template-keys).
	AllowMissingKeys bool
}

// Parse parses a template. Errors name the offending position.
func Parse(src string) (*Template, error) {
	p := &parser{src: src}
	nodes, err := p.parseTemplate(false)
	if err != nil {
		return nil, fmt.Errorf("jsonpath %q: %w", src, err)
	}
	return &Template{src: src, nodes: nodes, AllowMissingKeys: true}, nil
}

// MustParse is Parse that panics, for fixed templates in code.
func MustParse(src string) *Template {
	t, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return t
}

// Execute evaluates the template against data and writes the text.
func (t *Template) Execute(w io.Writer, data any) error {
	var buf bytes.Buffer
	if err := t.exec(&buf, t.nodes, data, data); err != nil {
		return fmt.Errorf("jsonpath %q: %w", t.src, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Results evaluates a template made of exactly one path expression and
// returns the values it selects (custom-columns uses this).
func (t *Template) Results(data any) ([]any, error) {
	var paths []*pathNode
	for _, n := range t.nodes {
		switch n := n.(type) {
		case *pathNode:
			paths = append(paths, n)
		case *textNode:
			if strings.TrimSpace(n.text) != "" {
				return nil, fmt.Errorf("jsonpath %q: only a single path expression is allowed here", t.src)
			}
		default:
			return nil, fmt.Errorf("jsonpath %q: only a single path expression is allowed here", t.src)
		}
	}
	if len(paths) != 1 {
		return nil, fmt.Errorf("jsonpath %q: want exactly one {path} expression, found %d", t.src, len(paths))
	}
	vals, err := t.eval(paths[0].steps, data, data)
	if err != nil {
		return nil, fmt.Errorf("jsonpath %q: %w", t.src, err)
	}
	return vals, nil
}

// ---- AST ----

type node interface{ isNode() }

type textNode struct{ text string }
type pathNode struct {
	steps []step
	src   string
}
type rangeNode struct {
	path *pathNode
	body []node
}

func (*textNode) isNode()  {}
func (*pathNode) isNode()  {}
func (*rangeNode) isNode() {}

type stepKind int

const (
	stepRoot    stepKind = iota // $
	stepCurrent                 // @
	stepField                   // .name / ['name'] / union of names
	stepWild                    // .* / [*]
	stepIndex                   // [n] / union of ints
	stepSlice                   // [a:b:c]
	stepRecurse                 // ..name (descend, then field)
	stepFilter                  // [?(...)]
)

type step struct {
	kind    stepKind
	names   []string
	indexes []int
	slice   [3]*int
	filter  *filterExpr
	src     string
}

type filterExpr struct {
	left  []step
	op    string // "" = existence
	right any    // literal value, or []step for a path
}

// ---- parser ----

type parser struct {
	src string
	pos int
}

func (p *parser) errf(format string, args ...any) error {
	return fmt.Errorf("at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

// parseTemplate reads text and {actions} until the end, or until {end}
// when inRange.
func (p *parser) parseTemplate(inRange bool) ([]node, error) {
	var nodes []node
	for p.pos < len(p.src) {
		i := strings.IndexByte(p.src[p.pos:], '{')
		if i < 0 {
			nodes = append(nodes, &textNode{text: p.src[p.pos:]})
			p.pos = len(p.src)
			break
		}
		if i > 0 {
			nodes = append(nodes, &textNode{text: p.src[p.pos : p.pos+i]})
		}
		p.pos += i + 1
		end, err := p.findClose()
		if err != nil {
			return nil, err
		}
		action := strings.TrimSpace(p.src[p.pos:end])
		start := p.pos
		p.pos = end + 1
		switch {
		case action == "end":
			if !inRange {
				return nil, fmt.Errorf("at offset %d: {end} without {range}", start)
			}
			return nodes, nil
		case strings.HasPrefix(action, "range ") || action == "range":
			path, err := parsePath(strings.TrimSpace(strings.TrimPrefix(action, "range")), start)
			if err != nil {
				return nil, err
			}
			body, err := p.parseTemplate(true)
			if err != nil {
				return nil, err
			}
			nodes = append(nodes, &rangeNode{path: path, body: body})
		case len(action) >= 2 && (action[0] == '"' || action[0] == '\''):
			lit, err := unquote(action)
			if err != nil {
				return nil, fmt.Errorf("at offset %d: %v", start, err)
			}
			nodes = append(nodes, &textNode{text: lit})
		case action == "":
			return nil, fmt.Errorf("at offset %d: empty {}", start)
		default:
			path, err := parsePath(action, start)
			if err != nil {
				return nil, err
			}
			nodes = append(nodes, path)
		}
	}
	if inRange {
		return nil, fmt.Errorf("{range} without {end}")
	}
	return nodes, nil
}

// findClose finds the '}' closing the action that starts at p.pos,
// skipping quoted strings and nested brackets.
func (p *parser) findClose() (int, error) {
	var quote byte
	for i := p.pos; i < len(p.src); i++ {
		c := p.src[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '}':
			return i, nil
		}
	}
	return 0, p.errf("unclosed {")
}

func unquote(s string) (string, error) {
	if s[0] == '\'' {
		if s[len(s)-1] != '\'' {
			return "", fmt.Errorf("unterminated string %s", s)
		}
		return s[1 : len(s)-1], nil
	}
	out, err := strconv.Unquote(s)
	if err != nil {
		return "", fmt.Errorf("bad string literal %s", s)
	}
	return out, nil
}

// parsePath parses an expression such as .items[*].metadata.name.
func parsePath(src string, offset int) (*pathNode, error) {
	steps, rest, err := parseSteps(src)
	if err != nil {
		return nil, fmt.Errorf("at offset %d: %q: %v", offset, src, err)
	}
	if strings.TrimSpace(rest) != "" {
		return nil, fmt.Errorf("at offset %d: %q: unexpected %q", offset, src, rest)
	}
	return &pathNode{steps: steps, src: src}, nil
}

func isIdentChar(c byte) bool {
	return c == '_' || c == '-' || c == '/' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// parseSteps reads path steps from s and returns what it could not parse
// (a filter operator, say).
func parseSteps(s string) ([]step, string, error) {
	var steps []step
	i := 0
	if i < len(s) && (s[i] == '$' || s[i] == '@') {
		if s[i] == '$' {
			steps = append(steps, step{kind: stepRoot, src: "$"})
		} else {
			steps = append(steps, step{kind: stepCurrent, src: "@"})
		}
		i++
	} else if i < len(s) && isIdentChar(s[i]) {
		// kubectl accepts "metadata.name" as ".metadata.name".
		s = "." + s
	}
	for i < len(s) {
		c := s[i]
		switch {
		case strings.HasPrefix(s[i:], ".."):
			j := i + 2
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			if j == i+2 {
				if j < len(s) && s[j] == '*' {
					steps = append(steps, step{kind: stepRecurse, src: ".."}, step{kind: stepWild, src: "*"})
					i = j + 1
					continue
				}
				return nil, "", fmt.Errorf("'..' must be followed by a field name")
			}
			steps = append(steps, step{kind: stepRecurse, src: ".."}, step{kind: stepField, names: []string{s[i+2 : j]}, src: s[i:j]})
			i = j
		case c == '.':
			j := i + 1
			if j < len(s) && s[j] == '*' {
				steps = append(steps, step{kind: stepWild, src: ".*"})
				i = j + 1
				continue
			}
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			if j == i+1 {
				// A lone leading "." is the current object ("{.}", ".[0]").
				atStart := len(steps) == 0 || (len(steps) == 1 && (steps[0].kind == stepRoot || steps[0].kind == stepCurrent))
				if atStart && (j >= len(s) || s[j] == '[' || s[j] == ' ') {
					i = j
					continue
				}
				return nil, "", fmt.Errorf("expected a field name after '.'")
			}
			steps = append(steps, step{kind: stepField, names: []string{s[i+1 : j]}, src: s[i:j]})
			i = j
		case c == '[':
			end, err := closingBracket(s, i)
			if err != nil {
				return nil, "", err
			}
			st, err := parseBracket(s[i+1 : end])
			if err != nil {
				return nil, "", err
			}
			st.src = s[i : end+1]
			steps = append(steps, st)
			i = end + 1
		default:
			return steps, s[i:], nil
		}
	}
	return steps, "", nil
}

func closingBracket(s string, open int) (int, error) {
	depth := 0
	var quote byte
	for i := open; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[':
			depth++
		case c == ']':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("unclosed [")
}

func parseBracket(in string) (step, error) {
	in = strings.TrimSpace(in)
	switch {
	case in == "*":
		return step{kind: stepWild}, nil
	case strings.HasPrefix(in, "?(") && strings.HasSuffix(in, ")"):
		f, err := parseFilter(strings.TrimSpace(in[2 : len(in)-1]))
		if err != nil {
			return step{}, err
		}
		return step{kind: stepFilter, filter: f}, nil
	case strings.Contains(in, ":") && !strings.ContainsAny(in, `'"`):
		parts := strings.Split(in, ":")
		if len(parts) > 3 {
			return step{}, fmt.Errorf("bad slice [%s]", in)
		}
		var st step
		st.kind = stepSlice
		for k, p := range parts {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			n, err := strconv.Atoi(p)
			if err != nil {
				return step{}, fmt.Errorf("bad slice [%s]: %q is not a number", in, p)
			}
			st.slice[k] = &n
		}
		if st.slice[2] != nil && *st.slice[2] <= 0 {
			return step{}, fmt.Errorf("bad slice [%s]: step must be positive", in)
		}
		return st, nil
	}
	// A union of indexes or of quoted names.
	var st step
	for _, part := range splitUnion(in) {
		part = strings.TrimSpace(part)
		if part == "" {
			return step{}, fmt.Errorf("empty subscript in [%s]", in)
		}
		if part[0] == '\'' || part[0] == '"' {
			name, err := unquote(part)
			if err != nil {
				return step{}, err
			}
			st.kind = stepField
			st.names = append(st.names, name)
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil {
			return step{}, fmt.Errorf("bad subscript [%s]: want a number, a quoted name, *, a slice or ?(filter)", in)
		}
		st.kind = stepIndex
		st.indexes = append(st.indexes, n)
	}
	if len(st.names) > 0 && len(st.indexes) > 0 {
		return step{}, fmt.Errorf("bad subscript [%s]: mixes names and indexes", in)
	}
	return st, nil
}

func splitUnion(s string) []string {
	var out []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

var filterOps = []string{"==", "!=", "<=", ">=", "<", ">"}

func parseFilter(s string) (*filterExpr, error) {
	left, rest, err := parseSteps(s)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %v", s, err)
	}
	if len(left) == 0 {
		return nil, fmt.Errorf("filter %q: must start with @ or $", s)
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return &filterExpr{left: left}, nil
	}
	for _, op := range filterOps {
		if !strings.HasPrefix(rest, op) {
			continue
		}
		r := strings.TrimSpace(rest[len(op):])
		f := &filterExpr{left: left, op: op}
		switch {
		case r == "":
			return nil, fmt.Errorf("filter %q: missing right-hand side", s)
		case r[0] == '\'' || r[0] == '"':
			lit, err := unquote(r)
			if err != nil {
				return nil, fmt.Errorf("filter %q: %v", s, err)
			}
			f.right = lit
		case r[0] == '@' || r[0] == '$':
			steps, more, err := parseSteps(r)
			if err != nil || strings.TrimSpace(more) != "" {
				return nil, fmt.Errorf("filter %q: bad right-hand side %q", s, r)
			}
			f.right = steps
		case r == "true" || r == "false":
			f.right = r == "true"
		case r == "null":
			f.right = nil
		default:
			n, err := strconv.ParseFloat(r, 64)
			if err != nil {
				return nil, fmt.Errorf("filter %q: %q is not a number, string, bool or path", s, r)
			}
			f.right = n
		}
		return f, nil
	}
	return nil, fmt.Errorf("filter %q: unknown operator in %q", s, rest)
}

// ---- evaluation ----

func (t *Template) exec(w *bytes.Buffer, nodes []node, root, cur any) error {
	for _, n := range nodes {
		switch n := n.(type) {
		case *textNode:
			w.WriteString(n.text)
		case *pathNode:
			vals, err := t.eval(n.steps, root, cur)
			if err != nil {
				return err
			}
			for i, v := range vals {
				if i > 0 {
					w.WriteByte(' ')
				}
				if err := writeValue(w, v); err != nil {
					return err
				}
			}
		case *rangeNode:
			vals, err := t.eval(n.path.steps, root, cur)
			if err != nil {
				return err
			}
			// {range .items} iterates the list itself, as kubectl does.
			if len(vals) == 1 {
				if l, ok := vals[0].([]any); ok {
					vals = l
				}
			}
			for _, v := range vals {
				if err := t.exec(w, n.body, root, v); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Format renders one value the way jsonpath output shows it: strings
// raw, numbers and bools literally, null empty, objects and lists as JSON.
func Format(v any) (string, error) {
	var b bytes.Buffer
	err := writeValue(&b, v)
	return b.String(), err
}

func writeValue(w *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case nil:
	case string:
		w.WriteString(v)
	case json.Number:
		w.WriteString(v.String())
	case float64:
		w.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
	case int64:
		w.WriteString(strconv.FormatInt(v, 10))
	case int:
		w.WriteString(strconv.Itoa(v))
	case bool:
		w.WriteString(strconv.FormatBool(v))
	default:
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		w.Write(data)
	}
	return nil
}

type missingError struct{ what string }

func (e *missingError) Error() string { return e.what + " is not found" }

func (t *Template) eval(steps []step, root, cur any) ([]any, error) {
	vals := []any{cur}
	for _, st := range steps {
		var next []any
		switch st.kind {
		case stepRoot:
			next = []any{root}
		case stepCurrent:
			next = vals
		case stepRecurse:
			for _, v := range vals {
				next = appendDescendants(next, v)
			}
		case stepFilter:
			for _, v := range vals {
				for _, item := range elements(v) {
					ok, err := t.match(st.filter, root, item)
					if err != nil {
						return nil, err
					}
					if ok {
						next = append(next, item)
					}
				}
			}
		default:
			for _, v := range vals {
				out, err := t.apply(st, v)
				if err != nil {
					return nil, err
				}
				next = append(next, out...)
			}
		}
		vals = next
	}
	return vals, nil
}

// elements are the things a filter looks at: list items, or map values.
func elements(v any) []any {
	switch v := v.(type) {
	case []any:
		return v
	case map[string]any:
		out := make([]any, 0, len(v))
		for _, k := range sortedKeys(v) {
			out = append(out, v[k])
		}
		return out
	}
	return nil
}

func appendDescendants(out []any, v any) []any {
	out = append(out, v)
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			out = appendDescendants(out, e)
		}
	case map[string]any:
		for _, k := range sortedKeys(v) {
			out = appendDescendants(out, v[k])
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (t *Template) apply(st step, v any) ([]any, error) {
	switch st.kind {
	case stepField:
		m, ok := v.(map[string]any)
		if !ok {
			if v == nil || t.AllowMissingKeys {
				return nil, nil
			}
			return nil, &missingError{what: st.src}
		}
		var out []any
		for _, name := range st.names {
			x, ok := m[name]
			if !ok {
				if t.AllowMissingKeys {
					continue
				}
				return nil, &missingError{what: strings.TrimPrefix(st.src, ".")}
			}
			out = append(out, x)
		}
		return out, nil
	case stepWild:
		return elements(v), nil
	case stepIndex:
		l, ok := v.([]any)
		if !ok {
			if t.AllowMissingKeys {
				return nil, nil
			}
			return nil, fmt.Errorf("%s: not a list", st.src)
		}
		var out []any
		for _, i := range st.indexes {
			if i < 0 {
				i += len(l)
			}
			if i < 0 || i >= len(l) {
				if t.AllowMissingKeys {
					continue
				}
				return nil, fmt.Errorf("%s: index out of range (list has %d items)", st.src, len(l))
			}
			out = append(out, l[i])
		}
		return out, nil
	case stepSlice:
		l, ok := v.([]any)
		if !ok {
			if t.AllowMissingKeys {
				return nil, nil
			}
			return nil, fmt.Errorf("%s: not a list", st.src)
		}
		n := len(l)
		start, end, stride := 0, n, 1
		if st.slice[0] != nil {
			start = *st.slice[0]
		}
		if st.slice[1] != nil {
			end = *st.slice[1]
		}
		if st.slice[2] != nil {
			stride = *st.slice[2]
		}
		start, end = clamp(start, n), clamp(end, n)
		var out []any
		for i := start; i < end; i += stride {
			out = append(out, l[i])
		}
		return out, nil
	}
	return nil, fmt.Errorf("internal error: step %d", st.kind)
}

func clamp(i, n int) int {
	if i < 0 {
		i += n
	}
	return max(0, min(i, n))
}

func (t *Template) match(f *filterExpr, root, item any) (bool, error) {
	saved := t.AllowMissingKeys
	t.AllowMissingKeys = true // a filter over items lacking the field just skips them
	defer func() { t.AllowMissingKeys = saved }()
	left, err := t.eval(f.left, root, item)
	if err != nil {
		return false, err
	}
	if f.op == "" {
		for _, v := range left {
			if v != nil && v != false {
				return true, nil
			}
		}
		return false, nil
	}
	rights := []any{f.right}
	if steps, ok := f.right.([]step); ok {
		if rights, err = t.eval(steps, root, item); err != nil {
			return false, err
		}
	}
	for _, l := range left {
		for _, r := range rights {
			if compare(l, f.op, r) {
				return true, nil
			}
		}
	}
	return false, nil
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	}
	return 0, false
}

func compare(l any, op string, r any) bool {
	if lf, ok := toFloat(l); ok {
		if rf, ok := toFloat(r); ok {
			switch op {
			case "==":
				return lf == rf
			case "!=":
				return lf != rf
			case "<":
				return lf < rf
			case "<=":
				return lf <= rf
			case ">":
				return lf > rf
			case ">=":
				return lf >= rf
			}
		}
	}
	if ls, ok := l.(string); ok {
		if rs, ok := r.(string); ok {
			switch op {
			case "==":
				return ls == rs
			case "!=":
				return ls != rs
			case "<":
				return ls < rs
			case "<=":
				return ls <= rs
			case ">":
				return ls > rs
			case ">=":
				return ls >= rs
			}
		}
	}
	switch op {
	case "==":
		return fmt.Sprint(l) == fmt.Sprint(r)
	case "!=":
		return fmt.Sprint(l) != fmt.Sprint(r)
	}
	return false
}

// Relaxed turns the shorthand kubectl accepts in custom-columns
// ("metadata.name", ".metadata.name", "{metadata.name}") into a template.
func Relaxed(expr string) (string, error) {
	e := strings.TrimSpace(expr)
	if strings.HasPrefix(e, "{") {
		if !strings.HasSuffix(e, "}") {
			return "", fmt.Errorf("unbalanced braces in %q", expr)
		}
		e = e[1 : len(e)-1]
	}
	if e == "" {
		return "", fmt.Errorf("empty expression")
	}
	if e[0] != '.' && e[0] != '$' && e[0] != '@' && e[0] != '[' {
		e = "." + e
	}
	return "{" + e + "}", nil
}

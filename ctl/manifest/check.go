package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/runtime"
)

// Check decodes the document strictly into its Go type with dec (pass
// api/scheme's StrictCodecs.UniversalDeserializer()). It returns the typed
// object, or nil without error when dec does not know the kind (the
// server then validates). Unknown, duplicate and mistyped fields are
// reported with their path and, where it can be found, their line.
func (d *Doc) Check(dec runtime.Decoder) (runtime.Object, error) {
	data, err := json.Marshal(d.Object.Object)
	if err != nil {
		return nil, err
	}
	obj, _, err := dec.Decode(data, nil, nil)
	if err == nil {
		return obj, nil
	}
	if runtime.IsNotRegisteredError(err) {
		return nil, nil
	}
	if se, ok := runtime.AsStrictDecodingError(err); ok {
		var errs []error
		for _, e := range se.Errors() {
			errs = append(errs, d.fieldError(e.Error()))
		}
		return nil, errors.Join(errs...)
	}
	return nil, d.fieldError(err.Error())
}

var (
	unknownFieldRE = regexp.MustCompile(`^unknown field "([^"]+)"$`)
	duplicateRE    = regexp.MustCompile(`^duplicate field "([^"]+)"$`)
	typeErrRE      = regexp.MustCompile(`cannot unmarshal (\S+) into Go struct field [^.\s]+\.(\S+) of type (\S+)`)
)

// fieldError turns a decoder message into an Error naming the field.
func (d *Doc) fieldError(msg string) *Error {
	e := &Error{Source: d.Source, Index: d.Index, Line: d.Line, Msg: msg}
	switch {
	case unknownFieldRE.MatchString(msg):
		e.Field = unknownFieldRE.FindStringSubmatch(msg)[1]
		e.Msg = "unknown field"
		if k := kindName(d); k != "" {
			e.Msg += " in " + k
		}
	case duplicateRE.MatchString(msg):
		e.Field = duplicateRE.FindStringSubmatch(msg)[1]
		e.Msg = "duplicate field"
	case typeErrRE.MatchString(msg):
		m := typeErrRE.FindStringSubmatch(msg)
		e.Field, e.Msg = m[2], fmt.Sprintf("expected %s, found %s", goTypeName(m[3]), m[1])
	}
	if e.Field != "" {
		if l := d.LineOf(e.Field); l > 0 {
			e.Line = l
		}
	}
	return e
}

func kindName(d *Doc) string {
	k := d.Object.GetKind()
	if n := d.Object.GetName(); n != "" {
		k += " " + n
	}
	return k
}

func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a map"
	}
	return "an object"
}

var indexRE = regexp.MustCompile(`^(.*)\[(\d+)\]$`)

// LineOf returns the line of the field at path ("spec.template.spec.
// containers[0].image") in the document, or 0 when it cannot be found.
func (d *Doc) LineOf(path string) int {
	if len(d.raw) == 0 {
		return 0
	}
	var root yamlv3.Node
	if err := yamlv3.Unmarshal(d.raw, &root); err != nil || len(root.Content) == 0 {
		return 0
	}
	n := root.Content[0]
	last := n.Line
	for _, seg := range strings.Split(path, ".") {
		var idx []int
		for {
			m := indexRE.FindStringSubmatch(seg)
			if m == nil {
				break
			}
			i, _ := strconv.Atoi(m[2])
			idx = append([]int{i}, idx...)
			seg = m[1]
		}
		if seg != "" {
			next := mapValue(n, seg)
			if next == nil {
				return last + d.Line - 1
			}
			// Point at the key, which is where the field is written.
			last = next.key.Line
			n = next.value
		}
		for _, i := range idx {
			if n.Kind != yamlv3.SequenceNode || i >= len(n.Content) {
				return last + d.Line - 1
			}
			n = n.Content[i]
			last = n.Line
		}
	}
	return last + d.Line - 1
}

type kv struct{ key, value *yamlv3.Node }

func mapValue(n *yamlv3.Node, key string) *kv {
	if n.Kind != yamlv3.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return &kv{n.Content[i], n.Content[i+1]}
		}
	}
	return nil
}

package openapi

import (
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Schema is one OpenAPI schema object, kept as a plain map so it encodes
// to exactly the JSON clients expect.
type Schema = map[string]any

// Builder collects the schemas of Go types and of everything they reference.
type Builder struct {
	// Schemas maps definition names to schemas.
	Schemas map[string]Schema
}

// NewBuilder returns an empty builder.
func NewBuilder() *Builder { return &Builder{Schemas: map[string]Schema{}} }

// packageNames maps Go package paths to Kubernetes' definition prefixes.
var packageNames = map[string]string{
	"github.com/minik8s/minik8s/api/core/v1":         "io.k8s.api.core.v1",
	"github.com/minik8s/minik8s/api/apps/v1":         "io.k8s.api.apps.v1",
	"github.com/minik8s/minik8s/api/coordination/v1": "io.k8s.api.coordination.v1",
	"github.com/minik8s/minik8s/api/autoscaling/v1":  "io.k8s.api.autoscaling.v1",
	"k8s.io/apimachinery/pkg/apis/meta/v1":           "io.k8s.apimachinery.pkg.apis.meta.v1",
	"k8s.io/apimachinery/pkg/runtime":                "io.k8s.apimachinery.pkg.runtime",
}

// Name is the definition name of a struct type.
func Name(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	prefix, ok := packageNames[t.PkgPath()]
	if !ok {
		prefix = strings.ReplaceAll(t.PkgPath(), "/", ".")
	}
	return prefix + "." + t.Name()
}

// Ref returns a reference to the schema of a struct type.
func Ref(t reflect.Type) Schema { return Schema{"$ref": "#/components/schemas/" + Name(t)} }

// AddKind adds the schema of a top-level kind and marks it with its
// group/version/kind.
func (b *Builder) AddKind(t reflect.Type, gvk schema.GroupVersionKind) string {
	name := b.add(t)
	b.Schemas[name]["x-kubernetes-group-version-kind"] = []Schema{{
		"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}}
	return name
}

// add builds the schema of struct type t (once) and returns its name.
func (b *Builder) add(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := Name(t)
	if _, done := b.Schemas[name]; done {
		return name
	}
	s := Schema{"type": "object"}
	b.Schemas[name] = s // before recursing: types may refer to themselves
	props := Schema{}
	b.addFields(t, props)
	if len(props) > 0 {
		s["properties"] = props
	}
	return name
}

// addFields adds t's JSON fields to props; inline (embedded) structs
// contribute their fields directly, as encoding/json does.
func (b *Builder) addFields(t reflect.Type, props Schema) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				b.addFields(ft, props)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		p := b.typeSchema(f.Type)
		if ps := f.Tag.Get("patchStrategy"); ps != "" {
			p["x-kubernetes-patch-strategy"] = ps
		}
		if mk := f.Tag.Get("patchMergeKey"); mk != "" {
			p["x-kubernetes-patch-merge-key"] = mk
		}
		props[name] = p
	}
}

// special are types whose JSON form is not their Go shape.
var special = map[string]Schema{
	"k8s.io/apimachinery/pkg/apis/meta/v1.Time":           {"type": "string", "format": "date-time"},
	"k8s.io/apimachinery/pkg/apis/meta/v1.MicroTime":      {"type": "string", "format": "date-time"},
	"k8s.io/apimachinery/pkg/apis/meta/v1.Duration":       {"type": "string"},
	"k8s.io/apimachinery/pkg/apis/meta/v1.FieldsV1":       {"type": "object"},
	"k8s.io/apimachinery/pkg/api/resource.Quantity":       {"x-kubernetes-int-or-string": true},
	"k8s.io/apimachinery/pkg/util/intstr.IntOrString":     {"x-kubernetes-int-or-string": true},
	"k8s.io/apimachinery/pkg/runtime.RawExtension":        {"type": "object"},
	"k8s.io/apimachinery/pkg/apis/meta/v1.Fields":         {"type": "object"},
	"k8s.io/apimachinery/pkg/apis/meta/v1.TypeMeta":       {"type": "object"},
	"k8s.io/apimachinery/pkg/apis/meta/v1.LabelSelector":  nil, // a plain struct: built normally
	"k8s.io/apimachinery/pkg/apis/meta/v1.OwnerReference": nil,
}

// typeSchema is the schema of a field of type t.
func (b *Builder) typeSchema(t reflect.Type) Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := special[t.PkgPath()+"."+t.Name()]; ok && s != nil {
		out := Schema{}
		for k, v := range s {
			out[k] = v
		}
		return out
	}
	switch t.Kind() {
	case reflect.String:
		return Schema{"type": "string"}
	case reflect.Bool:
		return Schema{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Uint32, reflect.Int16, reflect.Uint16, reflect.Int8, reflect.Uint8:
		return Schema{"type": "integer", "format": "int32"}
	case reflect.Int64, reflect.Uint64:
		return Schema{"type": "integer", "format": "int64"}
	case reflect.Float32, reflect.Float64:
		return Schema{"type": "number", "format": "double"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return Schema{"type": "string", "format": "byte"}
		}
		return Schema{"type": "array", "items": b.typeSchema(t.Elem())}
	case reflect.Map:
		return Schema{"type": "object", "additionalProperties": b.typeSchema(t.Elem())}
	case reflect.Struct:
		b.add(t)
		// allOf keeps room for siblings such as default, as Kubernetes does.
		return Schema{"allOf": []Schema{Ref(t)}}
	case reflect.Interface:
		return Schema{"type": "object"}
	}
	return Schema{}
}

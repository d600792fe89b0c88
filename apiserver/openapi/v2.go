package openapi

import "strings"

// The Builder writes schemas in their OpenAPI v3 form. Older clients
// (kubectl before 1.27 for explain, apply and client-side validation) read
// the Swagger 2.0 document at /openapi/v2 instead; V2 rewrites a v3 schema
// into the shape Kubernetes publishes there, so both documents come from
// the same reflected types and cannot disagree.

const (
	v3RefPrefix = "#/components/schemas/"
	v2RefPrefix = "#/definitions/"
)

// V2 returns a copy of s in Swagger 2.0 form (nested schemas are copied,
// extension values shared; neither is modified):
//   - references point into #/definitions/ instead of #/components/schemas/;
//   - a single-element allOf wrapper (which v3 needs to put siblings next to
//     a reference) becomes a plain $ref with those siblings beside it, which
//     is how Kubernetes writes v2 and where kubectl reads the patch
//     strategy of a field whose type is a struct;
//   - x-kubernetes-int-or-string (v3 only) becomes type string with format
//     int-or-string, the v2 spelling Kubernetes uses for IntOrString.
func V2(s Schema) Schema {
	out := Schema{}
	for k, v := range s {
		switch k {
		case "$ref":
			out[k] = v2Ref(v.(string))
		case "allOf":
			all := v.([]Schema)
			if len(all) == 1 {
				for k2, v2 := range V2(all[0]) {
					out[k2] = v2
				}
				continue
			}
			conv := make([]Schema, len(all))
			for i, a := range all {
				conv[i] = V2(a)
			}
			out[k] = conv
		case "x-kubernetes-int-or-string":
			out["type"], out["format"] = "string", "int-or-string"
		case "properties":
			props := Schema{}
			for name, p := range v.(Schema) {
				props[name] = V2(p.(Schema))
			}
			out[k] = props
		case "items", "additionalProperties":
			if sub, ok := v.(Schema); ok {
				out[k] = V2(sub)
			} else {
				out[k] = v
			}
		default:
			out[k] = v
		}
	}
	return out
}

func v2Ref(ref string) string {
	if name, ok := strings.CutPrefix(ref, v3RefPrefix); ok {
		return v2RefPrefix + name
	}
	return ref
}

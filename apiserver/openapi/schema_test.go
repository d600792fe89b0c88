package openapi

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

func prop(t *testing.T, b *Builder, def, field string) Schema {
	t.Helper()
	s, ok := b.Schemas[def]
	if !ok {
		t.Fatalf("no schema %s", def)
	}
	p, ok := s["properties"].(Schema)[field].(Schema)
	if !ok {
		t.Fatalf("%s has no property %s", def, field)
	}
	return p
}

func TestSchemasFollowTheGoTypes(t *testing.T) {
	b := NewBuilder()
	name := b.AddKind(reflect.TypeOf(&appsv1.Deployment{}), schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"})
	if name != "io.k8s.api.apps.v1.Deployment" {
		t.Fatalf("name = %s", name)
	}
	gvk := b.Schemas[name]["x-kubernetes-group-version-kind"].([]Schema)[0]
	if gvk["kind"] != "Deployment" || gvk["group"] != "apps" {
		t.Errorf("gvk extension = %v", gvk)
	}
	// Inline TypeMeta contributes apiVersion and kind; metadata is a ref.
	for _, f := range []string{"apiVersion", "kind", "metadata", "spec", "status"} {
		prop(t, b, name, f)
	}
	containers := prop(t, b, "io.k8s.api.core.v1.PodSpec", "containers")
	if containers["type"] != "array" || containers["x-kubernetes-patch-merge-key"] != "name" ||
		containers["x-kubernetes-patch-strategy"] != "merge" {
		t.Errorf("containers = %v", containers)
	}
	surge := prop(t, b, "io.k8s.api.apps.v1.RollingUpdateDeployment", "maxSurge")
	if surge["x-kubernetes-int-or-string"] != true {
		t.Errorf("maxSurge = %v", surge)
	}
	ts := prop(t, b, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "creationTimestamp")
	if ts["type"] != "string" || ts["format"] != "date-time" {
		t.Errorf("creationTimestamp = %v", ts)
	}
	if _, ok := b.Schemas["io.k8s.api.core.v1.Secret"]; ok {
		t.Errorf("Secret is not reachable from Deployment, yet has a schema")
	}
}

func TestSecretBytesAreBase64Strings(t *testing.T) {
	b := NewBuilder()
	b.AddKind(reflect.TypeOf(&corev1.Secret{}), schema.GroupVersionKind{Version: "v1", Kind: "Secret"})
	data := prop(t, b, "io.k8s.api.core.v1.Secret", "data")
	items := data["additionalProperties"].(Schema)
	if items["type"] != "string" || items["format"] != "byte" {
		t.Errorf("secret data values = %v", items)
	}
}

func TestV2RewritesReferencesAndIntOrString(t *testing.T) {
	b := NewBuilder()
	b.AddKind(reflect.TypeOf(&appsv1.Deployment{}), schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"})
	v3 := b.Schemas["io.k8s.api.apps.v1.DeploymentSpec"]
	v2 := V2(v3)
	tmpl := v2["properties"].(Schema)["template"].(Schema)
	if tmpl["$ref"] != "#/definitions/io.k8s.api.core.v1.PodTemplateSpec" || tmpl["allOf"] != nil {
		t.Errorf("template = %v, want a plain v2 $ref", tmpl)
	}
	// The v3 schema is untouched.
	if v3["properties"].(Schema)["template"].(Schema)["allOf"] == nil {
		t.Errorf("V2 modified its input")
	}
	// A reference's siblings (here the patch strategy) stay beside it.
	pod := V2(b.Schemas["io.k8s.api.core.v1.PodSpec"])
	containers := pod["properties"].(Schema)["containers"].(Schema)
	if containers["items"].(Schema)["$ref"] != "#/definitions/io.k8s.api.core.v1.Container" || containers["x-kubernetes-patch-merge-key"] != "name" {
		t.Errorf("containers = %v", containers)
	}
	surge := V2(b.Schemas["io.k8s.api.apps.v1.RollingUpdateDeployment"])["properties"].(Schema)["maxSurge"].(Schema)
	if surge["type"] != "string" || surge["format"] != "int-or-string" || surge["x-kubernetes-int-or-string"] != nil {
		t.Errorf("maxSurge = %v, want type string format int-or-string", surge)
	}
	gvk := V2(b.Schemas["io.k8s.api.apps.v1.Deployment"])["x-kubernetes-group-version-kind"].([]Schema)
	if len(gvk) != 1 || gvk[0]["kind"] != "Deployment" {
		t.Errorf("gvk extension lost: %v", gvk)
	}
}

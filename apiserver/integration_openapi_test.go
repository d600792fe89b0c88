package apiserver_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	openapiproto "k8s.io/kube-openapi/pkg/util/proto"

	appsv1 "github.com/minik8s/minik8s/api/apps/v1"
	"github.com/minik8s/minik8s/apiserver/apiservertest"
	"github.com/minik8s/minik8s/apiserver/registry"
)

// The v2 document read the way kubectl before 1.27 reads it: client-go's
// discovery asks for the protobuf form, kube-openapi turns it into models,
// each kind is found by its x-kubernetes-group-version-kind, and apply
// computes its strategic merge patch from the model's patch extensions.
func TestOpenAPIV2AsKubectlReadsIt(t *testing.T) {
	s := apiservertest.Start(t)
	doc, err := itClientset(t, s, false).Discovery().OpenAPISchema()
	if err != nil {
		t.Fatalf("GET /openapi/v2 (protobuf) through client-go: %v", err)
	}
	models, err := openapiproto.NewOpenAPIData(doc)
	if err != nil {
		t.Fatalf("kube-openapi cannot build models from the document: %v", err)
	}
	byGVK := map[schema.GroupVersionKind]openapiproto.Schema{}
	for _, name := range models.ListModels() {
		m := models.LookupModel(name)
		gvks, _ := m.GetExtensions()["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			g := g.(map[any]any)
			byGVK[schema.GroupVersionKind{Group: g["group"].(string), Version: g["version"].(string), Kind: g["kind"].(string)}] = m
		}
	}
	for _, r := range registry.All() {
		kinds := []string{r.Kind, r.ListKind}
		if r.CreateOnly {
			kinds = kinds[:1] // bindings have no list
		}
		for _, kind := range kinds {
			if byGVK[r.GroupVersion().WithKind(kind)] == nil {
				t.Errorf("no definition carries the group/version/kind %s", r.GroupVersion().WithKind(kind))
			}
		}
	}
	deploy := byGVK[appsv1.SchemeGroupVersion.WithKind("Deployment")]
	if deploy == nil {
		t.FailNow()
	}

	// The same three-way apply patch, once from the served schema and once
	// from the Go struct: they are equal only if every patch strategy and
	// merge key on the way (containers by name, env by name) arrived.
	original := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"template":{"spec":{"containers":[` +
		`{"name":"web","image":"web:v1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}]}}}}`
	modified := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"template":{"spec":{"containers":[` +
		`{"name":"web","image":"web:v2","env":[{"name":"B","value":"2"}]}]}}}}`
	current := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"team":"blue"}},"spec":{"template":{"spec":{"containers":[` +
		`{"name":"web","image":"web:v1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"},{"name":"C","value":"3"}]},` +
		`{"name":"sidecar","image":"side:v1"}]}}}}`
	fromStruct, err := strategicpatch.NewPatchMetaFromStruct(&appsv1.Deployment{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := strategicpatch.CreateThreeWayMergePatch([]byte(original), []byte(modified), []byte(current), fromStruct, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := strategicpatch.CreateThreeWayMergePatch([]byte(original), []byte(modified), []byte(current),
		strategicpatch.NewPatchMetaFromOpenAPI(deploy), false)
	if err != nil {
		t.Fatalf("apply patch from the served schema: %v", err)
	}
	if !jsonEqual(t, got, want) {
		t.Errorf("apply patch from /openapi/v2 = %s\nfrom the Go types   = %s", got, want)
	}
	if !strings.Contains(string(got), `"$patch":"delete"`) || strings.Contains(string(got), "sidecar") {
		t.Errorf("patch %s should delete env A by its merge key and leave the sidecar container alone", got)
	}

	// IntOrString is Kubernetes' v2 spelling: a string of format int-or-string.
	svc := byGVK[schema.GroupVersionKind{Version: "v1", Kind: "Service"}]
	port := models.LookupModel("io.k8s.api.core.v1.ServicePort")
	if svc == nil || port == nil {
		t.Fatalf("Service or ServicePort missing from the models")
	}
	tp, ok := port.(*openapiproto.Kind).Fields["targetPort"].(*openapiproto.Primitive)
	if !ok || tp.Type != "string" || tp.Format != "int-or-string" {
		t.Errorf("ServicePort.targetPort = %#v, want a string primitive of format int-or-string", port.(*openapiproto.Kind).Fields["targetPort"])
	}
}

// /openapi/v2 is one document in two representations, negotiated on
// Accept, each with a strong ETag that conditional requests honour.
func TestOpenAPIV2Representations(t *testing.T) {
	s := apiservertest.Start(t)
	c := newClient(t, s)
	get := func(accept, ifNoneMatch string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", c.base+"/openapi/v2", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if ifNoneMatch != "" {
			req.Header.Set("If-None-Match", ifNoneMatch)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}

	jsonResp, jsonBody := get("", "")
	if jsonResp.StatusCode != 200 || jsonResp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("no Accept: %d %s, want 200 JSON", jsonResp.StatusCode, jsonResp.Header.Get("Content-Type"))
	}
	if bytes.Contains(jsonBody, []byte("#/components/")) || !bytes.Contains(jsonBody, []byte(`"$ref":"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"`)) {
		t.Errorf("v2 references must point into #/definitions/")
	}
	pbResp, pbBody := get("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", "")
	// Answered with the spelling without "@", which Go's mime parser accepts.
	if pbResp.StatusCode != 200 || pbResp.Header.Get("Content-Type") != "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" {
		t.Fatalf("protobuf: %d %s", pbResp.StatusCode, pbResp.Header.Get("Content-Type"))
	}
	fromPB := &openapiv2.Document{}
	if err := proto.Unmarshal(pbBody, fromPB); err != nil {
		t.Fatalf("protobuf body: %v", err)
	}
	fromJSON, err := openapiv2.ParseDocument(jsonBody)
	if err != nil {
		t.Fatalf("JSON body is not a valid Swagger 2.0 document: %v", err)
	}
	if !proto.Equal(fromPB, fromJSON) {
		t.Errorf("the JSON and protobuf representations describe different documents")
	}
	if fromPB.Swagger != "2.0" || len(fromPB.GetDefinitions().GetAdditionalProperties()) == 0 || len(fromPB.GetPaths().GetPath()) == 0 {
		t.Errorf("protobuf document lacks swagger/definitions/paths")
	}

	// q values rank the choices; an unknown type alone is 406.
	if r, _ := get("application/json;q=0.5, application/com.github.proto-openapi.spec.v2@v1.0+protobuf", ""); !strings.Contains(r.Header.Get("Content-Type"), "protobuf") {
		t.Errorf("protobuf preferred by q: got %s", r.Header.Get("Content-Type"))
	}
	if r, _ := get("application/json, application/com.github.proto-openapi.spec.v2@v1.0+protobuf;q=0.9", ""); r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("JSON preferred by q: got %s", r.Header.Get("Content-Type"))
	}
	r, body := get("text/html", "")
	var st struct{ Reason string }
	_ = json.Unmarshal(body, &st)
	if r.StatusCode != http.StatusNotAcceptable || st.Reason != "NotAcceptable" {
		t.Errorf("Accept text/html: %d %s, want 406 NotAcceptable", r.StatusCode, body)
	}

	jsonTag, pbTag := jsonResp.Header.Get("Etag"), pbResp.Header.Get("Etag")
	if jsonTag == "" || pbTag == "" || jsonTag == pbTag || !strings.HasPrefix(jsonTag, `"`) {
		t.Errorf("ETags json %s protobuf %s: want two different strong (quoted) tags", jsonTag, pbTag)
	}
	if !strings.Contains(jsonResp.Header.Get("Vary"), "Accept") {
		t.Errorf("Vary = %q: caches must key the two representations on Accept", jsonResp.Header.Get("Vary"))
	}
	if r, body := get("", jsonTag); r.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match with the current ETag: %d with %d bytes, want 304 and no body", r.StatusCode, len(body))
	}
	if r, _ := get("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", jsonTag); r.StatusCode != 200 {
		t.Errorf("If-None-Match with the JSON ETag on the protobuf form: %d, want 200", r.StatusCode)
	}
	// Built once: the same bytes every time.
	if _, again := get("", ""); !bytes.Equal(again, jsonBody) {
		t.Errorf("the document changed between two requests")
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

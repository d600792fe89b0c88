package apiserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/minik8s/minik8s/apiserver/openapi"
	"github.com/minik8s/minik8s/apiserver/registry"
	"github.com/minik8s/minik8s/apiserver/rest"
)

// The OpenAPI v3 documents served here describe the REST paths and
// operations of every group/version, with the extensions clients look for:
// x-kubernetes-group-version-kind on each operation and the fieldValidation
// query parameter on writes. That is what kubectl reads to decide that the
// server validates fields itself (it then sends fieldValidation=Strict and
// skips client-side schema validation). Object schemas are derived from the
// Go types (package apiserver/openapi), so `kubectl explain` works. Patch
// operations do not advertise strategic merge patch bodies: kubectl then
// computes its apply patches from its compiled-in types, which match ours
// field for field.
//
// /openapi/v2 is not served; kubectl only needs it when v3 is missing.

type openAPI struct {
	once  sync.Once
	docs  map[string][]byte // "api/v1" -> document
	index []byte
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	s.openapi.once.Do(func() { s.openapi.build(s.api.Resources) })
	p := strings.TrimPrefix(r.URL.Path, "/openapi/v3")
	switch {
	case p == "" || p == "/":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.openapi.index)
	case s.openapi.docs[strings.TrimPrefix(p, "/")] != nil:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.openapi.docs[strings.TrimPrefix(p, "/")])
	default:
		rest.WriteError(w, apierrors.NewNotFound(schemaGR(""), r.URL.Path))
	}
}

func (o *openAPI) build(resources []*registry.Resource) {
	type doc = map[string]any
	docs := map[string]doc{}
	builders := map[string]*openapi.Builder{}
	for _, r := range resources {
		gvPath := "api/v1"
		if r.Group != "" {
			gvPath = "apis/" + r.Group + "/" + r.Version
		}
		d, ok := docs[gvPath]
		if !ok {
			d = doc{
				"openapi": "3.0.0",
				"info":    doc{"title": "minik8s", "version": Version.GitVersion},
				"paths":   doc{},
			}
			docs[gvPath] = d
			builders[gvPath] = openapi.NewBuilder()
		}
		b := builders[gvPath]
		schemaName := b.AddKind(reflect.TypeOf(r.New()), r.GroupVersion().WithKind(r.Kind))
		b.AddKind(reflect.TypeOf(r.NewList()), r.GroupVersion().WithKind(r.ListKind))
		paths := d["paths"].(doc)
		gvk := doc{"group": r.Group, "version": r.Version, "kind": r.Kind}
		base := "/" + gvPath
		if r.Namespaced {
			base += "/namespaces/{namespace}"
		}
		collection := base + "/" + r.Resource
		item := collection + "/{name}"
		ref := doc{"$ref": "#/components/schemas/" + schemaName}
		body := func(types ...string) doc {
			c := doc{}
			for _, t := range types {
				c[t] = doc{"schema": ref}
			}
			return doc{"content": c, "required": true}
		}
		op := func(action string, params []doc, reqBody doc) doc {
			o := doc{
				"operationId":                     action + r.Kind,
				"x-kubernetes-action":             action,
				"x-kubernetes-group-version-kind": gvk,
				"parameters":                      params,
				"responses":                       doc{"200": doc{"description": "OK", "content": doc{"application/json": doc{"schema": ref}}}},
			}
			if reqBody != nil {
				o["requestBody"] = reqBody
			}
			return o
		}
		write := []doc{queryParam("dryRun"), queryParam("fieldManager"), queryParam("fieldValidation")}
		read := []doc{queryParam("labelSelector"), queryParam("fieldSelector"), queryParam("resourceVersion"),
			queryParam("limit"), queryParam("continue"), queryParam("watch"), queryParam("timeoutSeconds")}
		paths[collection] = doc{
			"get":    op("list", read, nil),
			"post":   op("post", write, body("application/json", "application/yaml")),
			"delete": op("deletecollection", nil, nil),
		}
		paths[item] = doc{
			"get":    op("get", nil, nil),
			"put":    op("put", write, body("application/json", "application/yaml")),
			"patch":  op("patch", write, body("application/json-patch+json", "application/merge-patch+json")),
			"delete": op("delete", []doc{queryParam("gracePeriodSeconds"), queryParam("propagationPolicy")}, nil),
		}
	}
	for gv, d := range docs {
		d["components"] = doc{"schemas": builders[gv].Schemas}
	}
	o.docs = map[string][]byte{}
	index := map[string]any{}
	for gv, d := range docs {
		data, _ := json.Marshal(d)
		sum := sha256.Sum256(data)
		o.docs[gv] = data
		index[gv] = map[string]string{"serverRelativeURL": "/openapi/v3/" + gv + "?hash=" + strings.ToUpper(hex.EncodeToString(sum[:]))}
	}
	o.index, _ = json.Marshal(map[string]any{"paths": index})
}

func queryParam(name string) map[string]any {
	return map[string]any{"name": name, "in": "query", "schema": map[string]any{"type": "string"}, "uniqueItems": true}
}

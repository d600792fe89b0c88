package apiserver

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik8s/minik8s/apiserver/openapi"
	"github.com/minik8s/minik8s/apiserver/registry"
	"github.com/minik8s/minik8s/apiserver/rest"
)

// The OpenAPI documents served here describe the REST paths and operations
// of every group/version, with the extensions clients look for:
// x-kubernetes-group-version-kind on each kind and operation, and the
// dryRun / fieldValidation query parameters on writes. Object schemas are
// derived from the Go types (package apiserver/openapi), so `kubectl
// explain` works.
//
// /openapi/v3 (one document per group/version) is what current kubectl
// reads: it decides from it that the server validates fields itself (it
// then sends fieldValidation=Strict and skips client-side validation).
//
// /openapi/v2 (one Swagger 2.0 document for everything, as JSON or as the
// gnostic protobuf encoding) is what kubectl before 1.27 reads for client-
// side validation of apply/create, for explain, and for the patch strategy
// of each field when computing apply patches; it is also what current
// kubectl falls back to for apply patches, because the v3 patch operations
// do not advertise strategic merge patch bodies. The v2 definitions are the
// v3 schemas rewritten (openapi.V2), so the patch strategies and merge keys
// are the ones in the Go struct tags either way.

type openAPI struct {
	once  sync.Once
	docs  map[string][]byte // "api/v1" -> v3 document
	index []byte
	// v2 is the Swagger 2.0 document in each representation.
	v2JSON, v2Proto servedDoc
	built           time.Time
}

// servedDoc is one immutable representation with its strong ETag.
type servedDoc struct {
	body []byte
	etag string
}

func newServedDoc(body []byte) servedDoc {
	sum := sha512.Sum512(body)
	return servedDoc{body: body, etag: strconv.Quote(strings.ToUpper(hex.EncodeToString(sum[:])))}
}

// The media types of the protobuf v2 document: kubectl asks for the first;
// the second is the spelling Kubernetes answers with (and older clients
// ask for).
const (
	mimeOpenAPIv2Proto    = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	mimeOpenAPIv2ProtoOld = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
)

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	s.openapi.once.Do(func() { s.openapi.build(s.api.Resources, s.log) })
	if r.URL.Path == "/openapi/v2" {
		s.openapi.serveV2(w, r)
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/openapi/v3")
	switch {
	case ok && (p == "" || p == "/"):
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.openapi.index)
	case ok && s.openapi.docs[strings.TrimPrefix(p, "/")] != nil:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.openapi.docs[strings.TrimPrefix(p, "/")])
	default:
		rest.WriteError(w, apierrors.NewNotFound(schemaGR(""), r.URL.Path))
	}
}

// serveV2 picks the representation from the Accept header (JSON when there
// is none, 406 when nothing acceptable is offered, as Kubernetes does) and
// lets http.ServeContent answer conditional requests: the ETag is a hash
// of the bytes, so If-None-Match gets a 304 until the server is upgraded.
func (o *openAPI) serveV2(w http.ResponseWriter, r *http.Request) {
	var doc servedDoc
	var ctype string
	switch negotiateV2(r.Header.Get("Accept")) {
	case "json":
		doc, ctype = o.v2JSON, "application/json"
	case "proto":
		// Answered with the spelling without "@": clients parse the
		// Content-Type with mime.ParseMediaType, which rejects the "@".
		doc, ctype = o.v2Proto, mimeOpenAPIv2ProtoOld
	default:
		rest.WriteError(w, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusNotAcceptable, Reason: metav1.StatusReasonNotAcceptable,
			Message: fmt.Sprintf("only the following media types are accepted: application/json, %s", mimeOpenAPIv2Proto),
		}})
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Etag", doc.etag)
	h.Set("Vary", "Accept") // one URL, two representations: caches must key on Accept
	http.ServeContent(w, r, "", o.built, bytes.NewReader(doc.body))
}

// negotiateV2 returns "json", "proto" or "" for an Accept header: the
// acceptable range with the highest q wins, the first listed among equals.
func negotiateV2(accept string) string {
	if strings.TrimSpace(accept) == "" {
		return "json"
	}
	type clause struct {
		kind string
		q    float64
	}
	var clauses []clause
	for _, part := range strings.Split(accept, ",") {
		// Not mime.ParseMediaType: the protobuf type has an "@", which
		// RFC 2045 does not allow in a token, and it must still match.
		mt, params, _ := strings.Cut(part, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
		}
		var kind string
		switch mt {
		case mimeOpenAPIv2Proto, mimeOpenAPIv2ProtoOld:
			kind = "proto"
		case "application/json", "application/*", "*/*":
			kind = "json"
		}
		if kind != "" && q > 0 {
			clauses = append(clauses, clause{kind, q})
		}
	}
	slices.SortStableFunc(clauses, func(a, b clause) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	if len(clauses) == 0 {
		return ""
	}
	return clauses[0].kind
}

type doc = map[string]any

// route is one REST operation, rendered into both OpenAPI versions.
type route struct {
	path, method, action string
	res                  *registry.Resource
	gvk                  doc
	query                []string
	body                 []string // request content types; nil: no body
	kindSchema           string   // schema name of the kind (the request body)
	response             string   // schema name of the 200 response; "" for none
	pathParams           []string
}

func (o *openAPI) build(resources []*registry.Resource, log *slog.Logger) {
	o.built = time.Now().Truncate(time.Second)
	v3docs := map[string]doc{}
	builders := map[string]*openapi.Builder{}
	v2paths := doc{}
	v2defs := doc{}
	for _, r := range resources {
		gvPath := "api/v1"
		if r.Group != "" {
			gvPath = "apis/" + r.Group + "/" + r.Version
		}
		d, ok := v3docs[gvPath]
		if !ok {
			d = doc{
				"openapi": "3.0.0",
				"info":    doc{"title": "minik8s", "version": Version.GitVersion},
				"paths":   doc{},
			}
			v3docs[gvPath] = d
			builders[gvPath] = openapi.NewBuilder()
		}
		b := builders[gvPath]
		schemaName := b.AddKind(reflect.TypeOf(r.New()), r.GroupVersion().WithKind(r.Kind))
		var listName string
		if !r.CreateOnly {
			// Create-only resources (bindings) have no list, and their
			// NewList stands in with another kind's list type, which must
			// not be marked as theirs.
			listName = b.AddKind(reflect.TypeOf(r.NewList()), r.GroupVersion().WithKind(r.ListKind))
		}
		for _, rt := range routes(r, gvPath, schemaName, listName) {
			addPath(d["paths"].(doc), rt.path, rt.method, rt.v3())
			addPath(v2paths, rt.path, rt.method, rt.v2())
			if len(rt.pathParams) > 0 {
				// Path parameters are declared once per path, for every method.
				v2paths[rt.path].(doc)["parameters"] = v2PathParams(rt.pathParams)
				d["paths"].(doc)[rt.path].(doc)["parameters"] = v3PathParams(rt.pathParams)
			}
		}
	}
	for gv, d := range v3docs {
		schemas := builders[gv].Schemas
		d["components"] = doc{"schemas": schemas}
		for name, s := range schemas {
			v2defs[name] = openapi.V2(s)
		}
	}
	o.docs = map[string][]byte{}
	index := map[string]any{}
	for gv, d := range v3docs {
		data, _ := json.Marshal(d)
		sum := sha512.Sum512(data)
		o.docs[gv] = data
		index[gv] = map[string]string{"serverRelativeURL": "/openapi/v3/" + gv + "?hash=" + strings.ToUpper(hex.EncodeToString(sum[:]))}
	}
	o.index, _ = json.Marshal(map[string]any{"paths": index})

	v2 := doc{
		"swagger":     "2.0",
		"info":        doc{"title": "minik8s", "version": Version.GitVersion},
		"paths":       v2paths,
		"definitions": v2defs,
	}
	v2JSON, _ := json.Marshal(v2)
	o.v2JSON = newServedDoc(v2JSON)
	// The protobuf form is the gnostic model of the same JSON, so the two
	// representations cannot differ.
	pb, err := v2Protobuf(v2JSON)
	if err != nil {
		// A bug in the generated document, not in any request: say so and
		// serve an empty body, which clients reject and then fall back.
		log.Error("building the OpenAPI v2 protobuf document", "component", "apiserver", "err", err)
	}
	o.v2Proto = newServedDoc(pb)
}

func v2Protobuf(v2JSON []byte) ([]byte, error) {
	d, err := openapiv2.ParseDocument(v2JSON)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(d)
}

func addPath(paths doc, path, method string, op doc) {
	item, ok := paths[path].(doc)
	if !ok {
		item = doc{}
		paths[path] = item
	}
	item[method] = op
}

// routes lists the operations of one resource, as Kubernetes names them.
func routes(r *registry.Resource, gvPath, schemaName, listName string) []route {
	base := "/" + gvPath
	var pathParams []string
	if r.Namespaced {
		base += "/namespaces/{namespace}"
		pathParams = []string{"namespace"}
	}
	collection := base + "/" + r.Resource
	item := collection + "/{name}"
	itemParams := append(slices.Clone(pathParams), "name")
	gvk := doc{"group": r.Group, "version": r.Version, "kind": r.Kind}
	write := []string{"dryRun", "fieldManager", "fieldValidation"}
	read := []string{"labelSelector", "fieldSelector", "resourceVersion", "limit", "continue", "watch", "timeoutSeconds"}
	bodyTypes := []string{"application/json", "application/yaml"}
	mk := func(path, method, action string, params, query, body []string, response string) route {
		return route{path: path, method: method, action: action, res: r, gvk: gvk, query: query, body: body,
			kindSchema: schemaName, response: response, pathParams: params}
	}
	if r.CreateOnly {
		return []route{mk(collection, "post", "post", pathParams, write, bodyTypes, schemaName)}
	}
	return []route{
		mk(collection, "get", "list", pathParams, read, nil, listName),
		mk(collection, "post", "post", pathParams, write, bodyTypes, schemaName),
		mk(collection, "delete", "deletecollection", pathParams, nil, nil, ""),
		mk(item, "get", "get", itemParams, nil, nil, schemaName),
		mk(item, "put", "put", itemParams, write, bodyTypes, schemaName),
		mk(item, "patch", "patch", itemParams, write,
			[]string{"application/json-patch+json", "application/merge-patch+json"}, schemaName),
		mk(item, "delete", "delete", itemParams, []string{"gracePeriodSeconds", "propagationPolicy", "dryRun"}, nil, ""),
	}
}

func (rt route) v3() doc {
	var ref doc
	if rt.response != "" {
		ref = doc{"$ref": "#/components/schemas/" + rt.response}
	}
	params := make([]doc, 0, len(rt.query))
	for _, q := range rt.query {
		params = append(params, doc{"name": q, "in": "query", "schema": doc{"type": "string"}, "uniqueItems": true})
	}
	resp := doc{"description": "OK"}
	if ref != nil {
		resp["content"] = doc{"application/json": doc{"schema": ref}}
	}
	op := doc{
		"operationId":                     rt.action + rt.res.Kind,
		"x-kubernetes-action":             rt.action,
		"x-kubernetes-group-version-kind": rt.gvk,
		"parameters":                      params,
		"responses":                       doc{"200": resp},
	}
	if rt.body != nil {
		content := doc{}
		for _, t := range rt.body {
			content[t] = doc{"schema": doc{"$ref": "#/components/schemas/" + rt.kindSchema}}
		}
		op["requestBody"] = doc{"content": content, "required": true}
	}
	return op
}

func (rt route) v2() doc {
	params := make([]doc, 0, len(rt.query)+1)
	if rt.body != nil {
		params = append(params, doc{"name": "body", "in": "body", "required": true,
			"schema": doc{"$ref": "#/definitions/" + rt.kindSchema}})
	}
	for _, q := range rt.query {
		params = append(params, doc{"name": q, "in": "query", "type": "string", "uniqueItems": true})
	}
	resp := doc{"description": "OK"}
	if rt.response != "" {
		resp["schema"] = doc{"$ref": "#/definitions/" + rt.response}
	}
	op := doc{
		"operationId":                     rt.action + rt.res.Kind,
		"x-kubernetes-action":             rt.action,
		"x-kubernetes-group-version-kind": rt.gvk,
		"parameters":                      params,
		"produces":                        []string{"application/json", "application/yaml"},
		"responses":                       doc{"200": resp},
	}
	if rt.body != nil {
		op["consumes"] = rt.body
	}
	return op
}

func v2PathParams(names []string) []doc {
	out := make([]doc, len(names))
	for i, n := range names {
		out[i] = doc{"name": n, "in": "path", "required": true, "type": "string", "uniqueItems": true}
	}
	return out
}

func v3PathParams(names []string) []doc {
	out := make([]doc, len(names))
	for i, n := range names {
		out[i] = doc{"name": n, "in": "path", "required": true, "schema": doc{"type": "string"}}
	}
	return out
}

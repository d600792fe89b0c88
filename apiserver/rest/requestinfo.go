package rest

import (
	"net/http"
	"strings"
)

// requestInfo is what the URL path says about a request.
//
//	/api/v1/pods                                    list/watch across namespaces
//	/api/v1/namespaces/{ns}/pods[/{name}[/{sub}]]   namespaced resource
//	/api/v1/nodes[/{name}[/{sub}]]                  cluster-scoped resource
//	/apis/{group}/{version}/...                     same shapes in named groups
type requestInfo struct {
	Group, Version string
	Namespace      string
	Resource       string
	Name           string
	Subresource    string
	// Verb is Kubernetes' verb: get list watch create update patch delete
	// deletecollection.
	Verb string
}

// parseRequestInfo splits a REST path; ok is false for paths that are not
// resource paths (discovery, health, ...).
func parseRequestInfo(r *http.Request) (requestInfo, bool) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var ri requestInfo
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		ri.Version, parts = parts[1], parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		ri.Group, ri.Version, parts = parts[1], parts[2], parts[3:]
	default:
		return ri, false
	}
	// namespaces/{ns}/{resource}... addresses a namespaced resource; but
	// namespaces/{name}[/status|/finalize] is the Namespace object itself.
	if parts[0] == "namespaces" && len(parts) >= 3 {
		ri.Namespace, parts = parts[1], parts[2:]
		if parts[0] == "status" || parts[0] == "finalize" {
			ri.Resource, ri.Name, ri.Subresource, ri.Namespace = "namespaces", ri.Namespace, parts[0], ""
			parts = nil
		}
	}
	if len(parts) > 3 {
		return ri, false
	}
	if len(parts) > 0 {
		ri.Resource = parts[0]
	}
	if len(parts) > 1 {
		ri.Name = parts[1]
	}
	if len(parts) > 2 {
		ri.Subresource = parts[2]
	}
	q := r.URL.Query()
	watch := q.Get("watch") == "1" || q.Get("watch") == "true"
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case ri.Name == "" && watch:
			ri.Verb = "watch"
		case ri.Name == "":
			ri.Verb = "list"
		case watch:
			ri.Verb = "watch" // single-object watch: fieldSelector metadata.name
		default:
			ri.Verb = "get"
		}
	case http.MethodPost:
		ri.Verb = "create"
	case http.MethodPut:
		ri.Verb = "update"
	case http.MethodPatch:
		ri.Verb = "patch"
	case http.MethodDelete:
		if ri.Name == "" {
			ri.Verb = "deletecollection"
		} else {
			ri.Verb = "delete"
		}
	default:
		ri.Verb = strings.ToLower(r.Method)
	}
	return ri, true
}

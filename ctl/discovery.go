package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// mapping is one resource the server serves, as discovery describes it.
type mapping struct {
	Group, Version string
	Resource       string // plural: "deployments"
	Singular       string
	Kind           string
	Namespaced     bool
	ShortNames     []string
	Verbs          []string
	Categories     []string
}

func (m *mapping) GroupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: m.Group, Version: m.Version}
}

func (m *mapping) GVK() schema.GroupVersionKind { return m.GroupVersion().WithKind(m.Kind) }

// KindString is "deployment.apps", how kubectl names objects in messages.
func (m *mapping) KindString() string {
	k := strings.ToLower(m.Kind)
	if m.Group != "" {
		k += "." + m.Group
	}
	return k
}

// GroupResource is "deployments.apps", how the server names resources in
// errors.
func (m *mapping) GroupResource() string {
	return schema.GroupResource{Group: m.Group, Resource: m.Resource}.String()
}

func (m *mapping) hasVerb(v string) bool {
	for _, x := range m.Verbs {
		if x == v {
			return true
		}
	}
	return false
}

// mapper resolves what users type ("po", "deploy", "deployments.apps",
// "all") and what manifests say (apiVersion/kind) to resources, from the
// server's discovery documents.
type mapper struct {
	all []*mapping
}

func (e *env) discovery(ctx context.Context) (*mapper, error) {
	if e.mapper != nil {
		return e.mapper, nil
	}
	rc, err := e.client()
	if err != nil {
		return nil, err
	}
	get := func(path string, into any) error {
		body, err := rc.Get().AbsPath(path).Do(ctx).Raw()
		if err != nil {
			return err
		}
		if err := json.Unmarshal(body, into); err != nil {
			return fmt.Errorf("discovery %s: %w", path, err)
		}
		return nil
	}
	m := &mapper{}
	add := func(gv schema.GroupVersion) error {
		var list metav1.APIResourceList
		if err := get(discoveryPath(gv), &list); err != nil {
			return err
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") {
				continue // subresources
			}
			m.all = append(m.all, &mapping{Group: gv.Group, Version: gv.Version, Resource: r.Name, Singular: r.SingularName,
				Kind: r.Kind, Namespaced: r.Namespaced, ShortNames: r.ShortNames, Verbs: r.Verbs, Categories: r.Categories})
		}
		return nil
	}
	var core metav1.APIVersions
	if err := get("/api", &core); err != nil {
		return nil, err
	}
	for _, v := range core.Versions {
		if err := add(schema.GroupVersion{Version: v}); err != nil {
			return nil, err
		}
	}
	var groups metav1.APIGroupList
	if err := get("/apis", &groups); err != nil {
		return nil, err
	}
	for _, g := range groups.Groups {
		gv, err := schema.ParseGroupVersion(g.PreferredVersion.GroupVersion)
		if err != nil {
			return nil, fmt.Errorf("discovery: group %s: %w", g.Name, err)
		}
		if err := add(gv); err != nil {
			return nil, err
		}
	}
	e.mapper = m
	return m, nil
}

func discoveryPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "/api/" + gv.Version
	}
	return "/apis/" + gv.Group + "/" + gv.Version
}

// errNoResourceType is kubectl's wording for an unknown resource type.
func errNoResourceType(arg string) error {
	return fmt.Errorf("the server doesn't have a resource type %q (see `ctl api-resources`)", arg)
}

// resources resolves one resource argument. Categories ("all") expand to
// several resources.
func (m *mapper) resources(arg string) ([]*mapping, error) {
	a := strings.ToLower(strings.TrimSpace(arg))
	if a == "" {
		return nil, fmt.Errorf("empty resource type")
	}
	// A name with a group: "deployments.apps", "deploy.apps",
	// "deployments.v1.apps".
	name, group, version := a, "", ""
	if i := strings.IndexByte(a, '.'); i >= 0 {
		name, group = a[:i], a[i+1:]
		if j := strings.IndexByte(group, '.'); j >= 0 {
			if v := group[:j]; len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
				version, group = v, group[j+1:]
			}
		}
	}
	match := func(r *mapping) bool {
		if group != "" && r.Group != group {
			return false
		}
		if version != "" && r.Version != version {
			return false
		}
		if r.Resource == name || r.Singular == name || strings.ToLower(r.Kind) == name {
			return true
		}
		for _, s := range r.ShortNames {
			if s == name {
				return true
			}
		}
		return false
	}
	var out []*mapping
	for _, r := range m.all {
		if match(r) {
			out = append(out, r)
			break // the first (preferred) match wins, as in kubectl
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if group == "" {
		for _, r := range m.all {
			for _, c := range r.Categories {
				if c == name {
					out = append(out, r)
				}
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, errNoResourceType(arg)
}

// resource resolves an argument that must name exactly one resource.
func (m *mapper) resource(arg string) (*mapping, error) {
	ms, err := m.resources(arg)
	if err != nil {
		return nil, err
	}
	if len(ms) != 1 {
		return nil, fmt.Errorf("%q names %d resource types; name one type here", arg, len(ms))
	}
	return ms[0], nil
}

// forKind finds the resource serving a manifest's apiVersion and kind.
func (m *mapper) forKind(gvk schema.GroupVersionKind) (*mapping, error) {
	for _, r := range m.all {
		if r.Group == gvk.Group && r.Version == gvk.Version && r.Kind == gvk.Kind {
			return r, nil
		}
	}
	for _, r := range m.all {
		if r.Group == gvk.Group && r.Kind == gvk.Kind {
			return nil, fmt.Errorf("no matches for kind %q in version %q: the server serves it as %s",
				gvk.Kind, gvk.GroupVersion().String(), r.GroupVersion().String())
		}
	}
	return nil, fmt.Errorf("no matches for kind %q in version %q: the server does not serve it (see `ctl api-resources`)",
		gvk.Kind, gvk.GroupVersion().String())
}

package apiserver

import (
	"net/http"
	"runtime"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	"github.com/minik8s/minik8s/apiserver/registry"
	"github.com/minik8s/minik8s/apiserver/rest"
)

// Version is what /version reports. The minor version is the Kubernetes
// API level whose paths, JSON and semantics minik8s follows.
var Version = version.Info{
	Major: "1", Minor: "32", GitVersion: "v1.32.0-minik8s", GitCommit: "", GitTreeState: "clean",
	GoVersion: runtime.Version(), Compiler: runtime.Compiler, Platform: runtime.GOOS + "/" + runtime.GOARCH,
}

// discovery serves /api, /apis and the per-group-version resource lists
// that clients (kubectl, client-go) read to learn which resources exist,
// their verbs, scopes and short names.
type discovery struct {
	resources []*registry.Resource
}

// verbsFor lists the verbs a resource supports.
func verbsFor(r *registry.Resource) metav1.Verbs {
	if r.CreateOnly {
		return metav1.Verbs{"create"}
	}
	return metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
}

func (d *discovery) resourceList(group, version string) *metav1.APIResourceList {
	gv := metav1.GroupVersion{Group: group, Version: version}.String()
	list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv}
	for _, r := range d.resources {
		if r.Group != group || r.Version != version {
			continue
		}
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: r.Resource, SingularName: r.Singular, Namespaced: r.Namespaced, Kind: r.Kind,
			Verbs: verbsFor(r), ShortNames: r.ShortNames, Categories: r.Categories,
		})
		sub := func(name, kind string, verbs ...string) {
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: r.Resource + "/" + name, Namespaced: r.Namespaced, Kind: kind, Verbs: verbs})
		}
		if r.HasStatus {
			sub("status", r.Kind, "get", "patch", "update")
		}
		if r.Scale != nil {
			i := len(list.APIResources)
			sub("scale", "Scale", "get", "patch", "update")
			list.APIResources[i].Group, list.APIResources[i].Version = "autoscaling", "v1"
		}
		if r.Binder != nil {
			sub("binding", "Binding", "create")
			// policy/v1 Eviction (rest/eviction.go): kubectl drain finds the
			// subresource's group and version here and then evicts instead
			// of deleting. There are no PodDisruptionBudgets, hence no policy
			// group of resources in /apis.
			i := len(list.APIResources)
			sub("eviction", "Eviction", "create")
			list.APIResources[i].Group, list.APIResources[i].Version = "policy", "v1"
			// Served by the pod's kubelet through the API server (podproxy.go).
			sub("log", "Pod", "get")
			sub("exec", "PodExecOptions", "create", "get")
			sub("attach", "PodAttachOptions", "create", "get")
			sub("portforward", "PodPortForwardOptions", "create", "get")
		}
		if r.Finalize != nil {
			sub("finalize", r.Kind, "update")
		}
	}
	return list
}

// groups returns the named API groups (everything but the legacy core group).
func (d *discovery) groups() *metav1.APIGroupList {
	out := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	seen := map[string]int{}
	for _, r := range d.resources {
		if r.Group == "" {
			continue
		}
		gv := metav1.GroupVersionForDiscovery{GroupVersion: r.Group + "/" + r.Version, Version: r.Version}
		i, ok := seen[r.Group]
		if !ok {
			seen[r.Group] = len(out.Groups)
			out.Groups = append(out.Groups, metav1.APIGroup{Name: r.Group, PreferredVersion: gv,
				Versions: []metav1.GroupVersionForDiscovery{gv}})
			continue
		}
		g := &out.Groups[i]
		found := false
		for _, v := range g.Versions {
			found = found || v.Version == r.Version
		}
		if !found {
			g.Versions = append(g.Versions, gv)
		}
	}
	return out
}

// ServeHTTP answers discovery paths; it returns false for anything else.
func (d *discovery) serve(w http.ResponseWriter, r *http.Request) bool {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch {
	case len(parts) == 1 && parts[0] == "api":
		rest.WriteJSON(w, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}})
	case len(parts) == 2 && parts[0] == "api" && parts[1] == "v1":
		rest.WriteJSON(w, d.resourceList("", "v1"))
	case len(parts) == 1 && parts[0] == "apis":
		rest.WriteJSON(w, d.groups())
	case len(parts) == 2 && parts[0] == "apis":
		for _, g := range d.groups().Groups {
			if g.Name == parts[1] {
				g.Kind, g.APIVersion = "APIGroup", "v1"
				rest.WriteJSON(w, &g)
				return true
			}
		}
		return false
	case len(parts) == 3 && parts[0] == "apis":
		l := d.resourceList(parts[1], parts[2])
		if len(l.APIResources) == 0 {
			return false
		}
		rest.WriteJSON(w, l)
	case len(parts) == 1 && parts[0] == "version":
		rest.WriteJSON(w, &Version)
	default:
		return false
	}
	return true
}

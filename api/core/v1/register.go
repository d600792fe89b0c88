package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of the core types; Kubernetes calls it the
// legacy group and spells it as the empty string.
const GroupName = ""

// SchemeGroupVersion is the group/version these types are served under.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1"}

// Kind returns a GroupKind in this group for the given kind.
func Kind(kind string) schema.GroupKind {
	return SchemeGroupVersion.WithKind(kind).GroupKind()
}

// Resource returns a GroupResource in this group for the given resource.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

var (
	// SchemeBuilder collects the functions that register this group's types.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme registers every type of this group/version with a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&Namespace{}, &NamespaceList{},
		&Pod{}, &PodList{},
		&Service{}, &ServiceList{},
		&Endpoints{}, &EndpointsList{},
		&ConfigMap{}, &ConfigMapList{},
		&Secret{}, &SecretList{},
		&Node{}, &NodeList{},
		&Event{}, &EventList{},
		&Binding{},
	)
	// The core group shares "v1" with meta.k8s.io's unversioned types
	// (Status, DeleteOptions, ListOptions, WatchEvent ...), so they are
	// registered here too, exactly as Kubernetes does for its legacy group.
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}

package cacher

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik8s/minik8s/apiserver/storage"
)

// withAttrs fills in a predicate that has selectors but no GetAttrs (which
// would otherwise be a nil call) with the attributes every object has:
// its labels, metadata.name and metadata.namespace.
func withAttrs(p storage.Predicate) storage.Predicate {
	if p.GetAttrs == nil && !p.Empty() {
		p.GetAttrs = metaAttrs
	}
	return p
}

func metaAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("selector attributes: %w", err)
	}
	return labels.Set(acc.GetLabels()), fields.Set{
		"metadata.name":      acc.GetName(),
		"metadata.namespace": acc.GetNamespace(),
	}, nil
}

package informer

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// DeletedFinalStateUnknown is handed to DeleteFunc when an object vanished
// while the informer was not watching (it re-listed after a 410 and the
// object was gone): Obj is the last state the informer saw, which may be
// stale. Handlers should unwrap it (see ObjectOf).
type DeletedFinalStateUnknown struct {
	Key string
	Obj runtime.Object
}

// MetaNamespaceKeyFunc returns "namespace/name", or "name" for
// cluster-scoped objects. It accepts tombstones and returns their key.
func MetaNamespaceKeyFunc(obj any) (string, error) {
	switch o := obj.(type) {
	case DeletedFinalStateUnknown:
		return o.Key, nil
	case *DeletedFinalStateUnknown:
		return o.Key, nil
	case string:
		// Already a key: lets handlers pass keys and objects alike.
		return o, nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", fmt.Errorf("object %T has no metadata: %w", obj, err)
	}
	if m.GetName() == "" {
		return "", fmt.Errorf("object %T has no name", obj)
	}
	if ns := m.GetNamespace(); ns != "" {
		return ns + "/" + m.GetName(), nil
	}
	return m.GetName(), nil
}

// SplitMetaNamespaceKey splits a key made by MetaNamespaceKeyFunc.
func SplitMetaNamespaceKey(key string) (namespace, name string, err error) {
	parts := strings.Split(key, "/")
	switch {
	case len(parts) == 1 && parts[0] != "":
		return "", parts[0], nil
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return parts[0], parts[1], nil
	}
	return "", "", fmt.Errorf("unexpected key format %q: want \"name\" or \"namespace/name\"", key)
}

// ObjectOf returns obj as T, unwrapping a DeletedFinalStateUnknown. ok is
// false when obj is neither a T nor a tombstone holding one.
func ObjectOf[T runtime.Object](obj any) (t T, ok bool) {
	switch o := obj.(type) {
	case T:
		return o, true
	case DeletedFinalStateUnknown:
		t, ok = o.Obj.(T)
		return t, ok
	case *DeletedFinalStateUnknown:
		t, ok = o.Obj.(T)
		return t, ok
	}
	return t, false
}

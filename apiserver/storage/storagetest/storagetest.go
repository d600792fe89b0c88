// Package storagetest holds a tiny API type (Widget) and helpers that
// storage tests share: a scheme and codec for it, an AttrFunc, and a
// key layout like the real registry's. It exists only for tests; no
// production code may import it.
package storagetest

import (
	"fmt"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
)

// GroupVersion of the test type.
var GroupVersion = schema.GroupVersion{Group: "test.minik8s.io", Version: "v1"}

// Prefix is the key prefix Widgets live under.
const Prefix = "/registry/widgets/"

// Widget is a namespaced test object.
type Widget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              WidgetSpec `json:"spec"`
}

// WidgetSpec is the Widget's payload.
type WidgetSpec struct {
	Color string `json:"color,omitempty"`
	Count int    `json:"count"`
	Note  string `json:"note,omitempty"`
}

// WidgetList is a list of Widgets.
type WidgetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Widget `json:"items"`
}

// DeepCopyObject copies everything, including the maps and slices in
// ObjectMeta (ObjectMeta.DeepCopyInto does that part).
func (w *Widget) DeepCopyObject() runtime.Object {
	if w == nil {
		return nil
	}
	out := new(Widget)
	out.TypeMeta = w.TypeMeta
	w.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec = w.Spec
	return out
}

// DeepCopyObject copies the list and every item.
func (l *WidgetList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	out := new(WidgetList)
	out.TypeMeta = l.TypeMeta
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]Widget, len(l.Items))
		for i := range l.Items {
			out.Items[i] = *l.Items[i].DeepCopyObject().(*Widget)
		}
	}
	return out
}

// NewScheme returns a scheme knowing Widget and WidgetList.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	s.AddKnownTypes(GroupVersion, &Widget{}, &WidgetList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return s
}

// Codec encodes Widgets as JSON with apiVersion/kind set.
func Codec() runtime.Codec {
	return serializer.NewCodecFactory(NewScheme()).LegacyCodec(GroupVersion)
}

// NewFunc and NewListFunc are the constructors stores need.
func NewFunc() runtime.Object     { return &Widget{} }
func NewListFunc() runtime.Object { return &WidgetList{} }

// Attrs exposes labels and the fields metadata.name, metadata.namespace and
// spec.color for selectors.
func Attrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	w, ok := obj.(*Widget)
	if !ok {
		return nil, nil, fmt.Errorf("storagetest: not a Widget: %T", obj)
	}
	return labels.Set(w.Labels), fields.Set{
		"metadata.name":      w.Name,
		"metadata.namespace": w.Namespace,
		"spec.color":         w.Spec.Color,
	}, nil
}

// Key is the etcd key of a Widget.
func Key(namespace, name string) string { return Prefix + namespace + "/" + name }

// New builds a Widget.
func New(namespace, name, color string, count int) *Widget {
	return &Widget{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: types.UID("uid-" + namespace + "-" + name)},
		Spec:       WidgetSpec{Color: color, Count: count},
	}
}

// RV parses an object's resourceVersion.
func RV(obj metav1.Object) (int64, error) {
	return strconv.ParseInt(obj.GetResourceVersion(), 10, 64)
}

package registry

import (
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("object %T has no metadata: %w", obj, err)
	}
	return m, nil
}

// structField returns the addressable field name of the struct behind obj
// (a pointer to a struct), or an invalid Value if there is none. The
// spec/status split is the same shape in every kind, so one reflective
// helper serves them all instead of one hand-written copy per kind.
func structField(obj runtime.Object, name string) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v.Elem().FieldByName(name)
}

// ResetStatus zeroes obj.Status (clients may not set status on create).
func ResetStatus(obj runtime.Object) {
	if f := structField(obj, "Status"); f.IsValid() && f.CanSet() {
		f.Set(reflect.Zero(f.Type()))
	}
}

// copyField sets dst.<name> = src.<name> (deep-copied by the caller's
// choice of src: callers pass an object they own).
func copyField(dst, src runtime.Object, name string) {
	d, s := structField(dst, name), structField(src, name)
	if d.IsValid() && s.IsValid() && d.CanSet() {
		d.Set(s)
	}
}

// specChanged reports whether the spec differs semantically.
func specChanged(a, b runtime.Object) bool {
	sa, sb := structField(a, "Spec"), structField(b, "Spec")
	if !sa.IsValid() || !sb.IsValid() {
		return false
	}
	return !equality.Semantic.DeepEqual(sa.Interface(), sb.Interface())
}

// PrepareCreate stamps server-owned metadata on a new object and applies
// the kind's create rules. now is passed in so tests are deterministic.
func (r *Resource) PrepareCreate(obj runtime.Object, now metav1.Time) error {
	m, err := metaOf(obj)
	if err != nil {
		return err
	}
	m.SetUID(uuid.NewUUID())
	m.SetCreationTimestamp(now)
	m.SetResourceVersion("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetManagedFields(nil)
	m.SetSelfLink("")
	if r.HasStatus {
		m.SetGeneration(1)
	} else {
		m.SetGeneration(0)
	}
	if !r.Namespaced {
		m.SetNamespace("")
	}
	r.Strategy.PrepareForCreate(obj)
	return nil
}

// PrepareUpdate carries server-owned fields from the stored object oldObj
// into the incoming newObj: identity and deletion state never change through
// an update, status only changes through /status, and generation counts
// spec changes.
func (r *Resource) PrepareUpdate(newObj, oldObj runtime.Object) error {
	nm, err := metaOf(newObj)
	if err != nil {
		return err
	}
	om, err := metaOf(oldObj)
	if err != nil {
		return err
	}
	nm.SetUID(om.GetUID())
	nm.SetCreationTimestamp(om.GetCreationTimestamp())
	nm.SetDeletionTimestamp(om.GetDeletionTimestamp())
	nm.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	nm.SetGeneration(om.GetGeneration())
	nm.SetManagedFields(nil)
	nm.SetSelfLink("")
	if !r.Namespaced {
		nm.SetNamespace("")
	}
	if r.HasStatus {
		copyField(newObj, oldObj.DeepCopyObject(), "Status")
		if specChanged(newObj, oldObj) {
			nm.SetGeneration(om.GetGeneration() + 1)
		}
	}
	r.Strategy.PrepareForUpdate(newObj, oldObj)
	return nil
}

// StatusUpdate builds what a /status write stores: the stored object with
// only its status replaced. Labels, annotations, spec and everything else
// a client sends along are ignored, as in Kubernetes.
func (r *Resource) StatusUpdate(incoming, stored runtime.Object) runtime.Object {
	out := stored.DeepCopyObject()
	copyField(out, incoming, "Status")
	return out
}

// ValidateCreate runs the kind's validation.
func (r *Resource) ValidateCreate(obj runtime.Object) field.ErrorList {
	return r.Strategy.Validate(obj)
}

// ValidateUpdate runs the kind's update validation; status is true for
// writes through the /status subresource.
func (r *Resource) ValidateUpdate(newObj, oldObj runtime.Object, status bool) field.ErrorList {
	if status {
		return r.Strategy.ValidateStatusUpdate(newObj, oldObj)
	}
	return r.Strategy.ValidateUpdate(newObj, oldObj)
}

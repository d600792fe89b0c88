package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik8s/minik8s/api/validation"
)

// baseStrategy validates with package api/validation and changes nothing
// on create/update. Kinds embed it and override what is special to them.
type baseStrategy struct{}

func (baseStrategy) PrepareForCreate(runtime.Object)                {}
func (baseStrategy) PrepareForUpdate(newObj, oldObj runtime.Object) {}
func (baseStrategy) Validate(obj runtime.Object) field.ErrorList {
	return validation.ValidateCreate(obj)
}
func (baseStrategy) ValidateUpdate(newObj, oldObj runtime.Object) field.ErrorList {
	return validation.ValidateUpdate(newObj, oldObj)
}
func (baseStrategy) ValidateStatusUpdate(newObj, oldObj runtime.Object) field.ErrorList {
	return validation.ValidateStatusUpdate(newObj, oldObj)
}

// statusResetStrategy clears status on create: status is written by
// controllers through /status, never by the creator.
type statusResetStrategy struct{ baseStrategy }

func (statusResetStrategy) PrepareForCreate(obj runtime.Object) { ResetStatus(obj) }

package rest

import (
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	autoscalingv1 "github.com/minik8s/minik8s/api/autoscaling/v1"
	"github.com/minik8s/minik8s/apiserver/registry"
)

var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// scaleOf builds the autoscaling/v1 Scale view of a Deployment or ReplicaSet.
func scaleOf(res *registry.Resource, obj runtime.Object) *autoscalingv1.Scale {
	m, _ := meta.Accessor(obj)
	spec, status, selector := res.Scale.Get(obj)
	return &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{Kind: "Scale", APIVersion: "autoscaling/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp()},
		Spec:   autoscalingv1.ScaleSpec{Replicas: spec},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: selector},
	}
}

// serveScale handles GET/PUT/PATCH on .../{name}/scale: the Scale object
// is a view; writes change the parent's spec.replicas, guarded by the
// Scale's resourceVersion (= the parent's).
func (a *API) serveScale(w http.ResponseWriter, r *http.Request, res *registry.Resource, ri requestInfo) error {
	switch ri.Verb {
	case "get":
		obj := res.New()
		if err := a.Storage(res).Get(r.Context(), res.Key(ri.Namespace, ri.Name), obj); err != nil {
			return toStatusError(res, ri.Name, err)
		}
		writeJSON(w, http.StatusOK, scaleOf(res, obj))
		return nil
	case "update", "patch":
	default:
		return notSupported(res, ri)
	}
	var (
		body []byte
		err  error
	)
	if ri.Verb == "update" {
		body, err = readBody(r)
	} else {
		body, err = readRawBody(r)
	}
	if err != nil {
		return err
	}
	pt, err := patchType(r)
	if ri.Verb == "patch" && err != nil {
		return err
	}
	main := ri
	main.Subresource = ""
	out, err := a.updateWith(r, res, main, func(current runtime.Object) (runtime.Object, error) {
		want := &autoscalingv1.Scale{}
		if ri.Verb == "update" {
			if err := a.decodeInto(w, r, body, scaleGVK, want); err != nil {
				return nil, err
			}
			if err := checkName(want.Name, ri.Name); err != nil {
				return nil, err
			}
		} else {
			if _, err := a.applyPatch(w, r, res, scaleGVK, pt, body, scaleOf(res, current), want); err != nil {
				return nil, err
			}
		}
		if want.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), ri.Name, field.ErrorList{
				field.Invalid(field.NewPath("spec", "replicas"), want.Spec.Replicas, "must be greater than or equal to 0")})
		}
		m, _ := meta.Accessor(current)
		m.SetResourceVersion(want.ResourceVersion) // "" = unconditional
		res.Scale.Set(current, want.Spec.Replicas)
		return current, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, scaleOf(res, out))
	return nil
}

// bindPod handles POST pods/{name}/binding (and the older POST bindings):
// the scheduler's way to set spec.nodeName, which is otherwise immutable.
func (a *API) bindPod(w http.ResponseWriter, r *http.Request, res *registry.Resource, ri requestInfo) error {
	pods := a.Lookup("", "v1", "pods")
	if pods == nil || pods.Binder == nil {
		return notSupported(res, ri)
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	binding := pods.Binder.New()
	bgvk := pods.GroupVersion().WithKind("Binding")
	if err := a.decodeInto(w, r, data, bgvk, binding); err != nil {
		return err
	}
	bm, _ := meta.Accessor(binding)
	name := ri.Name
	if name == "" { // POST /namespaces/{ns}/bindings names the pod in the body
		name = bm.GetName()
	} else if bm.GetName() != "" {
		if err := checkName(bm.GetName(), name); err != nil {
			return err
		}
	}
	target := requestInfo{Namespace: ri.Namespace, Name: name, Resource: "pods", Verb: "update", Subresource: "binding"}
	_, err = a.updateWith(r, pods, target, func(current runtime.Object) (runtime.Object, error) {
		if err := pods.Binder.Apply(current, binding, a.now()); err != nil {
			return nil, err
		}
		return current, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status: metav1.StatusSuccess, Code: http.StatusCreated})
	return nil
}

package rest

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik8s/minik8s/apiserver/registry"
	"github.com/minik8s/minik8s/apiserver/storage"
)

// isDryRun reads ?dryRun=All: run every check, store nothing.
func isDryRun(r *http.Request) (bool, error) {
	vals := r.URL.Query()["dryRun"]
	for _, v := range vals {
		if v != "All" {
			return false, apierrors.NewBadRequest(fmt.Sprintf("dryRun: unsupported value %q: the only supported value is All", v))
		}
	}
	return len(vals) > 0, nil
}

// errDryRun aborts a storage update after all checks passed.
type errDryRun struct{ obj runtime.Object }

func (errDryRun) Error() string { return "dry run" }

func (a *API) create(w http.ResponseWriter, r *http.Request, res *registry.Resource, ri requestInfo) error {
	dryRun, err := isDryRun(r)
	if err != nil {
		return err
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	obj := res.New()
	if err := a.decodeInto(w, r, data, gvkOf(res), obj); err != nil {
		return err
	}
	a.Scheme.Default(obj)
	m, _ := meta.Accessor(obj)
	if err := checkNamespace(res, m.GetNamespace(), ri.Namespace); err != nil {
		return err
	}
	if res.Namespaced {
		m.SetNamespace(ri.Namespace)
	}
	generated := false
	if m.GetName() == "" {
		if m.GetGenerateName() == "" {
			return apierrors.NewInvalid(res.GroupKind(), "", field.ErrorList{
				field.Required(field.NewPath("metadata", "name"), "name or generateName is required")})
		}
		generated = true
	}
	// A generated name can collide; Kubernetes retries with a fresh suffix.
	for attempt := 0; ; attempt++ {
		if generated {
			m.SetName(m.GetGenerateName() + utilrand.String(5))
		}
		out, err := a.createOne(r.Context(), res, obj, dryRun)
		if err != nil && generated && apierrors.IsAlreadyExists(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return err
		}
		return a.writeObject(w, r, res, http.StatusCreated, out)
	}
}

// createOne runs the create pipeline on a decoded, defaulted object.
func (a *API) createOne(ctx context.Context, res *registry.Resource, obj runtime.Object, dryRun bool) (runtime.Object, error) {
	if err := res.PrepareCreate(obj, a.now()); err != nil {
		return nil, err
	}
	m, _ := meta.Accessor(obj)
	if errs := res.ValidateCreate(obj); len(errs) > 0 {
		return nil, apierrors.NewInvalid(res.GroupKind(), m.GetName(), errs)
	}
	if res.Namespaced && a.Namespaces != nil {
		if err := a.Namespaces.Admit(ctx, m.GetNamespace()); err != nil {
			return nil, err
		}
	}
	h := a.Hooks[res.GroupResource().String()]
	if dryRun {
		// A dry run writes nothing, not even an allocation, but fails
		// where the real create would: on a name that is taken, too.
		if err := a.Storage(res).Get(ctx, res.Key(m.GetNamespace(), m.GetName()), res.New()); err == nil {
			return nil, apierrors.NewAlreadyExists(res.GroupResource(), m.GetName())
		} else if !storage.IsNotFound(err) {
			return nil, toStatusError(res, m.GetName(), err)
		}
		if h.CheckCreate != nil {
			if err := h.CheckCreate(ctx, obj); err != nil {
				return nil, err
			}
		}
		return obj, nil
	}
	undo := func() {}
	if h.BeforeCreate != nil {
		u, err := h.BeforeCreate(ctx, obj)
		if err != nil {
			return nil, err
		}
		undo = u
	}
	out := res.New()
	if err := a.Storage(res).Create(ctx, res.Key(m.GetNamespace(), m.GetName()), obj, out); err != nil {
		undo()
		return nil, toStatusError(res, m.GetName(), err)
	}
	return out, nil
}

// checkNamespace rejects a body whose namespace disagrees with the URL.
func checkNamespace(res *registry.Resource, inBody, inURL string) error {
	if res.Namespaced && inBody != "" && inBody != inURL {
		return apierrors.NewBadRequest(fmt.Sprintf(
			"metadata.namespace: the namespace of the provided object (%q) does not match the namespace sent on the request (%q)", inBody, inURL))
	}
	return nil
}

func checkName(inBody, inURL string) error {
	if inBody != inURL {
		return apierrors.NewBadRequest(fmt.Sprintf(
			"metadata.name: the name of the object (%q) does not match the name on the URL (%q)", inBody, inURL))
	}
	return nil
}

func (a *API) update(w http.ResponseWriter, r *http.Request, res *registry.Resource, ri requestInfo) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	in := res.New()
	if err := a.decodeInto(w, r, data, gvkOf(res), in); err != nil {
		return err
	}
	a.Scheme.Default(in)
	m, _ := meta.Accessor(in)
	if err := checkName(m.GetName(), ri.Name); err != nil {
		return err
	}
	if err := checkNamespace(res, m.GetNamespace(), ri.Namespace); err != nil {
		return err
	}
	if res.Namespaced {
		m.SetNamespace(ri.Namespace)
	}
	out, err := a.updateWith(r, res, ri, func(runtime.Object) (runtime.Object, error) {
		return in.DeepCopyObject(), nil
	})
	if err != nil {
		return err
	}
	return a.writeObject(w, r, res, http.StatusOK, out)
}

// updateWith is the one update pipeline behind PUT, PATCH and the status
// and finalize subresources. mutate turns the stored object into the
// client's desired object; updateWith then enforces resourceVersion
// preconditions, the spec/status split, validation and hooks, and retries
// on a lost compare-and-swap so concurrent writers never lose updates.
func (a *API) updateWith(r *http.Request, res *registry.Resource, ri requestInfo,
	mutate func(current runtime.Object) (runtime.Object, error)) (runtime.Object, error) {
	ctx := r.Context()
	dryRun, err := isDryRun(r)
	if err != nil {
		return nil, err
	}
	key := res.Key(ri.Namespace, ri.Name)
	hooks := a.Hooks[res.GroupResource().String()]
	var hookDone func(bool)
	finish := func(stored bool) {
		if hookDone != nil {
			hookDone(stored)
			hookDone = nil
		}
	}
	out := res.New()
	err = a.Storage(res).GuaranteedUpdate(ctx, key, out, nil, func(current runtime.Object) (runtime.Object, error) {
		finish(false) // a previous try lost the race
		desired, err := mutate(current.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		dm, err := meta.Accessor(desired)
		if err != nil {
			return nil, err
		}
		cm, _ := meta.Accessor(current)
		if rv := dm.GetResourceVersion(); rv != "" && rv != cm.GetResourceVersion() {
			return nil, apierrors.NewConflict(res.GroupResource(), ri.Name,
				errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		// A uid in the body is a precondition, as in Kubernetes: a client
		// writing to a pod that was deleted and recreated under the same
		// name gets a conflict instead of changing the new object.
		if uid := dm.GetUID(); uid != "" && uid != cm.GetUID() {
			return nil, apierrors.NewConflict(res.GroupResource(), ri.Name,
				fmt.Errorf("Precondition failed: UID in precondition: %s, UID in object meta: %s", uid, cm.GetUID()))
		}
		// No resourceVersion means an unconditional update: it applies to
		// whatever is stored now.
		dm.SetResourceVersion(cm.GetResourceVersion())
		switch ri.Subresource {
		case "status":
			desired = res.StatusUpdate(desired, current)
		case "finalize":
			desired = res.Finalize(desired, current)
		case "binding":
			// Binder.Apply has set spec.nodeName and the PodScheduled
			// condition and checked the binding's own rules; the generic
			// update rules (immutable spec, status only via /status) do not
			// apply to this one sanctioned change.
		default:
			if err := res.PrepareUpdate(desired, current); err != nil {
				return nil, err
			}
		}
		if ri.Subresource != "binding" {
			if errs := res.ValidateUpdate(desired, current, ri.Subresource == "status"); len(errs) > 0 {
				return nil, apierrors.NewInvalid(res.GroupKind(), ri.Name, errs)
			}
		}
		if dryRun {
			return nil, errDryRun{desired}
		}
		if ri.Subresource == "" && hooks.BeforeUpdate != nil {
			done, err := hooks.BeforeUpdate(ctx, desired, current)
			if err != nil {
				return nil, err
			}
			hookDone = done
		}
		return desired, nil
	}, nil)
	var dr errDryRun
	if errors.As(err, &dr) {
		return dr.obj, nil
	}
	finish(err == nil)
	if err != nil {
		return nil, toStatusError(res, ri.Name, err)
	}
	a.afterWrite(ctx, res, out)
	// Removing the last finalizer of an object whose deletion was already
	// requested completes the deletion.
	if a.readyToDelete(res, out) {
		m, _ := meta.Accessor(out)
		rv := m.GetResourceVersion()
		gone := res.New()
		if derr := a.Storage(res).Delete(ctx, key, gone, preconditionRV(rv), nil); derr == nil {
			a.afterDelete(ctx, res, gone)
		}
	}
	return out, nil
}

func (a *API) patch(w http.ResponseWriter, r *http.Request, res *registry.Resource, ri requestInfo) error {
	pt, err := patchType(r)
	if err != nil {
		return err
	}
	patch, err := readRawBody(r)
	if err != nil {
		return err
	}
	out, err := a.updateWith(r, res, ri, func(current runtime.Object) (runtime.Object, error) {
		return a.applyPatch(w, r, res, gvkOf(res), pt, patch, current, res.New())
	})
	if err != nil {
		return err
	}
	return a.writeObject(w, r, res, http.StatusOK, out)
}

// applyPatch applies a JSON, merge or strategic merge patch to current and
// decodes the result into into (with the request's fieldValidation).
func (a *API) applyPatch(w http.ResponseWriter, r *http.Request, res *registry.Resource, gvk schema.GroupVersionKind,
	pt types.PatchType, patch []byte, current, into runtime.Object) (runtime.Object, error) {
	current.GetObjectKind().SetGroupVersionKind(gvk)
	orig, err := jsonMarshal(current)
	if err != nil {
		return nil, err
	}
	var patched []byte
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid JSON patch: %v", err))
		}
		patched, err = p.Apply(orig)
		if err != nil {
			return nil, unprocessable(res, nameOf(current), fmt.Sprintf("the JSON patch could not be applied: %v", err))
		}
	case types.MergePatchType:
		patched, err = jsonpatch.MergePatch(orig, patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid merge patch: %v", err))
		}
	case types.StrategicMergePatchType:
		patched, err = strategicpatch.StrategicMergePatch(orig, patch, into.DeepCopyObject())
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid strategic merge patch: %v", err))
		}
	}
	if err := a.decodeInto(w, r, patched, gvk, into); err != nil {
		return nil, err
	}
	a.Scheme.Default(into)
	m, _ := meta.Accessor(into)
	cm, _ := meta.Accessor(current)
	if err := checkName(m.GetName(), cm.GetName()); err != nil {
		return nil, err
	}
	if m.GetNamespace() != cm.GetNamespace() {
		return nil, apierrors.NewBadRequest("metadata.namespace: the namespace of an object cannot be changed by a patch")
	}
	return into, nil
}

func nameOf(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return m.GetName()
}

// unprocessable is a 422 Invalid naming the patch and why it did not apply
// (as a cause, so kubectl prints it; a bare generic response loses it).
func unprocessable(res *registry.Resource, name, msg string) error {
	return apierrors.NewInvalid(res.GroupKind(), name, field.ErrorList{
		field.Invalid(field.NewPath("patch"), field.OmitValueType{}, msg)})
}

// patchType maps the Content-Type to a patch flavour. Server-side apply
// (application/apply-patch+yaml) is not implemented: `ctl apply` and
// `kubectl apply` use client-side three-way merges, which arrive here as
// strategic merge patches.
func patchType(r *http.Request) (types.PatchType, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch types.PatchType(ct) {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
		return types.PatchType(ct), nil
	}
	return "", apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", schema.GroupResource{}, "",
		fmt.Sprintf("the body of the request was in an unknown format (%q) - accepted media types include: "+
			"application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json "+
			"(server-side apply is not supported)", ct), 0, false)
}

// Create runs the create pipeline for an object built in code (the API
// server's own bootstrap objects), exactly as for a POST.
func (a *API) Create(ctx context.Context, res *registry.Resource, obj runtime.Object) (runtime.Object, error) {
	return a.createOne(ctx, res, obj, false)
}

func (a *API) afterWrite(ctx context.Context, res *registry.Resource, obj runtime.Object) {
	if h := a.Hooks[res.GroupResource().String()]; h.AfterWrite != nil {
		h.AfterWrite(ctx, obj)
	}
}

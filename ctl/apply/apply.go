// Package apply computes what `ctl apply` sends: a client-side three-way
// merge between the configuration applied last time (kept in the
// kubectl.kubernetes.io/last-applied-configuration annotation, exactly as
// kubectl keeps it, so the two tools interoperate), the configuration in the
// file now, and the live object.
//
// Fields in the file are set; fields that were in the last applied
// configuration but are gone from the file are removed; fields nobody
// applied (defaults, controller and other users' changes) are left alone.
//
// For kinds whose Go type is known (api/scheme) the patch is a strategic
// merge patch, built from the type's patchStrategy/patchMergeKey tags, so
// lists such as containers, ports and env merge by key instead of being
// replaced. For other kinds (custom resources) it is a JSON merge patch,
// as kubectl does. The package is pure: no I/O, no server.
package apply

import (
	"encoding/json"
	"fmt"
	"reflect"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"
	"k8s.io/apimachinery/pkg/util/mergepatch"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// Annotation holds the configuration applied last, as compact JSON.
const Annotation = "kubectl.kubernetes.io/last-applied-configuration"

// Modified returns the JSON of the object as apply wants it stored: obj
// with the annotation set to obj's own JSON (which leaves the annotation
// out). obj is not changed. The shapes match kubectl's byte for byte: an
// object without other annotations records "annotations":{}.
func Modified(obj *unstructured.Unstructured) ([]byte, error) {
	o := obj.DeepCopy()
	annots := o.GetAnnotations()
	if annots == nil {
		annots = map[string]string{}
	}
	delete(annots, Annotation)
	o.SetAnnotations(annots)
	self, err := o.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", describe(obj), err)
	}
	annots[Annotation] = string(self)
	o.SetAnnotations(annots)
	out, err := o.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", describe(obj), err)
	}
	return out, nil
}

// Original is the last applied configuration stored on live, or nil when
// the object was never applied (made by create, or by another tool).
func Original(live *unstructured.Unstructured) []byte {
	if s, ok := live.GetAnnotations()[Annotation]; ok && s != "" {
		return []byte(s)
	}
	return nil
}

// Patch returns the patch taking current (the live object's JSON) to the
// state modified asks for, deleting what original had and modified no
// longer has. typed is an empty object of the kind's Go type for a
// strategic merge patch, or nil for a JSON merge patch. An empty patch is
// "{}". The patch refuses to change apiVersion, kind or metadata.name.
func Patch(original, modified, current []byte, typed runtime.Object) ([]byte, types.PatchType, error) {
	pre := []mergepatch.PreconditionFunc{
		mergepatch.RequireKeyUnchanged("apiVersion"),
		mergepatch.RequireKeyUnchanged("kind"),
		mergepatch.RequireMetadataKeyUnchanged("name"),
	}
	if typed == nil {
		p, err := jsonmergepatch.CreateThreeWayJSONMergePatch(original, modified, current, pre...)
		if err != nil {
			return nil, "", explain(err)
		}
		return p, types.MergePatchType, nil
	}
	meta, err := strategicpatch.NewPatchMetaFromStruct(typed)
	if err != nil {
		return nil, "", fmt.Errorf("patch metadata for %T: %w", typed, err)
	}
	p, err := strategicpatch.CreateThreeWayMergePatch(original, modified, current, meta, true, pre...)
	if err != nil {
		return nil, "", explain(err)
	}
	return p, types.StrategicMergePatchType, nil
}

// Apply applies a patch made by Patch to current, as the server will;
// diff and tests use it to show the outcome.
func Apply(current, patch []byte, pt types.PatchType, typed runtime.Object) ([]byte, error) {
	switch pt {
	case types.StrategicMergePatchType:
		return strategicpatch.StrategicMergePatch(current, patch, typed)
	case types.MergePatchType:
		return jsonpatch.MergePatch(current, patch)
	}
	return nil, fmt.Errorf("unsupported patch type %q", pt)
}

// Changes reports whether patch changes current at all. A strategic patch
// may carry only ordering directives ($setElementOrder) that leave the
// object as it is; apply then reports "unchanged" and sends nothing.
func Changes(current, patch []byte, pt types.PatchType, typed runtime.Object) (bool, error) {
	if IsEmpty(patch) {
		return false, nil
	}
	out, err := Apply(current, patch, pt, typed)
	if err != nil {
		return false, err
	}
	var a, b any
	if err := json.Unmarshal(current, &a); err != nil {
		return false, err
	}
	if err := json.Unmarshal(out, &b); err != nil {
		return false, err
	}
	return !reflect.DeepEqual(a, b), nil
}

// IsEmpty reports whether a patch is "{}".
func IsEmpty(patch []byte) bool {
	var m map[string]any
	if err := json.Unmarshal(patch, &m); err != nil {
		return false
	}
	return len(m) == 0
}

func explain(err error) error {
	if mergepatch.IsPreconditionFailed(err) {
		return fmt.Errorf("apply cannot change apiVersion, kind or metadata.name of an existing object (%v); delete and re-create it instead", err)
	}
	return err
}

func describe(obj *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s", obj.GetKind(), obj.GetName())
}

package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Claimer sorts the objects a controller could manage (pods for a
// ReplicaSet, ReplicaSets for a Deployment) into those it controls. An
// object is controlled through its controller ownerReference; orphans whose
// labels match the selector are adopted, and objects that stop matching
// are released, as Kubernetes does.
type Claimer[T metav1.Object] struct {
	// Owner is the controller object (from the cache).
	Owner metav1.Object
	// Selector is Owner's label selector.
	Selector labels.Selector
	// CanAdopt is called once, before the first adoption, and should read
	// Owner fresh from the API server: a cached owner may already have
	// been deleted, and adopting for it would hand objects to a ghost.
	CanAdopt func(ctx context.Context) error
	// Adopt and Release write the ownerReference change (see AdoptPatch and
	// ReleasePatch).
	Adopt, Release func(ctx context.Context, obj T) error
}

// Claim returns the candidates Owner controls after adoptions and
// releases. Errors from individual adoptions or releases are joined; the
// objects that were claimed are returned either way.
func (c *Claimer[T]) Claim(ctx context.Context, candidates []T) ([]T, error) {
	var (
		claimed   []T
		errs      []error
		checked   bool
		adoptable error
	)
	beingDeleted := c.Owner.GetDeletionTimestamp() != nil
	for _, obj := range candidates {
		matches := c.Selector.Matches(labels.Set(obj.GetLabels()))
		if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
			if ref.UID != c.Owner.GetUID() {
				continue // someone else's
			}
			if matches {
				claimed = append(claimed, obj)
				continue
			}
			if beingDeleted {
				continue // the garbage collector will handle it
			}
			if err := c.Release(ctx, obj); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
				errs = append(errs, fmt.Errorf("release %s: %w", obj.GetName(), err))
			}
			continue
		}
		if !matches || beingDeleted || obj.GetDeletionTimestamp() != nil {
			continue
		}
		if !checked {
			checked = true
			if c.CanAdopt != nil {
				adoptable = c.CanAdopt(ctx)
			}
			if adoptable != nil {
				errs = append(errs, adoptable)
			}
		}
		if adoptable != nil {
			continue
		}
		if err := c.Adopt(ctx, obj); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("adopt %s: %w", obj.GetName(), err))
			}
			continue
		}
		claimed = append(claimed, obj)
	}
	return claimed, errors.Join(errs...)
}

// RecheckOwner is the usual CanAdopt: fresh is Owner as read from the API
// server just now; adoption is refused if it is a different object (same
// name, new UID) or is being deleted.
func RecheckOwner(fresh metav1.Object, err error, uid types.UID) error {
	if err != nil {
		return fmt.Errorf("cannot adopt: re-reading owner: %w", err)
	}
	if fresh.GetUID() != uid {
		return fmt.Errorf("cannot adopt: owner %s/%s was recreated (uid %s, expected %s)",
			fresh.GetNamespace(), fresh.GetName(), fresh.GetUID(), uid)
	}
	if fresh.GetDeletionTimestamp() != nil {
		return fmt.Errorf("cannot adopt: owner %s/%s is being deleted", fresh.GetNamespace(), fresh.GetName())
	}
	return nil
}

// NewControllerRef is the ownerReference a controller puts on what it
// creates or adopts: controller=true, and blockOwnerDeletion=true so a
// foreground deletion of the owner waits for it.
func NewControllerRef(owner metav1.Object, gvk schema.GroupVersionKind) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{
		APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind,
		Name: owner.GetName(), UID: owner.GetUID(),
		Controller: &yes, BlockOwnerDeletion: &yes,
	}
}

// AdoptPatch is a strategic merge patch adding owner as the controller of
// an object; ownerReferences merge by uid, so other references stay.
func AdoptPatch(owner metav1.Object, gvk schema.GroupVersionKind) []byte {
	ref := NewControllerRef(owner, gvk)
	data, _ := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{ref}}})
	return data
}

// ReleasePatch is a strategic merge patch removing the ownerReference
// with uid from an object.
func ReleasePatch(uid types.UID) []byte {
	data, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []map[string]any{{"$patch": "delete", "uid": string(uid)}}}})
	return data
}

package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik8s/minik8s/apiserver/registry"
	"github.com/minik8s/minik8s/apiserver/storage"
)

// Finalizers the API server adds for a propagation policy; the garbage
// collector removes them once dependents are handled.
const (
	finalizerOrphan     = metav1.FinalizerOrphanDependents
	finalizerForeground = metav1.FinalizerDeleteDependents
)

// deleteOptions reads DeleteOptions from the body (kubectl sends them
// there) or from query parameters (curl users do).
func deleteOptions(r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	data, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, opts); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("DeleteOptions: %v", jsonErr(err)))
		}
	}
	q := r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("gracePeriodSeconds: invalid value %q", v))
		}
		opts.GracePeriodSeconds = &n
	}
	if v := q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if v := q.Get("orphanDependents"); v != "" {
		b := v == "true"
		opts.OrphanDependents = &b
	}
	if err := checkDeleteOptions(opts, ""); err != nil {
		return nil, err
	}
	return opts, nil
}

// checkDeleteOptions applies the rules of DeleteOptions, wherever they
// come from (a DELETE's body and query, an Eviction's deleteOptions);
// field prefixes the field names in errors.
func checkDeleteOptions(opts *metav1.DeleteOptions, field string) error {
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
		default:
			return apierrors.NewBadRequest(fmt.Sprintf(
				"%spropagationPolicy: Unsupported value: %q: supported values: \"Foreground\", \"Background\", \"Orphan\"", field, *p))
		}
		if opts.OrphanDependents != nil {
			return apierrors.NewBadRequest(field + "orphanDependents and propagationPolicy cannot both be set")
		}
	}
	for _, v := range opts.DryRun {
		if v != metav1.DryRunAll {
			return apierrors.NewBadRequest(fmt.Sprintf("%sdryRun: unsupported value %q: the only supported value is All", field, v))
		}
	}
	if opts.GracePeriodSeconds != nil && *opts.GracePeriodSeconds < 0 {
		// As in Kubernetes since 1.22: a negative grace period means the
		// shortest graceful one, 1 s, not a force delete (0 would remove
		// the pod from the API while its containers still run).
		one := int64(1)
		opts.GracePeriodSeconds = &one
	}
	return nil
}

func (a *API) delete(w http.ResponseWriter, r *http.Request, res *registry.Resource, ri requestInfo) error {
	opts, err := deleteOptions(r)
	if err != nil {
		return err
	}
	dryRun, err := isDryRun(r)
	if err != nil {
		return err
	}
	dryRun = dryRun || len(opts.DryRun) > 0 // client-go sends it in DeleteOptions
	out, err := a.deleteOne(r.Context(), res, ri.Namespace, ri.Name, opts, dryRun)
	if err != nil {
		return err
	}
	return a.writeObject(w, r, res, http.StatusOK, out)
}

// deleteOne deletes an object the Kubernetes way: objects held by
// finalizers, a grace period (pods) or their own rules (namespaces) only
// get metadata.deletionTimestamp now and disappear when the last holder lets
// go; everything else is removed at once. It returns the object's last state.
func (a *API) deleteOne(ctx context.Context, res *registry.Resource, ns, name string, opts *metav1.DeleteOptions, dryRun bool) (runtime.Object, error) {
	key := res.Key(ns, name)
	var precond *storage.Preconditions
	if p := opts.Preconditions; p != nil {
		precond = &storage.Preconditions{UID: p.UID, ResourceVersion: p.ResourceVersion}
	}
	out := res.New()
	if !dryRun {
		// The common case first: nothing holds the object, so one
		// compare-and-delete removes it.
		err := a.Storage(res).Delete(ctx, key, out, precond, func(current runtime.Object) error {
			if _, now := a.markDeleting(res, current, opts); !now {
				return errLinger
			}
			return nil
		})
		if err == nil {
			a.afterDelete(ctx, res, out)
			return out, nil
		}
		if !errors.Is(err, errLinger) {
			return nil, toStatusError(res, name, err)
		}
	}
	// Otherwise the deletion is recorded on the object (or, in a dry run,
	// only computed).
	err := a.Storage(res).GuaranteedUpdate(ctx, key, out, precond, func(current runtime.Object) (runtime.Object, error) {
		obj, now := a.markDeleting(res, current, opts)
		switch {
		case now:
			return nil, errImmediate
		case dryRun:
			return nil, errDryRun{obj}
		}
		return obj, nil
	}, nil)
	var dr errDryRun
	switch {
	case errors.As(err, &dr):
		return dr.obj, nil
	case errors.Is(err, errImmediate) && dryRun:
		obj := res.New()
		if err := a.Storage(res).Get(ctx, key, obj); err != nil {
			return nil, toStatusError(res, name, err)
		}
		return obj, nil
	case errors.Is(err, errImmediate):
		// Its holders let go between the two steps: delete it now.
		return a.deleteOne(ctx, res, ns, name, opts, false)
	case err != nil:
		return nil, toStatusError(res, name, err)
	}
	a.afterWrite(ctx, res, out)
	return out, nil
}

// markDeleting applies a delete request to a copy of current: propagation
// finalizers, deletionTimestamp and grace period (a repeated delete may
// only shorten it), the kind's own start of deletion. now reports that
// nothing holds the object, so it can be removed at once.
func (a *API) markDeleting(res *registry.Resource, current runtime.Object, opts *metav1.DeleteOptions) (obj runtime.Object, now bool) {
	gd, _ := res.Strategy.(registry.GracefulDeleter)
	obj = current.DeepCopyObject()
	m, _ := meta.Accessor(obj)
	fins := m.GetFinalizers()
	switch propagation(opts) {
	case metav1.DeletePropagationForeground:
		fins = addString(removeString(fins, finalizerOrphan), finalizerForeground)
	case metav1.DeletePropagationOrphan:
		fins = addString(removeString(fins, finalizerForeground), finalizerOrphan)
	}
	m.SetFinalizers(fins)
	grace := int64(0)
	if gd != nil {
		grace = gd.GracePeriod(obj, opts.GracePeriodSeconds)
	}
	if m.GetDeletionTimestamp() != nil {
		if cur := m.GetDeletionGracePeriodSeconds(); cur != nil && grace < *cur {
			a.setDeletion(m, grace)
		}
	} else {
		if gd != nil {
			gd.BeginDelete(obj)
		}
		a.setDeletion(m, grace)
	}
	held := gd != nil && gd.Held(obj)
	return obj, len(m.GetFinalizers()) == 0 && !held && graceOf(m) == 0
}

var (
	errImmediate = errors.New("delete immediately")
	errLinger    = errors.New("object lingers: finalizers, grace period or its own rules hold it")
)

func graceOf(m metav1.Object) int64 {
	if g := m.GetDeletionGracePeriodSeconds(); g != nil {
		return *g
	}
	return 0
}

func (a *API) setDeletion(m metav1.Object, grace int64) {
	t := metav1.NewTime(a.Now().UTC().Add(time.Duration(grace) * time.Second).Truncate(time.Second))
	m.SetDeletionTimestamp(&t)
	m.SetDeletionGracePeriodSeconds(&grace)
}

// propagation resolves the effective policy; without one, dependents are
// deleted in the background by the garbage collector.
func propagation(opts *metav1.DeleteOptions) metav1.DeletionPropagation {
	if opts.PropagationPolicy != nil {
		return *opts.PropagationPolicy
	}
	if opts.OrphanDependents != nil && *opts.OrphanDependents {
		return metav1.DeletePropagationOrphan
	}
	return metav1.DeletePropagationBackground
}

// readyToDelete reports whether an update left a deleting object with no
// holders, so it can now be removed.
func (a *API) readyToDelete(res *registry.Resource, obj runtime.Object) bool {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 || graceOf(m) > 0 {
		return false
	}
	if gd, ok := res.Strategy.(registry.GracefulDeleter); ok && gd.Held(obj) {
		return false
	}
	return true
}

func (a *API) afterDelete(ctx context.Context, res *registry.Resource, obj runtime.Object) {
	if h := a.Hooks[res.GroupResource().String()]; h.AfterDelete != nil {
		h.AfterDelete(ctx, obj)
	}
}

func (a *API) deleteCollection(w http.ResponseWriter, r *http.Request, res *registry.Resource, ri requestInfo) error {
	opts, err := deleteOptions(r)
	if err != nil {
		return err
	}
	dryRun, err := isDryRun(r)
	if err != nil {
		return err
	}
	dryRun = dryRun || len(opts.DryRun) > 0 // client-go sends it in DeleteOptions
	pred, err := a.predicate(r, res, ri)
	if err != nil {
		return err
	}
	list := res.NewList()
	if err := a.Storage(res).GetList(r.Context(), res.NamespacePrefix(ri.Namespace), storage.ListOptions{Predicate: pred}, list); err != nil {
		return err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	deleted := make([]runtime.Object, 0, len(items))
	for _, item := range items {
		m, _ := meta.Accessor(item)
		out, err := a.deleteOne(r.Context(), res, m.GetNamespace(), m.GetName(), opts, dryRun)
		if apierrors.IsNotFound(err) {
			continue // deleted by someone else meanwhile: that is fine
		}
		if err != nil {
			return err
		}
		deleted = append(deleted, out)
	}
	if err := meta.SetList(list, deleted); err != nil {
		return err
	}
	return a.writeObject(w, r, res, http.StatusOK, list)
}

func preconditionRV(rv string) *storage.Preconditions {
	return &storage.Preconditions{ResourceVersion: &rv}
}

func addString(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func removeString(list []string, s string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(x string) bool { return x == s })
}

package rest

import (
	"encoding/json"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
	policyv1 "github.com/minik8s/minik8s/api/policy/v1"
	"github.com/minik8s/minik8s/apiserver/registry"
)

// evictionGVKs are the versions of Eviction a body may name: policy/v1,
// and policy/v1beta1 (same JSON) for older clients. A body without
// apiVersion is taken as policy/v1.
var evictionGVKs = map[string]schema.GroupVersionKind{
	"":               policyv1.SchemeGroupVersion.WithKind("Eviction"),
	"policy/v1":      policyv1.SchemeGroupVersion.WithKind("Eviction"),
	"policy/v1beta1": {Group: policyv1.GroupName, Version: "v1beta1", Kind: "Eviction"},
}

// evictPod handles POST pods/{name}/eviction, what `kubectl drain` and
// `ctl drain` use to remove a node's pods: the pod is marked with the
// DisruptionTarget condition and deleted gracefully with the Eviction's
// deleteOptions (grace period, preconditions, propagation, dry run), exactly
// as a DELETE of the pod would. The answer is 201 with a Success Status, as
// in Kubernetes.
//
// Kubernetes refuses an eviction (429 TooManyRequests) that would break a
// PodDisruptionBudget. minik8s has no PodDisruptionBudgets, so an eviction is
// never refused for budget reasons: it succeeds whenever the delete would.
func (a *API) evictPod(w http.ResponseWriter, r *http.Request, pods *registry.Resource, ri requestInfo) error {
	queryDryRun, err := isDryRun(r)
	if err != nil {
		return err
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	var tm metav1.TypeMeta
	_ = json.Unmarshal(data, &tm) // a syntax error is reported by decodeInto
	gvk, ok := evictionGVKs[tm.APIVersion]
	if !ok {
		gvk = evictionGVKs[""] // decodeInto names the expected apiVersion
	}
	eviction := &policyv1.Eviction{}
	if err := a.decodeInto(w, r, data, gvk, eviction); err != nil {
		return err
	}
	if eviction.Name != ri.Name {
		return apierrors.NewBadRequest("name in URL does not match name in Eviction object")
	}
	if err := checkNamespace(pods, eviction.Namespace, ri.Namespace); err != nil {
		return err
	}
	opts := &metav1.DeleteOptions{}
	if eviction.DeleteOptions != nil {
		opts = eviction.DeleteOptions
	}
	// ?dryRun=All on the request and deleteOptions.dryRun in the body mean
	// the same; either makes the eviction a dry run.
	if queryDryRun && len(opts.DryRun) == 0 {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if err := checkDeleteOptions(opts, "deleteOptions."); err != nil {
		return err
	}
	dryRun := len(opts.DryRun) > 0
	if !dryRun {
		if opts, err = a.markDisruptionTarget(r, pods, ri, opts); err != nil {
			return err
		}
	}
	if _, err := a.deleteOne(r.Context(), pods, ri.Namespace, ri.Name, opts, dryRun); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status: metav1.StatusSuccess, Code: http.StatusCreated})
	return nil
}

// markDisruptionTarget records on the pod's status why it is going away
// (condition DisruptionTarget=True, reason EvictionByEvictionAPI), as
// Kubernetes does before it deletes an evicted pod. The deleteOptions'
// preconditions are checked here already; a resourceVersion precondition is
// moved on to the version this write creates, so the delete that follows
// still applies to the pod the caller meant.
func (a *API) markDisruptionTarget(r *http.Request, pods *registry.Resource, ri requestInfo, opts *metav1.DeleteOptions) (*metav1.DeleteOptions, error) {
	target := requestInfo{Namespace: ri.Namespace, Name: ri.Name, Resource: "pods", Verb: "update", Subresource: "status"}
	pre := opts.Preconditions
	out, err := a.updateWith(r, pods, target, func(current runtime.Object) (runtime.Object, error) {
		p, ok := current.(*corev1.Pod)
		if !ok {
			return nil, fmt.Errorf("pods storage holds %T", current)
		}
		if pre != nil && pre.UID != nil && *pre.UID != p.UID {
			return nil, apierrors.NewConflict(pods.GroupResource(), ri.Name, fmt.Errorf(
				"precondition failed: UID in precondition: %s, UID of the stored object: %s", *pre.UID, p.UID))
		}
		if pre != nil && pre.ResourceVersion != nil {
			p.ResourceVersion = *pre.ResourceVersion // updateWith: a different one is a Conflict
		} else {
			p.ResourceVersion = ""
		}
		setDisruptionTarget(&p.Status, a.now())
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	if pre != nil && pre.ResourceVersion != nil {
		rv := out.(*corev1.Pod).ResourceVersion
		opts = opts.DeepCopy()
		opts.Preconditions.ResourceVersion = &rv
	}
	return opts, nil
}

func setDisruptionTarget(st *corev1.PodStatus, now metav1.Time) {
	st.SetCondition(corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting", LastTransitionTime: now})
}

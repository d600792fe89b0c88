package rest

import (
	"net/url"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The functions below turn option structs into the query parameters the
// API server reads, using Kubernetes' parameter names. Zero values are left
// out so URLs stay short and the server applies its defaults.

// ListParams encodes list and watch options.
func ListParams(o metav1.ListOptions) url.Values {
	v := url.Values{}
	set(v, "labelSelector", o.LabelSelector)
	set(v, "fieldSelector", o.FieldSelector)
	set(v, "resourceVersion", o.ResourceVersion)
	set(v, "resourceVersionMatch", string(o.ResourceVersionMatch))
	set(v, "continue", o.Continue)
	if o.Watch {
		v.Set("watch", "true")
	}
	if o.AllowWatchBookmarks {
		v.Set("allowWatchBookmarks", "true")
	}
	if o.SendInitialEvents != nil {
		v.Set("sendInitialEvents", strconv.FormatBool(*o.SendInitialEvents))
	}
	if o.TimeoutSeconds != nil {
		v.Set("timeoutSeconds", strconv.FormatInt(*o.TimeoutSeconds, 10))
	}
	if o.Limit > 0 {
		v.Set("limit", strconv.FormatInt(o.Limit, 10))
	}
	return v
}

// GetParams encodes get options.
func GetParams(o metav1.GetOptions) url.Values {
	v := url.Values{}
	set(v, "resourceVersion", o.ResourceVersion)
	return v
}

// CreateParams encodes create options.
func CreateParams(o metav1.CreateOptions) url.Values {
	return writeParams(o.DryRun, o.FieldManager, o.FieldValidation)
}

// UpdateParams encodes update options.
func UpdateParams(o metav1.UpdateOptions) url.Values {
	return writeParams(o.DryRun, o.FieldManager, o.FieldValidation)
}

// PatchParams encodes patch options.
func PatchParams(o metav1.PatchOptions) url.Values {
	v := writeParams(o.DryRun, o.FieldManager, o.FieldValidation)
	if o.Force != nil {
		v.Set("force", strconv.FormatBool(*o.Force))
	}
	return v
}

func writeParams(dryRun []string, fieldManager, fieldValidation string) url.Values {
	v := url.Values{}
	for _, d := range dryRun {
		v.Add("dryRun", d)
	}
	set(v, "fieldManager", fieldManager)
	set(v, "fieldValidation", fieldValidation)
	return v
}

func set(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/minik8s/minik8s/apiserver/registry"
)

// maxBodyBytes bounds request bodies (Kubernetes allows 3 MiB; etcd's
// default value limit is 1.5 MiB).
const maxBodyBytes = 3 << 20

// readBody reads the request body, converting YAML to JSON.
func readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	if len(data) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", maxBodyBytes))
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/yaml", "application/x-yaml", "text/yaml":
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid YAML body: %v", err))
		}
		return j, nil
	case "application/vnd.kubernetes.protobuf":
		return protobufToJSON(data)
	}
	return data, nil
}

// fieldValidation is the query parameter that chooses what happens with
// unknown or duplicate fields: Strict rejects them (400), Warn (the default)
// drops them and returns a Warning header, Ignore drops them silently.
func fieldValidation(r *http.Request) (string, error) {
	v := r.URL.Query().Get("fieldValidation")
	switch v {
	case "":
		return "Warn", nil
	case "Strict", "Warn", "Ignore":
		return v, nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("fieldValidation: invalid value %q: must be Strict, Warn or Ignore", v))
}

// decodeInto parses data into obj, a new object of kind gvk. It checks that
// apiVersion/kind in the body name this endpoint's kind, then applies the
// fieldValidation mode. The object is left untouched on failure.
func (a *API) decodeInto(w http.ResponseWriter, r *http.Request, data []byte, gvk schema.GroupVersionKind, obj runtime.Object) error {
	mode, err := fieldValidation(r)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return apierrors.NewBadRequest("request body is empty: expected a JSON or YAML object")
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v",
			gvk.Kind, gvk.Version, gvk.Kind, jsonErr(err)))
	}
	if tm.Kind != "" && tm.Kind != gvk.Kind {
		return apierrors.NewBadRequest(fmt.Sprintf("kind: the body's kind %q does not match the endpoint's kind %q", tm.Kind, gvk.Kind))
	}
	if tm.APIVersion != "" && tm.APIVersion != gvk.GroupVersion().String() {
		return apierrors.NewBadRequest(fmt.Sprintf("apiVersion: the body's apiVersion %q does not match the endpoint's %q",
			tm.APIVersion, gvk.GroupVersion().String()))
	}
	strictErrs, err := utiljson.UnmarshalStrict(data, obj, utiljson.DisallowUnknownFields, utiljson.DisallowDuplicateFields)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v",
			gvk.Kind, gvk.Version, gvk.Kind, jsonErr(err)))
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		switch mode {
		case "Strict":
			return apierrors.NewBadRequest("strict decoding error: " + strings.Join(msgs, ", "))
		case "Warn":
			for _, m := range msgs {
				w.Header().Add("Warning", fmt.Sprintf("299 - %q", m))
			}
		}
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return nil
}

// jsonErr shortens json errors to the part a user can act on.
func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	return err.Error()
}

func gvkOf(res *registry.Resource) schema.GroupVersionKind {
	return res.GroupVersion().WithKind(res.Kind)
}

// readRawBody reads a body that must not be converted (patches).
func readRawBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	if len(data) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", maxBodyBytes))
	}
	return data, nil
}

func jsonMarshal(obj runtime.Object) ([]byte, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	return data, nil
}

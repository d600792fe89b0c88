package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik8s/minik8s/apiserver/registry"
	"github.com/minik8s/minik8s/apiserver/storage"
)

// toStatusError maps any failure to the Kubernetes Status a client expects.
// Unknown errors become 500 InternalError; everything a client caused has
// been turned into a 4xx before it gets here.
func toStatusError(res *registry.Resource, name string, err error) *apierrors.StatusError {
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		return se
	}
	gr := schema.GroupResource{}
	if res != nil {
		gr = res.GroupResource()
	}
	var ste *storage.Error
	if errors.As(err, &ste) {
		switch ste.Code {
		case storage.ErrCodeKeyNotFound:
			return apierrors.NewNotFound(gr, name)
		case storage.ErrCodeKeyExists:
			return apierrors.NewAlreadyExists(gr, name)
		case storage.ErrCodeResourceVersionConflict, storage.ErrCodePrecondition:
			return apierrors.NewConflict(gr, name, errors.New(conflictMsg(ste)))
		case storage.ErrCodeInvalidObj:
			// Bad continue tokens and resourceVersions the client sent.
			return apierrors.NewBadRequest(ste.Error())
		case storage.ErrCodeExpired:
			return apierrors.NewResourceExpired(ste.Msg)
		case storage.ErrCodeTooLargeResourceVersion:
			e := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %s", ste.Msg), 1)
			e.ErrStatus.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}}
			return e
		}
	}
	return apierrors.NewInternalError(err)
}

func conflictMsg(e *storage.Error) string {
	if e.Code == storage.ErrCodeResourceVersionConflict {
		return "the object has been modified; please apply your changes to the latest version and try again"
	}
	return e.Msg
}

// writeStatusError writes err as a metav1.Status body with its HTTP code.
func writeStatusError(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.ErrStatus
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Status == "" {
		st.Status = metav1.StatusFailure
	}
	code := int(st.Code)
	if code == 0 {
		code = http.StatusInternalServerError
		st.Code = int32(code)
	}
	writeJSON(w, code, &st)
}

// WriteError renders any error as a Kubernetes Status; exported for the
// server's middleware (authentication failures, unknown paths).
func WriteError(w http.ResponseWriter, err error) {
	writeStatusError(w, toStatusError(nil, "", err))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(data)
	_, _ = w.Write([]byte{'\n'})
}

// setTypeMeta fills apiVersion/kind from the scheme; objects read from
// storage or built in code may lack them and clients rely on them.
func setTypeMeta(s *runtime.Scheme, obj runtime.Object) {
	if gvks, _, err := s.ObjectKinds(obj); err == nil && len(gvks) > 0 {
		obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	}
}

// WriteJSON writes v as a 200 JSON response (discovery documents).
func WriteJSON(w http.ResponseWriter, v any) { writeJSON(w, http.StatusOK, v) }

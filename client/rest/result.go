package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Result is a finished request: the body of a 2xx answer, or the error.
type Result struct {
	c           *Client
	body        []byte
	statusCode  int
	contentType string
	err         error
}

// Error is the request's error: transport failure, or a
// *apierrors.StatusError for a non-2xx answer.
func (r Result) Error() error { return r.err }

// StatusCode is the HTTP status, 0 if no answer arrived.
func (r Result) StatusCode() int { return r.statusCode }

// Raw returns the response body (also for error answers) and the error.
func (r Result) Raw() ([]byte, error) { return r.body, r.err }

// Into decodes the body into obj. A Status body where obj is not a Status
// is returned as an error: the server answered with a verdict, not the object.
func (r Result) Into(obj runtime.Object) error {
	if r.err != nil {
		return r.err
	}
	if len(r.body) == 0 {
		return errors.New("empty response body")
	}
	if _, wantStatus := obj.(*metav1.Status); !wantStatus {
		if st, ok := decodeStatus(r.body); ok {
			if st.Status == metav1.StatusFailure {
				return &apierrors.StatusError{ErrStatus: st}
			}
			return fmt.Errorf("expected %T, server returned a Status: %s", obj, st.Message)
		}
	}
	out, err := r.c.Decode(r.body, obj)
	if err != nil {
		return fmt.Errorf("decoding %T: %w", obj, err)
	}
	if out != obj {
		return fmt.Errorf("decoding %T: server returned %s", obj, out.GetObjectKind().GroupVersionKind().Kind)
	}
	return nil
}

// Object decodes the body into a new object of whatever kind it carries.
func (r Result) Object() (runtime.Object, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.c.Decode(r.body, nil)
}

// decodeStatus recognises a metav1.Status body.
func decodeStatus(body []byte) (metav1.Status, bool) {
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return st, false
	}
	if st.Kind != "Status" {
		return st, false
	}
	return st, true
}

// statusError turns a non-2xx answer into a *apierrors.StatusError: the
// server's own Status when it sent one, else one synthesized from the HTTP
// code (so IsNotFound etc. still work against proxies or plain-text errors).
func (r *Request) statusError(resp *http.Response, body []byte) error {
	code := resp.StatusCode
	if st, ok := decodeStatus(body); ok {
		if st.Code == 0 {
			st.Code = int32(code)
		}
		if st.Status == "" {
			st.Status = metav1.StatusFailure
		}
		return &apierrors.StatusError{ErrStatus: st}
	}
	retry, _ := retryAfterSeconds(resp)
	gr := schema.GroupResource{Group: r.group, Resource: r.resource}
	se := apierrors.NewGenericServerResponse(code, r.verb, gr, r.name, strings.TrimSpace(string(body)), retry, true)
	if code == http.StatusGone {
		// The generic mapper has no reason for 410; Kubernetes uses Gone
		// (or Expired) there and informers key their re-list on it.
		se.ErrStatus.Reason = metav1.StatusReasonGone
	}
	return se
}

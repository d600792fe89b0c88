package rest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik8s/minik8s/apiserver/registry"
	"github.com/minik8s/minik8s/apiserver/storage"
)

// Hooks are side effects a resource needs around its writes, such as
// allocating a Service's clusterIP. Each returns an undo func that the
// pipeline calls if the write does not happen, so nothing is half-written.
type Hooks struct {
	// BeforeCreate runs after validation, before the object is stored.
	BeforeCreate func(ctx context.Context, obj runtime.Object) (undo func(), err error)
	// CheckCreate replaces BeforeCreate in a dry run: it must fail where
	// BeforeCreate would, without changing anything stored. It may fill
	// in obj what BeforeCreate would (values it would pick), so the dry
	// run shows the object a real create would return.
	CheckCreate func(ctx context.Context, obj runtime.Object) error
	// BeforeUpdate runs after validation; done(true) is called after the
	// write succeeded, done(false) if it did not.
	BeforeUpdate func(ctx context.Context, newObj, oldObj runtime.Object) (done func(stored bool), err error)
	// AfterWrite runs after an update (including the one that marks an
	// object as being deleted) has been stored, with the stored object.
	AfterWrite func(ctx context.Context, obj runtime.Object)
	// AfterDelete runs once the object is gone from storage.
	AfterDelete func(ctx context.Context, obj runtime.Object)
}

// API serves every registered resource.
type API struct {
	Scheme    *runtime.Scheme
	Resources []*registry.Resource
	// Storage returns the store of a resource (etcd behind a watch cache).
	Storage func(*registry.Resource) storage.Interface
	Hooks   map[string]Hooks // by GroupResource.String()
	// Namespaces answers the namespace lifecycle admission question.
	Namespaces NamespaceChecker
	Log        *slog.Logger
	// Now is the clock (tests may pin it).
	Now func() time.Time
	// MinWatchTimeout is the lower bound of a watch's random timeout when
	// the client gives none (Kubernetes: 30 min, doubled at random).
	MinWatchTimeout time.Duration
	// Metrics, if set, is told about every request.
	Observe func(verb, resource string, code int, d time.Duration)

	byPath map[string]*registry.Resource
}

// NamespaceChecker says whether objects may be created in a namespace.
type NamespaceChecker interface {
	// Admit returns nil, or a NotFound/Forbidden StatusError.
	Admit(ctx context.Context, namespace string) error
}

// Init indexes the resources; call once before serving.
func (a *API) Init() {
	a.byPath = map[string]*registry.Resource{}
	for _, r := range a.Resources {
		a.byPath[r.Group+"/"+r.Version+"/"+r.Resource] = r
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.Log == nil {
		a.Log = slog.Default()
	}
	if a.MinWatchTimeout == 0 {
		a.MinWatchTimeout = 30 * time.Minute
	}
}

// Lookup finds a resource by group, version and plural name.
func (a *API) Lookup(group, version, resource string) *registry.Resource {
	return a.byPath[group+"/"+version+"/"+resource]
}

// ServeHTTP handles one resource request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	ri, ok := parseRequestInfo(r)
	res := (*registry.Resource)(nil)
	if ok {
		res = a.Lookup(ri.Group, ri.Version, ri.Resource)
	}
	if res == nil {
		writeStatusError(rec, noSuchPath(ri))
		a.observe(ri.Verb, ri.Resource, rec.code, start)
		return
	}
	if err := a.serve(rec, r, res, ri); err != nil {
		se := toStatusError(res, ri.Name, err)
		if se.ErrStatus.Code >= 500 {
			a.Log.Error("request failed", "verb", ri.Verb, "resource", res.Resource,
				"namespace", ri.Namespace, "name", ri.Name, "err", err)
		}
		writeStatusError(rec, se)
	}
	a.observe(ri.Verb, res.Resource, rec.code, start)
}

func (a *API) observe(verb, resource string, code int, start time.Time) {
	if a.Observe != nil {
		a.Observe(verb, resource, code, time.Since(start))
	}
}

func (a *API) serve(w http.ResponseWriter, r *http.Request, res *registry.Resource, ri requestInfo) error {
	if ri.Namespace != "" && !res.Namespaced {
		return apierrors.NewNotFound(res.GroupResource(), ri.Name)
	}
	if res.Namespaced && ri.Namespace == "" && ri.Verb != "list" && ri.Verb != "watch" {
		return apierrors.NewBadRequest(fmt.Sprintf("%s is namespaced: use /namespaces/{namespace}/%s", res.Resource, res.Resource))
	}
	// A subresource the resource does not have is a path the server does
	// not serve: 404, as Kubernetes answers. One it has, asked with a verb
	// it does not support, is 405 (notSupported).
	switch ri.Subresource {
	case "":
	case "status":
		if !res.HasStatus {
			return noSuchPath(ri)
		}
	case "scale":
		if res.Scale == nil {
			return noSuchPath(ri)
		}
		return a.serveScale(w, r, res, ri)
	case "binding":
		if res.Resource != "pods" {
			return noSuchPath(ri)
		}
		if ri.Verb != "create" {
			return notSupported(res, ri)
		}
		return a.bindPod(w, r, res, ri)
	case "eviction":
		if res.Resource != "pods" || res.Group != "" {
			return noSuchPath(ri)
		}
		if ri.Verb != "create" {
			return notSupported(res, ri)
		}
		return a.evictPod(w, r, res, ri)
	case "finalize":
		if res.Resource != "namespaces" {
			return noSuchPath(ri)
		}
		if ri.Verb != "update" {
			return notSupported(res, ri)
		}
		return a.update(w, r, res, ri)
	default:
		return noSuchPath(ri)
	}
	if res.Resource == "bindings" {
		return a.bindPod(w, r, res, ri)
	}
	switch ri.Verb {
	case "get":
		return a.get(w, r, res, ri)
	case "list":
		return a.list(w, r, res, ri)
	case "watch":
		return a.watch(w, r, res, ri)
	case "create":
		if ri.Name != "" || ri.Subresource != "" {
			return notSupported(res, ri)
		}
		return a.create(w, r, res, ri)
	case "update":
		return a.update(w, r, res, ri)
	case "patch":
		return a.patch(w, r, res, ri)
	case "delete":
		if ri.Subresource != "" {
			return notSupported(res, ri)
		}
		return a.delete(w, r, res, ri)
	case "deletecollection":
		return a.deleteCollection(w, r, res, ri)
	}
	return notSupported(res, ri)
}

// noSuchPath is Kubernetes' answer for a path no handler serves (an
// unknown resource or subresource): 404 NotFound, "the server could not
// find the requested resource", naming nothing.
func noSuchPath(ri requestInfo) *apierrors.StatusError {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, ri.Verb, schema.GroupResource{}, "", "", 0, false)
}

func notSupported(res *registry.Resource, ri requestInfo) error {
	action := ri.Verb
	if ri.Subresource != "" {
		action += " " + ri.Subresource
	}
	return apierrors.NewMethodNotSupported(res.GroupResource(), action)
}

// statusRecorder remembers the status code for metrics and keeps Flush
// working for watch streams.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (a *API) now() metav1.Time { return metav1.NewTime(a.Now().UTC().Truncate(time.Second)) }

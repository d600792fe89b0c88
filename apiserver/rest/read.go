package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik8s/minik8s/apiserver/registry"
	"github.com/minik8s/minik8s/apiserver/storage"
)

func (a *API) get(w http.ResponseWriter, r *http.Request, res *registry.Resource, ri requestInfo) error {
	obj := res.New()
	if err := a.Storage(res).Get(r.Context(), res.Key(ri.Namespace, ri.Name), obj); err != nil {
		return err
	}
	return a.writeObject(w, r, res, http.StatusOK, obj)
}

// predicate builds the label/field selection of a list or watch request.
// Field selectors are checked against the fields this resource supports so
// a typo is a 400 naming the field, not an empty list.
func (a *API) predicate(r *http.Request, res *registry.Resource, ri requestInfo) (storage.Predicate, error) {
	p := storage.Predicate{GetAttrs: res.Attrs}
	q := r.URL.Query()
	if s := q.Get("labelSelector"); s != "" {
		sel, err := labels.Parse(s)
		if err != nil {
			return p, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: labelSelector %q: %v", s, err))
		}
		p.Label = sel
	}
	fs := q.Get("fieldSelector")
	if ri.Name != "" { // watch on a single object
		if fs != "" {
			fs += ","
		}
		fs += "metadata.name=" + ri.Name
	}
	if fs != "" {
		sel, err := fields.ParseSelector(fs)
		if err != nil {
			return p, apierrors.NewBadRequest(fmt.Sprintf("invalid fieldSelector %q: %v", fs, err))
		}
		_, known, _ := res.Attrs(res.New())
		for _, req := range sel.Requirements() {
			if _, ok := known[req.Field]; !ok {
				return p, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
			}
		}
		p.Field = sel
	}
	return p, nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request, res *registry.Resource, ri requestInfo) error {
	pred, err := a.predicate(r, res, ri)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := storage.ListOptions{Predicate: pred, ResourceVersion: q.Get("resourceVersion"), Continue: q.Get("continue")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.ParseInt(l, 10, 64)
		if err != nil || n < 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("limit: invalid value %q: must be a non-negative integer", l))
		}
		opts.Limit = n
	}
	list := res.NewList()
	if err := a.Storage(res).GetList(r.Context(), res.NamespacePrefix(ri.Namespace), opts, list); err != nil {
		return err
	}
	return a.writeObject(w, r, res, http.StatusOK, list)
}

func (a *API) watch(w http.ResponseWriter, r *http.Request, res *registry.Resource, ri requestInfo) error {
	pred, err := a.predicate(r, res, ri)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	timeout := a.MinWatchTimeout + time.Duration(rand.Int64N(int64(a.MinWatchTimeout)))
	if t := q.Get("timeoutSeconds"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("timeoutSeconds: invalid value %q", t))
		}
		if n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	bookmarks := q.Get("allowWatchBookmarks") == "true" || q.Get("allowWatchBookmarks") == "1"
	rv := q.Get("resourceVersion")

	// sendInitialEvents=true is the "watch list" protocol newer clients use
	// instead of LIST then WATCH: the current objects arrive as ADDED
	// events, then a BOOKMARK annotated k8s.io/initial-events-end marks
	// where the snapshot ends and live changes begin.
	var initial []runtime.Object
	var initialRV string
	if q.Get("sendInitialEvents") == "true" {
		if !bookmarks || q.Get("resourceVersionMatch") != "NotOlderThan" {
			return apierrors.NewBadRequest("sendInitialEvents=true requires allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan")
		}
		list := res.NewList()
		if err := a.Storage(res).GetList(ctx, res.NamespacePrefix(ri.Namespace),
			storage.ListOptions{Predicate: pred, ResourceVersion: rv}, list); err != nil {
			return err
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return err
		}
		lm, _ := meta.ListAccessor(list)
		initial, initialRV, rv = items, lm.GetResourceVersion(), lm.GetResourceVersion()
	}
	wi, err := a.Storage(res).Watch(ctx, res.NamespacePrefix(ri.Namespace), storage.WatchOptions{
		Predicate: pred, ResourceVersion: rv, AllowBookmarks: bookmarks,
	})
	if err != nil {
		return err
	}
	defer wi.Stop()

	asTable, _ := wantsTable(r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(http.StatusOK)
	flush(w)
	enc := json.NewEncoder(w)
	first := true
	send := func(typ watch.EventType, obj runtime.Object) error {
		if typ == watch.Error {
			setStatusKind(obj)
		} else if asTable && typ != watch.Bookmark {
			obj = a.toTable(res, r, []runtime.Object{obj}, first)
			first = false
		} else {
			setTypeMeta(a.Scheme, obj)
		}
		return enc.Encode(&metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Object: obj}})
	}
	if initialRV != "" {
		for _, obj := range initial {
			if err := send(watch.Added, obj); err != nil {
				return nil
			}
		}
		mark := res.New()
		m, _ := meta.Accessor(mark)
		m.SetResourceVersion(initialRV)
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
		if err := send(watch.Bookmark, mark); err != nil {
			return nil
		}
		flush(w)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return nil
			}
			if err := send(ev.Type, ev.Object); err != nil {
				return nil // client went away
			}
			if len(wi.ResultChan()) == 0 {
				flush(w)
			}
		}
	}
}

func setStatusKind(obj runtime.Object) {
	if st, ok := obj.(*metav1.Status); ok {
		st.Kind, st.APIVersion = "Status", "v1"
	}
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// writeObject encodes obj (an object or a list) as JSON, or as a
// meta.k8s.io Table when the client asked for one (kubectl get does).
func (a *API) writeObject(w http.ResponseWriter, r *http.Request, res *registry.Resource, code int, obj runtime.Object) error {
	if asTable, err := wantsTable(r); err != nil {
		return err
	} else if asTable {
		var objs []runtime.Object
		if meta.IsListType(obj) {
			items, err := meta.ExtractList(obj)
			if err != nil {
				return err
			}
			objs = items
		} else {
			objs = []runtime.Object{obj}
		}
		t := a.toTable(res, r, objs, true)
		if lm, err := meta.ListAccessor(obj); err == nil && meta.IsListType(obj) {
			t.ResourceVersion, t.Continue, t.RemainingItemCount = lm.GetResourceVersion(), lm.GetContinue(), lm.GetRemainingItemCount()
		} else if m, err := meta.Accessor(obj); err == nil {
			t.ResourceVersion = m.GetResourceVersion()
		}
		writeJSON(w, code, t)
		return nil
	}
	setTypeMeta(a.Scheme, obj)
	writeJSON(w, code, obj)
	return nil
}

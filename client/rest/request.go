package rest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
)

// Request is one API call being built. Builder methods record the first
// problem and Do/Watch/Stream report it, so a chain never needs error checks
// in the middle. A Request is used once, by one goroutine.
type Request struct {
	c    *Client
	verb string

	group, version string
	namespace      string
	resource       string
	name           string
	subresource    []string
	absPath        string
	params         url.Values

	body        []byte
	bodyObj     runtime.Object
	contentType string
	timeout     time.Duration

	err error
}

// Group sets the API group; "" is the core group served under /api.
func (r *Request) Group(g string) *Request { r.group = g; return r }

// Version sets the API version, e.g. "v1".
func (r *Request) Version(v string) *Request { r.version = v; return r }

// GroupVersion sets group and version together.
func (r *Request) GroupVersion(gv schema.GroupVersion) *Request {
	r.group, r.version = gv.Group, gv.Version
	return r
}

// Namespace scopes the request to a namespace; "" means all namespaces (or
// a cluster-scoped resource).
func (r *Request) Namespace(ns string) *Request {
	if ns != "" {
		r.setErr(checkSegment("namespace", ns))
	}
	r.namespace = ns
	return r
}

// Resource sets the plural resource name, e.g. "pods".
func (r *Request) Resource(res string) *Request {
	r.setErr(checkSegment("resource", res))
	r.resource = res
	return r
}

// Name selects one object. An empty name is an error: a request meant for
// one object must never silently become a collection request.
func (r *Request) Name(name string) *Request {
	r.setErr(checkSegment("name", name))
	r.name = name
	return r
}

// SubResource appends subresource path segments, e.g. "status", "binding".
func (r *Request) SubResource(sub ...string) *Request {
	for _, s := range sub {
		r.setErr(checkSegment("subresource", s))
	}
	r.subresource = append(r.subresource, sub...)
	return r
}

// AbsPath requests a raw server path such as "/healthz" or "/apis",
// ignoring group, version, namespace, resource and name.
func (r *Request) AbsPath(p string) *Request {
	r.absPath = path.Join("/", p)
	return r
}

// Param adds one query parameter.
func (r *Request) Param(k, v string) *Request {
	r.params.Add(k, v)
	return r
}

// Params adds query parameters (see ListParams and friends).
func (r *Request) Params(v url.Values) *Request {
	for k, vs := range v {
		for _, s := range vs {
			r.params.Add(k, s)
		}
	}
	return r
}

// Body sets the request body: a runtime.Object is encoded as JSON with its
// apiVersion/kind for the request's group/version; []byte is sent as is
// (with the content type given to Client.Patch, else application/json).
func (r *Request) Body(body any) *Request {
	switch b := body.(type) {
	case nil:
	case runtime.Object:
		r.bodyObj = b
	case []byte:
		r.body = b
	default:
		r.setErr(fmt.Errorf("unsupported body type %T", body))
	}
	return r
}

// Timeout bounds this request, overriding Config.Timeout. Watches and
// streams ignore it: bound them with their context or timeoutSeconds.
func (r *Request) Timeout(d time.Duration) *Request { r.timeout = d; return r }

func (r *Request) setErr(err error) {
	if r.err == nil && err != nil {
		r.err = err
	}
}

// checkSegment rejects values that would change the meaning of the path.
func checkSegment(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s may not be empty", what)
	case s == "." || s == "..":
		return fmt.Errorf("%s may not be %q", what, s)
	case strings.ContainsAny(s, "/%"):
		return fmt.Errorf("%s %q may not contain '/' or '%%'", what, s)
	}
	return nil
}

// URL is the full request URL, query included.
func (r *Request) URL() *url.URL {
	u := *r.c.base
	var p string
	if r.absPath != "" {
		p = r.absPath
	} else {
		segs := []string{"/apis", r.group, r.version}
		if r.group == "" {
			segs = []string{"/api", r.version}
		}
		if r.namespace != "" {
			segs = append(segs, "namespaces", r.namespace)
		}
		if r.resource != "" {
			segs = append(segs, r.resource)
		}
		if r.name != "" {
			segs = append(segs, r.name)
		}
		segs = append(segs, r.subresource...)
		p = strings.Join(segs, "/")
	}
	u.Path = u.Path + p
	u.RawQuery = r.params.Encode()
	return &u
}

// what names the request's target for error messages.
func (r *Request) what() string {
	if r.absPath != "" {
		return r.absPath
	}
	s := r.resource
	if r.group != "" {
		s += "." + r.group
	}
	if r.namespace != "" || r.name != "" {
		s += " " + path.Join(r.namespace, r.name)
	}
	if len(r.subresource) > 0 {
		s += "/" + strings.Join(r.subresource, "/")
	}
	return s
}

func (r *Request) prepare() ([]byte, error) {
	if r.err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.verb, r.what(), r.err)
	}
	if r.absPath == "" && r.version == "" {
		return nil, fmt.Errorf("%s %s: no API version set", r.verb, r.what())
	}
	if r.bodyObj != nil {
		data, err := r.c.encode(r.bodyObj, schema.GroupVersion{Group: r.group, Version: r.version})
		if err != nil {
			return nil, fmt.Errorf("%s %s: encoding body: %w", r.verb, r.what(), err)
		}
		return data, nil
	}
	return r.body, nil
}

// Do sends the request, reads the whole response and returns it. Non-2xx
// answers come back as *apierrors.StatusError in Result.Error.
func (r *Request) Do(ctx context.Context) Result {
	body, err := r.prepare()
	if err != nil {
		return Result{err: err}
	}
	timeout := r.timeout
	if timeout == 0 {
		timeout = r.c.timeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	resp, err := r.send(ctx, body)
	if err != nil {
		return Result{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return Result{err: fmt.Errorf("%s %s: reading response: %w", r.verb, r.what(), err)}
	}
	res := Result{c: r.c, body: data, statusCode: resp.StatusCode, contentType: resp.Header.Get("Content-Type")}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.err = r.statusError(resp, data)
	}
	return res
}

// Watch starts a watch (it sets watch=true) and decodes the event stream.
// newObj makes the object each event is decoded into; nil means "create it
// from the scheme by the event's kind". The watch ends when ctx is cancelled,
// Stop is called, or the server closes the stream.
func (r *Request) Watch(ctx context.Context, newObj func() runtime.Object) (watch.Interface, error) {
	r.params.Set("watch", "true")
	body, err := r.prepare()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	resp, err := r.send(ctx, body)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, r.statusError(resp, data)
	}
	return newStreamWatcher(ctx, cancel, resp.Body, r.c, newObj, r.what()), nil
}

// Stream sends the request and returns the response body for the caller to
// read (logs, raw output). Closing it ends the request.
func (r *Request) Stream(ctx context.Context) (io.ReadCloser, error) {
	body, err := r.prepare()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	resp, err := r.send(ctx, body)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer cancel()
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, r.statusError(resp, data)
	}
	return &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// Bounds of the retry waits: a refused connection (the server restarting)
// is retried after 100ms, 200ms, ... up to 3.2s; a server-requested wait
// is honoured up to a minute.
const (
	refusedBackoffBase = 100 * time.Millisecond
	refusedBackoffMax  = 3200 * time.Millisecond
	maxRetryAfter      = time.Minute
)

// send performs the HTTP exchange, retrying refused connections and
// 429/503 answers that carry Retry-After. Both cases mean the server did not
// act on the request, so retrying is safe for every verb.
func (r *Request) send(ctx context.Context, body []byte) (*http.Response, error) {
	u := r.URL().String()
	for attempt := 0; ; attempt++ {
		if r.c.throttle != nil {
			if err := r.c.sleep(ctx, r.c.throttle.When("")); err != nil {
				return nil, fmt.Errorf("%s %s: waiting for client rate limit: %w", r.verb, r.what(), err)
			}
		}
		req, err := http.NewRequestWithContext(ctx, r.verb, u, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.verb, r.what(), err)
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", r.c.userAgent)
		if r.c.token != "" {
			req.Header.Set("Authorization", "Bearer "+r.c.token)
		}
		if len(body) > 0 {
			ct := r.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
		}

		resp, err := r.c.http.Do(req)
		if err != nil {
			if attempt < r.c.maxRetries && errors.Is(err, syscall.ECONNREFUSED) && ctx.Err() == nil {
				wait := min(refusedBackoffBase<<attempt, refusedBackoffMax)
				if serr := r.c.sleep(ctx, wait); serr != nil {
					return nil, fmt.Errorf("%s %s: %w (gave up waiting: %w)", r.verb, r.what(), err, serr)
				}
				continue
			}
			return nil, fmt.Errorf("%s %s: %w", r.verb, r.what(), err)
		}
		if wait, ok := retryAfter(resp); ok && attempt < r.c.maxRetries {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
			resp.Body.Close()
			if err := r.c.sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("%s %s: server asked to retry after %v: %w", r.verb, r.what(), wait, err)
			}
			continue
		}
		return resp, nil
	}
}

// retryAfter reports whether resp asks to be retried and after how long.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0, false
	}
	secs, ok := retryAfterSeconds(resp)
	if !ok {
		return 0, false
	}
	return min(time.Duration(secs)*time.Second, maxRetryAfter), true
}

func retryAfterSeconds(resp *http.Response) (int, bool) {
	h := resp.Header.Get("Retry-After")
	if h == "" {
		return 0, false
	}
	secs, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || secs < 0 {
		return 0, false
	}
	return secs, true
}

package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"

	"github.com/minik8s/minik8s/client/workqueue"
)

// Client sends requests to one API server. It is safe for concurrent use
// and meant to be shared by every typed client and informer of a component.
type Client struct {
	base       *url.URL
	http       *http.Client
	token      string
	userAgent  string
	timeout    time.Duration
	maxRetries int
	throttle   *workqueue.BucketRateLimiter // nil = unthrottled

	scheme     *runtime.Scheme
	serializer runtime.Serializer

	// sleep waits between retries; a test swaps it to avoid real waiting.
	sleep func(ctx context.Context, d time.Duration) error
}

// New builds a Client for cfg. scheme must know every type the caller will
// send or receive (pass scheme.Scheme from api/scheme); it is used to decode
// responses by their apiVersion/kind and to stamp apiVersion/kind on bodies.
func New(cfg *Config, scheme *runtime.Scheme) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("rest: nil Config")
	}
	if scheme == nil {
		return nil, errors.New("rest: nil Scheme")
	}
	base, err := cfg.baseURL()
	if err != nil {
		return nil, fmt.Errorf("rest: %w", err)
	}
	rt, err := cfg.transport()
	if err != nil {
		return nil, fmt.Errorf("rest: %w", err)
	}
	c := &Client{
		base: base,
		// No http.Client.Timeout: it would cut long-running watch streams.
		// Per-request timeouts are contexts (see Request.Do).
		http:       &http.Client{Transport: rt},
		token:      cfg.BearerToken,
		userAgent:  cfg.UserAgent,
		timeout:    cfg.Timeout,
		maxRetries: cfg.MaxRetries,
		scheme:     scheme,
		serializer: json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{}),
		sleep:      sleepContext,
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.maxRetries == 0 {
		c.maxRetries = DefaultMaxRetries
	}
	if c.maxRetries < 0 {
		c.maxRetries = 0
	}
	if cfg.QPS > 0 {
		burst := cfg.Burst
		if burst < 1 {
			burst = int(cfg.QPS)
		}
		c.throttle = workqueue.NewBucketRateLimiter(cfg.QPS, burst)
	}
	return c, nil
}

// Scheme is the scheme the client decodes with.
func (c *Client) Scheme() *runtime.Scheme { return c.scheme }

// Host is the server's base URL.
func (c *Client) Host() string { return c.base.String() }

// Verb starts a request with an HTTP method.
func (c *Client) Verb(method string) *Request {
	return &Request{c: c, verb: method, params: url.Values{}}
}

// Get starts a GET request.
func (c *Client) Get() *Request { return c.Verb(http.MethodGet) }

// Post starts a POST request.
func (c *Client) Post() *Request { return c.Verb(http.MethodPost) }

// Put starts a PUT request.
func (c *Client) Put() *Request { return c.Verb(http.MethodPut) }

// Delete starts a DELETE request.
func (c *Client) Delete() *Request { return c.Verb(http.MethodDelete) }

// Patch starts a PATCH request whose body is of type pt (the patch type is
// the request's Content-Type).
func (c *Client) Patch(pt string) *Request {
	r := c.Verb(http.MethodPatch)
	r.contentType = pt
	return r
}

// Decode decodes a JSON object. If into is non-nil and the data has the
// same kind (or no kind), data is decoded into it; otherwise a new object
// of the data's kind is created from the scheme.
func (c *Client) Decode(data []byte, into runtime.Object) (runtime.Object, error) {
	obj, _, err := c.serializer.Decode(data, nil, into)
	return obj, err
}

// encode serializes obj as JSON with apiVersion/kind for gv. The encoder
// stamps apiVersion/kind on the object it is given, so it gets a copy: the
// caller's object may be shared (an informer's cache) and read concurrently.
func (c *Client) encode(obj runtime.Object, gv schema.GroupVersion) ([]byte, error) {
	enc := runtime.WithVersionEncoder{Version: gv, Encoder: c.serializer, ObjectTyper: c.scheme}
	return runtime.Encode(enc, obj.DeepCopyObject())
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

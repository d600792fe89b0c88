package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik8s/minik8s/apiserver/auth"
	"github.com/minik8s/minik8s/apiserver/rest"
	"github.com/minik8s/minik8s/apiserver/storage"
)

// buildHandler routes requests: health and metrics, discovery, OpenAPI,
// then the REST resources; all behind authentication.
func (s *Server) buildHandler() http.Handler {
	return auth.WithAuthentication(s.routes, s.tokens, func(w http.ResponseWriter, r *http.Request) {
		rest.WriteError(w, apierrors.NewUnauthorized("Unauthorized"))
	}, auth.DefaultAnonymousPaths...)
}

// insecureHandler serves the same routes with no authentication, for the
// 127.0.0.1-only --insecure-port.
func (s *Server) insecureHandler() http.Handler {
	admin := &auth.UserInfo{Name: "admin", Groups: []string{"system:masters"}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.routes.ServeHTTP(w, r.WithContext(auth.WithUser(r.Context(), admin)))
	})
}

func (s *Server) buildRoutes() http.Handler {
	disc := &discovery{resources: s.api.Resources}
	metricsHandler := promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})
	return withRecovery(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/healthz" || p == "/livez" || strings.HasPrefix(p, "/healthz/") || strings.HasPrefix(p, "/livez/"):
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("ok"))
		case p == "/readyz" || strings.HasPrefix(p, "/readyz/"):
			s.readyz(w, r)
		case p == "/metrics":
			metricsHandler.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/openapi/"):
			s.serveOpenAPI(w, r)
		case disc.serve(w, r):
		case strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/apis/"):
			if ns, pod, sub, ok := podProxyRequest(r); ok {
				s.servePodProxy(w, r, ns, pod, sub)
				return
			}
			if isWatch(r) {
				s.metrics.watchers.Inc()
				defer s.metrics.watchers.Dec()
			}
			s.api.ServeHTTP(w, r)
		default:
			rest.WriteError(w, apierrors.NewNotFound(schemaGR(""), p))
		}
	}), s)
}

func isWatch(r *http.Request) bool {
	w := r.URL.Query().Get("watch")
	return w == "1" || w == "true"
}

// readyz reports ready once etcd answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.client.Get(ctx, "/registry/health-check"); err != nil {
		http.Error(w, "etcd: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok"))
}

// withRecovery turns a panic in a handler into a 500 Status and a log line
// instead of a dropped connection.
func withRecovery(h http.Handler, s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "component", "apiserver", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				rest.WriteError(w, apierrors.NewInternalError(fmt.Errorf("internal error")))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// metrics are the Prometheus series the server exports on /metrics.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	watchers prometheus.Gauge
	etcd     *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "apiserver_request_total",
			Help: "API requests by verb, resource and HTTP code."}, []string{"verb", "resource", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "apiserver_request_duration_seconds",
			Help: "API request latency by verb and resource (watches: stream lifetime).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
			[]string{"verb", "resource"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "apiserver_registered_watchers",
			Help: "Open watch streams."}),
		etcd: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etcd_request_duration_seconds",
			Help: "etcd operation latency by operation and resource.", Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16)},
			[]string{"operation", "type"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.watchers, m.etcd,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(verb, resource string, code int, d time.Duration) {
	m.requests.WithLabelValues(verb, resource, fmt.Sprint(code)).Inc()
	m.latency.WithLabelValues(verb, resource).Observe(d.Seconds())
}

// instrumentedStore times every etcd round trip of one resource.
type instrumentedStore struct {
	storage.Interface
	m        *metrics
	resource string
}

func (i *instrumentedStore) since(op string, start time.Time) {
	i.m.etcd.WithLabelValues(op, i.resource).Observe(time.Since(start).Seconds())
}

func (i *instrumentedStore) Create(ctx context.Context, key string, obj, out runtime.Object) error {
	defer i.since("create", time.Now())
	return i.Interface.Create(ctx, key, obj, out)
}

func (i *instrumentedStore) Get(ctx context.Context, key string, out runtime.Object) error {
	defer i.since("get", time.Now())
	return i.Interface.Get(ctx, key, out)
}

func (i *instrumentedStore) GetList(ctx context.Context, prefix string, opts storage.ListOptions, list runtime.Object) error {
	defer i.since("list", time.Now())
	return i.Interface.GetList(ctx, prefix, opts, list)
}

func (i *instrumentedStore) GuaranteedUpdate(ctx context.Context, key string, out runtime.Object, p *storage.Preconditions,
	try func(runtime.Object) (runtime.Object, error), cached runtime.Object) error {
	defer i.since("update", time.Now())
	return i.Interface.GuaranteedUpdate(ctx, key, out, p, try, cached)
}

func (i *instrumentedStore) Delete(ctx context.Context, key string, out runtime.Object, p *storage.Preconditions,
	validate func(runtime.Object) error) error {
	defer i.since("delete", time.Now())
	return i.Interface.Delete(ctx, key, out, p, validate)
}

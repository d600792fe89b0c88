package scheduler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Attempt results, as metric labels and in the debug records.
const (
	resultScheduled     = "scheduled"
	resultUnschedulable = "unschedulable"
	resultError         = "error"
)

// metrics are the scheduler's Prometheus metrics, on a registry of its own
// (served at /metrics), named like kube-scheduler's where they match.
type metrics struct {
	reg                   *prometheus.Registry
	attempts              *prometheus.CounterVec
	attemptDuration       *prometheus.HistogramVec
	podSchedulingDuration prometheus.Histogram
	bindDuration          prometheus.Histogram
	binds                 *prometheus.CounterVec
	eventsDropped         prometheus.Counter
	leader                prometheus.Gauge
}

func newMetrics(s *Scheduler) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scheduler_schedule_attempts_total",
			Help: "Scheduling attempts by result (scheduled, unschedulable, error).",
		}, []string{"result"}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scheduler_scheduling_attempt_duration_seconds",
			Help:    "Duration of one scheduling attempt (snapshot, filter, score, assume), by result; binding runs after it.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"result"}),
		podSchedulingDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scheduler_pod_scheduling_duration_seconds",
			Help:    "Time from a pod entering the scheduling queue to its successful binding, over all attempts.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}),
		bindDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scheduler_binding_duration_seconds",
			Help:    "Duration of the pods/binding request.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		binds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scheduler_binds_total",
			Help: "Binding requests by result (ok, error).",
		}, []string{"result"}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scheduler_events_dropped_total",
			Help: "Events not written because the API server could not keep up.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scheduler_is_leader",
			Help: "1 while this instance schedules (holds the Lease), else 0.",
		}),
	}
	pending := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scheduler_pending_pods",
		Help: "Pods waiting in the scheduling queue, by queue (active, backoff, unschedulable, in-flight).",
	}, []string{"queue"})
	cacheSize := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scheduler_cache_size",
		Help: "Objects in the scheduler cache, by type (nodes, pods, assumed_pods).",
	}, []string{"type"})
	m.reg.MustRegister(m.attempts, m.attemptDuration, m.podSchedulingDuration, m.bindDuration, m.binds,
		m.eventsDropped, m.leader,
		collectorFunc{describe: []prometheus.Collector{pending, cacheSize}, collect: func(ch chan<- prometheus.Metric) {
			c := s.queue.Counts()
			pending.WithLabelValues("active").Set(float64(c.Active))
			pending.WithLabelValues("backoff").Set(float64(c.Backoff))
			pending.WithLabelValues("unschedulable").Set(float64(c.Unschedulable))
			pending.WithLabelValues("in-flight").Set(float64(c.InFlight))
			st := s.cache.Stats()
			cacheSize.WithLabelValues("nodes").Set(float64(st.Nodes))
			cacheSize.WithLabelValues("pods").Set(float64(st.Pods))
			cacheSize.WithLabelValues("assumed_pods").Set(float64(st.AssumedPods))
			pending.Collect(ch)
			cacheSize.Collect(ch)
		}},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) observeAttempt(result string, d time.Duration) {
	m.attempts.WithLabelValues(result).Inc()
	m.attemptDuration.WithLabelValues(result).Observe(d.Seconds())
}

// collectorFunc refreshes gauges from live state at scrape time.
type collectorFunc struct {
	describe []prometheus.Collector
	collect  func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.describe {
		d.Describe(ch)
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

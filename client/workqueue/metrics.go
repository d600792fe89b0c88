package workqueue

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// queueMetrics are one queue's series. Every queue registered with the same
// Registerer shares the same metric families and is told apart by the "name"
// label, which is why the vectors are registered once and then reused.
type queueMetrics struct {
	depth     prometheus.Gauge
	adds      prometheus.Counter
	retries   prometheus.Counter
	queueTime prometheus.Observer
	workTime  prometheus.Observer
}

// durationBuckets span 10µs to ~100s: queue waits and reconciles range from
// a map lookup to a slow API round trip under load.
var durationBuckets = prometheus.ExponentialBuckets(10e-6, 10, 8)

func newQueueMetrics(reg prometheus.Registerer, name string) (*queueMetrics, error) {
	depth, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "workqueue_depth",
		Help: "Number of keys waiting in the work queue (not counting delayed keys).",
	}, []string{"name"}))
	if err != nil {
		return nil, err
	}
	adds, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workqueue_adds_total",
		Help: "Number of keys added to the work queue (after dedupe).",
	}, []string{"name"}))
	if err != nil {
		return nil, err
	}
	retries, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workqueue_retries_total",
		Help: "Number of rate-limited re-adds (failed reconciles).",
	}, []string{"name"}))
	if err != nil {
		return nil, err
	}
	queueTime, err := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "workqueue_queue_duration_seconds",
		Help:    "Time a key waits in the queue before a worker takes it.",
		Buckets: durationBuckets,
	}, []string{"name"}))
	if err != nil {
		return nil, err
	}
	workTime, err := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "workqueue_work_duration_seconds",
		Help:    "Time a worker spends on a key, from Get to Done.",
		Buckets: durationBuckets,
	}, []string{"name"}))
	if err != nil {
		return nil, err
	}
	return &queueMetrics{
		depth:     depth.WithLabelValues(name),
		adds:      adds.WithLabelValues(name),
		retries:   retries.WithLabelValues(name),
		queueTime: queueTime.WithLabelValues(name),
		workTime:  workTime.WithLabelValues(name),
	}, nil
}

// register registers c, or returns the collector already registered under
// the same description so that a second queue reuses the first one's vector.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, err
}

// The methods below are nil-safe so the queue code does not branch on
// whether metrics are enabled.

func (m *queueMetrics) added() {
	if m != nil {
		m.adds.Inc()
	}
}

func (m *queueMetrics) enqueued() {
	if m != nil {
		m.depth.Inc()
	}
}

func (m *queueMetrics) get(waited time.Duration) {
	if m != nil {
		m.depth.Dec()
		m.queueTime.Observe(waited.Seconds())
	}
}

func (m *queueMetrics) done(worked time.Duration) {
	if m != nil {
		m.workTime.Observe(worked.Seconds())
	}
}

func (m *queueMetrics) retry() {
	if m != nil {
		m.retries.Inc()
	}
}

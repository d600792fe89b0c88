package kubelet

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the kubelet's Prometheus metrics, served on /metrics. Hollow
// kubelets in one process share them (labelled by node).
type metrics struct {
	syncDuration *prometheus.HistogramVec
	syncErrors   *prometheus.CounterVec
	workers      *prometheus.GaugeVec
	restarts     *prometheus.CounterVec
}

var (
	metricsOnce    sync.Once
	kubeletMetrics *metrics
	// Registry holds the kubelet's metrics.
	Registry = prometheus.NewRegistry()
)

func getMetrics() *metrics {
	metricsOnce.Do(func() {
		m := &metrics{
			syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: "minik8s_kubelet_pod_sync_duration_seconds", Help: "Time one pod sync took.",
				Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
			}, []string{"node"}),
			syncErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "minik8s_kubelet_pod_sync_errors_total", Help: "Pod syncs that failed (and were retried).",
			}, []string{"node"}),
			workers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "minik8s_kubelet_pod_workers", Help: "Pods this kubelet is working on.",
			}, []string{"node"}),
			restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "minik8s_kubelet_container_restarts_total", Help: "Containers restarted (exit, probe failure or spec change).",
			}, []string{"node"}),
		}
		Registry.MustRegister(m.syncDuration, m.syncErrors, m.workers, m.restarts,
			collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		kubeletMetrics = m
	})
	return kubeletMetrics
}

package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics uses kube-proxy's metric names where one exists, so dashboards
// written for kube-proxy work.
type metrics struct {
	syncDuration    prometheus.Histogram
	lastSync        prometheus.Gauge
	rules           *prometheus.GaugeVec
	restoreFailures prometheus.Counter
	syncFailures    prometheus.Counter
	serviceChanges  prometheus.Counter
	endpointChanges prometheus.Counter
	servicePorts    *prometheus.GaugeVec
	endpoints       prometheus.Gauge
	chainsWritten   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kubeproxy_sync_proxy_rules_duration_seconds",
			Help:    "How long one sync of the proxy rules took (render, iptables-restore, conntrack).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
			Help: "Unix time of the last successful sync of the proxy rules.",
		}),
		rules: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubeproxy_sync_proxy_rules_iptables_total",
			Help: "Rules the last successful sync wrote, per table.",
		}, []string{"table"}),
		restoreFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
			Help: "iptables-restore runs that failed.",
		}),
		syncFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "minik8s_proxy_sync_failures_total",
			Help: "Syncs that failed for any reason (they are retried as full syncs).",
		}),
		serviceChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubeproxy_sync_proxy_rules_service_changes_total",
			Help: "Service adds, updates and deletes seen.",
		}),
		endpointChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubeproxy_sync_proxy_rules_endpoint_changes_total",
			Help: "Endpoints adds, updates and deletes seen.",
		}),
		servicePorts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "minik8s_proxy_service_ports",
			Help: "Service ports programmed by the last successful sync, by whether they have ready endpoints.",
		}, []string{"endpoints"}),
		endpoints: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "minik8s_proxy_endpoints",
			Help: "Endpoint (service port, backend) pairs programmed by the last successful sync.",
		}),
		chainsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "minik8s_proxy_chains_written_total",
			Help: "Chains rewritten by syncs (a sync writes only the chains that differ from the kernel's or the last applied state).",
		}),
	}
	for _, c := range []prometheus.Collector{m.chainsWritten, m.syncDuration, m.lastSync, m.rules, m.restoreFailures, m.syncFailures,
		m.serviceChanges, m.endpointChanges, m.servicePorts, m.endpoints} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

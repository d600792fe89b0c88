package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/minik8s/minik8s/api/scheme"
	"github.com/minik8s/minik8s/client/informer"
	"github.com/minik8s/minik8s/client/rest"
)

func TestOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
		want   string // "" = valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"cluster cidr", func(o *Options) { o.ClusterCIDR = "10.244.0.0/16" }, ""},
		{"bad cluster cidr", func(o *Options) { o.ClusterCIDR = "10.244.0.0" }, "--cluster-cidr"},
		{"ipv6 cluster cidr", func(o *Options) { o.ClusterCIDR = "fd00::/64" }, "--cluster-cidr"},
		{"nodeport addresses", func(o *Options) { o.NodePortAddresses = []string{"192.168.0.0/24", "127.0.0.0/8"} }, ""},
		{"bad nodeport address", func(o *Options) { o.NodePortAddresses = []string{"192.168.0.1"} }, "--nodeport-addresses"},
		{"zero min sync", func(o *Options) { o.MinSyncPeriod = 0 }, "--min-sync-period"},
		{"sync shorter than min", func(o *Options) { o.SyncPeriod = 500 * time.Millisecond }, "--sync-period"},
		{"bad log level", func(o *Options) { o.LogLevel = "chatty" }, "--log-level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.mutate(&o)
			_, err := o.parse()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v does not name %s", err, tc.want)
			}
		})
	}
}

func TestCommandFlags(t *testing.T) {
	cmd := NewCommand("proxy")
	for _, f := range []string{"kubeconfig", "hostname-override", "cluster-cidr", "nodeport-addresses",
		"min-sync-period", "sync-period", "metrics-bind-address", "cleanup"} {
		if cmd.Flags().Lookup(f) == nil {
			t.Errorf("flag --%s missing", f)
		}
	}
	if got := cmd.Flags().Lookup("metrics-bind-address").DefValue; got != "127.0.0.1:10249" {
		t.Errorf("--metrics-bind-address defaults to %q", got)
	}
}

// newOfflineProxier builds a Proxier whose informers are never started.
func newOfflineProxier(t *testing.T, clock *fakeClock) *Proxier {
	t.Helper()
	c, err := rest.New(&rest.Config{Host: "https://127.0.0.1:1"}, scheme.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{NodeName: "n1", SyncPeriod: 30 * time.Second, Clock: clock, Logger: testLogger()},
		informer.NewFactory(c, informer.FactoryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHealthzFollowsLastSuccessfulSync(t *testing.T) {
	clock := newFakeClock()
	p := newOfflineProxier(t, clock)
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	get := func() (int, Status) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, st
	}
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Errorf("before Run: /healthz = %d, want 503", code)
	}
	p.mu.Lock()
	p.started = clock.Now()
	p.mu.Unlock()
	if code, _ := get(); code != http.StatusOK {
		t.Errorf("just started: /healthz = %d, want 200", code)
	}
	clock.Step(61 * time.Second)
	if code, st := get(); code != http.StatusServiceUnavailable || st.Healthy {
		t.Errorf("no sync for 61s with a 30s period: /healthz = %d %+v, want 503", code, st)
	}
	p.mu.Lock()
	p.lastSuccess = clock.Now()
	p.mu.Unlock()
	if code, _ := get(); code != http.StatusOK {
		t.Errorf("after a sync: /healthz = %d, want 200", code)
	}
	clock.Step(59 * time.Second)
	if code, _ := get(); code != http.StatusOK {
		t.Errorf("59s after a sync: /healthz = %d, want 200", code)
	}
	clock.Step(2 * time.Second)
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Errorf("61s after a sync: /healthz = %d, want 503", code)
	}
}

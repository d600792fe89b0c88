package apiserver_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minik8s/minik8s/apiserver"
)

// The external etcd flags are checked as a set, and every error names the
// flag to fix.
func TestEtcdTLSOptionErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pem")
	for _, tc := range []struct {
		name string
		mod  func(*apiserver.Options)
		want string
	}{
		{"https without CA", func(o *apiserver.Options) { o.EtcdServers = []string{"https://10.0.0.21:2379"} },
			"--etcd-cafile: required for the https etcd server https://10.0.0.21:2379"},
		{"cert without key", func(o *apiserver.Options) {
			o.EtcdServers, o.EtcdCAFile, o.EtcdCertFile = []string{"https://10.0.0.21:2379"}, "ca.crt", "client.crt"
		}, "--etcd-keyfile: required with --etcd-certfile"},
		{"key without cert", func(o *apiserver.Options) {
			o.EtcdServers, o.EtcdCAFile, o.EtcdKeyFile = []string{"https://10.0.0.21:2379"}, "ca.crt", "client.key"
		}, "--etcd-certfile: required with --etcd-keyfile"},
		{"TLS flag with http", func(o *apiserver.Options) {
			o.EtcdServers, o.EtcdCAFile = []string{"http://10.0.0.21:2379"}, "ca.crt"
		}, "--etcd-servers: http://10.0.0.21:2379 is plain http but --etcd-cafile is set"},
		{"TLS flag without etcd servers", func(o *apiserver.Options) { o.EtcdCertFile = "client.crt" },
			"--etcd-certfile: only used with --etcd-servers"},
		{"not a URL", func(o *apiserver.Options) { o.EtcdServers = []string{"10.0.0.21:2379"} },
			`--etcd-servers: "10.0.0.21:2379" is not a URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := apiserver.DefaultOptions()
			tc.mod(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}

	// Files are read when the server starts: an unreadable one fails
	// before any etcd is dialled, naming its flag.
	for _, tc := range []struct {
		name string
		mod  func(*apiserver.Options)
		want string
	}{
		{"CA", func(o *apiserver.Options) { o.EtcdCAFile = missing }, "--etcd-cafile: open " + missing},
		{"cert", func(o *apiserver.Options) { o.EtcdCertFile, o.EtcdKeyFile = missing, missing }, "--etcd-certfile: open " + missing},
	} {
		t.Run("unreadable "+tc.name, func(t *testing.T) {
			o := apiserver.DefaultOptions()
			o.DataDir, o.BindAddress, o.SecurePort = t.TempDir(), "127.0.0.1", 0
			o.EtcdServers = []string{"https://127.0.0.1:1"}
			o.EtcdCAFile = filepath.Join(o.DataDir, "unused-ca.crt")
			tc.mod(&o)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			srv, err := apiserver.New(ctx, o, slog.New(slog.DiscardHandler))
			if err == nil {
				srv.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// Package etcdtest starts throwaway embedded etcd members for integration
// tests: one per call, in t.TempDir(), on free ports, stopped by t.Cleanup.
// Only test code may import it.
package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/minik8s/minik8s/apiserver/etcd"
)

// Start returns a client connected to a fresh embedded etcd member. The
// member and client are closed when the test ends.
func Start(t testing.TB) *clientv3.Client {
	t.Helper()
	return StartEmbedded(t).Client()
}

// StartEmbedded is Start for tests that need the member itself (its
// endpoints, or to stop it early). Close is registered with t.Cleanup and
// is safe to call again.
func StartEmbedded(t testing.TB) *etcd.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := etcd.Start(ctx, etcd.Config{
		DataDir:   t.TempDir(),
		ClientURL: "http://127.0.0.1:0",
		PeerURL:   "http://127.0.0.1:0",
		// Tests do not survive crashes anyway; fsync only slows them.
		UnsafeNoFsync: true,
	})
	if err != nil {
		t.Fatalf("etcdtest: start embedded etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("etcdtest: close embedded etcd: %v", err)
		}
	})
	return e
}

package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/minik8s/minik8s/apiserver/etcd"
	"github.com/minik8s/minik8s/apiserver/etcd/etcdtest"
)

func TestStartConnectAndRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := etcd.Config{DataDir: dir, ClientURL: "http://127.0.0.1:0", PeerURL: "http://127.0.0.1:0", UnsafeNoFsync: true}
	e, err := etcd.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client().Put(ctx, "/k", "v1"); err != nil {
		t.Fatal(err)
	}

	// A second, independent client through Connect sees the same data.
	c2, err := etcd.Connect(ctx, e.Endpoints(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c2.Get(ctx, "/k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Fatalf("got %v, want /k=v1", resp.Kvs)
	}
	_ = c2.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil { // idempotent
		t.Fatal(err)
	}

	// Data survives a restart on the same directory.
	e, err = etcd.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	resp, err = e.Client().Get(ctx, "/k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Fatalf("after restart got %v, want /k=v1", resp.Kvs)
	}
}

func TestStartNeedsDataDir(t *testing.T) {
	if _, err := etcd.Start(context.Background(), etcd.Config{}); err == nil {
		t.Fatal("Start without DataDir succeeded")
	}
}

func TestConnectFailsFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Nothing listens on port 1.
	if c, err := etcd.Connect(ctx, []string{"http://127.0.0.1:1"}, nil); err == nil {
		_ = c.Close()
		t.Fatal("Connect to a dead endpoint succeeded")
	}
}

func TestCompact(t *testing.T) {
	ctx := context.Background()
	c := etcdtest.Start(t)
	var revs []int64
	for i := range 5 {
		r, err := c.Put(ctx, "/a", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, r.Header.Revision)
	}
	if err := etcd.Compact(ctx, c, revs[3]); err != nil {
		t.Fatal(err)
	}
	// Compacting again to the same or an older revision is fine.
	if err := etcd.Compact(ctx, c, revs[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "/a", clientv3.WithRev(revs[2])); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("read below compaction: err = %v, want ErrCompacted", err)
	}
	if r, err := c.Get(ctx, "/a", clientv3.WithRev(revs[3])); err != nil || string(r.Kvs[0].Value) != "3" {
		t.Fatalf("read at compaction revision: %v %v", r, err)
	}
}

// The compactor cuts history to what it saw one round earlier: a revision
// written before round N is readable until round N+1 and gone afterwards.
func TestRunCompactor(t *testing.T) {
	c := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		etcd.RunCompactor(ctx, c, 50*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()

	r, err := c.Put(ctx, "/a", "old")
	if err != nil {
		t.Fatal(err)
	}
	old := r.Header.Revision
	if _, err := c.Put(ctx, "/a", "new"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.Get(ctx, "/a", clientv3.WithRev(old))
		if errors.Is(err, rpctypes.ErrCompacted) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("revision never compacted by RunCompactor")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The marker key counts the rounds.
	g, err := c.Get(ctx, etcd.CompactRevisionKey)
	if err != nil || len(g.Kvs) != 1 || g.Kvs[0].Version < 2 {
		t.Fatalf("compact marker: %v %v", g, err)
	}
}

// Two compactors on one etcd share the rounds instead of both compacting.
func TestRunCompactorTwoInstances(t *testing.T) {
	c := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for range 2 {
		go func() {
			etcd.RunCompactor(ctx, c, 30*time.Millisecond)
			done <- struct{}{}
		}()
	}
	if _, err := c.Put(ctx, "/a", "x"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		g, err := c.Get(ctx, etcd.CompactRevisionKey)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Kvs) == 1 && g.Kvs[0].Version >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("compactors made no progress")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	<-done
}

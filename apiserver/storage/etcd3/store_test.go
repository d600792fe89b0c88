package etcd3_test

import (
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/minik8s/minik8s/apiserver/etcd/etcdtest"
	"github.com/minik8s/minik8s/apiserver/storage"
	"github.com/minik8s/minik8s/apiserver/storage/etcd3"
	"github.com/minik8s/minik8s/apiserver/storage/storagetest"
)

func newStore(t *testing.T, opts ...etcd3.Option) (storage.Interface, *clientv3.Client) {
	client := etcdtest.Start(t)
	return etcd3.New(client, storagetest.Codec(), storagetest.NewFunc, storagetest.NewListFunc, storagetest.Prefix, nil, opts...), client
}

func TestConformance(t *testing.T) {
	storagetest.RunConformance(t, func(t *testing.T) (storage.Interface, *clientv3.Client) { return newStore(t) })
}

func TestWatchCompacted(t *testing.T) {
	storagetest.CheckWatchCompacted(t, func(t *testing.T) (storage.Interface, *clientv3.Client) { return newStore(t) })
}

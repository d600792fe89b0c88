package etcd3_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik8s/minik8s/apiserver/etcd/etcdtest"
	"github.com/minik8s/minik8s/apiserver/storage"
	"github.com/minik8s/minik8s/apiserver/storage/etcd3"
	"github.com/minik8s/minik8s/apiserver/storage/storagetest"
)

// The value in etcd is the codec's JSON with apiVersion/kind, and without
// resourceVersion (that lives in etcd's ModRevision).
func TestStoredValueIsPlainJSON(t *testing.T) {
	s, client := newStore(t)
	ctx := storagetest.Ctx(t)
	storagetest.MustCreate(t, s, storagetest.New("ns1", "a", "red", 1))
	storagetest.MustUpdate(t, s, "ns1", "a", func(w *storagetest.Widget) { w.Spec.Count = 2 })
	resp, err := client.Get(ctx, storagetest.Key("ns1", "a"))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw get: %v %v", resp, err)
	}
	v := resp.Kvs[0].Value
	for _, want := range []string{`"apiVersion":"test.minik8s.io/v1"`, `"kind":"Widget"`, `"count":2`} {
		if !bytes.Contains(v, []byte(want)) {
			t.Errorf("stored value %s lacks %s", v, want)
		}
	}
	if bytes.Contains(v, []byte("resourceVersion")) {
		t.Errorf("stored value %s contains resourceVersion", v)
	}
}

// aesGCM is a test Transformer: AES-GCM with the key as associated data.
type aesGCM struct{ aead cipher.AEAD }

func newAESGCM(t *testing.T) *aesGCM {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return &aesGCM{aead: a}
}

func (x *aesGCM) TransformToStorage(key string, plain []byte) ([]byte, error) {
	nonce := make([]byte, x.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return append([]byte("enc:"), x.aead.Seal(nonce, nonce, plain, []byte(key))...), nil
}

func (x *aesGCM) TransformFromStorage(key string, stored []byte) ([]byte, error) {
	stored, ok := bytes.CutPrefix(stored, []byte("enc:"))
	if !ok || len(stored) < x.aead.NonceSize() {
		return nil, errors.New("not encrypted")
	}
	n := x.aead.NonceSize()
	return x.aead.Open(nil, stored[:n], stored[n:], []byte(key))
}

func TestTransformer(t *testing.T) {
	client := etcdtest.Start(t)
	tr := newAESGCM(t)
	s := etcd3.New(client, storagetest.Codec(), storagetest.NewFunc, storagetest.NewListFunc, storagetest.Prefix, tr)
	ctx := storagetest.Ctx(t)

	w, err := s.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: fmt.Sprint(storagetest.MustRevision(t, s))})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	storagetest.MustCreate(t, s, storagetest.New("ns1", "secret-thing", "ultraviolet", 1))
	storagetest.MustUpdate(t, s, "ns1", "secret-thing", func(w *storagetest.Widget) { w.Spec.Count = 2 })

	resp, err := client.Get(ctx, storagetest.Key("ns1", "secret-thing"))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw get: %v %v", resp, err)
	}
	raw := resp.Kvs[0].Value
	for _, plain := range []string{"ultraviolet", "secret-thing", "Widget"} {
		if bytes.Contains(raw, []byte(plain)) {
			t.Fatalf("raw etcd value contains plaintext %q: %q", plain, raw)
		}
	}
	got := &storagetest.Widget{}
	if err := s.Get(ctx, storagetest.Key("ns1", "secret-thing"), got); err != nil || got.Spec.Color != "ultraviolet" || got.Spec.Count != 2 {
		t.Fatalf("get through transformer: %+v %v", got, err)
	}
	l := storagetest.MustList(t, s, storagetest.Prefix, storage.ListOptions{})
	if len(l.Items) != 1 || l.Items[0].Spec.Color != "ultraviolet" {
		t.Fatalf("list through transformer: %+v", l.Items)
	}
	storagetest.ExpectEvent(t, w, watch.Added, "secret-thing", 1, 0)
	storagetest.ExpectEvent(t, w, watch.Modified, "secret-thing", 2, 0)

	// The key is bound into the ciphertext: a value copied to another key
	// does not decrypt.
	if _, err := client.Put(ctx, storagetest.Key("ns1", "moved"), string(raw)); err != nil {
		t.Fatal(err)
	}
	if err := s.Get(ctx, storagetest.Key("ns1", "moved"), &storagetest.Widget{}); err == nil {
		t.Fatal("a value moved to another key decrypted")
	}
	// Without the transformer the ciphertext is not an object.
	plainStore := etcd3.New(client, storagetest.Codec(), storagetest.NewFunc, storagetest.NewListFunc, storagetest.Prefix, nil)
	if err := plainStore.Get(ctx, storagetest.Key("ns1", "secret-thing"), &storagetest.Widget{}); err == nil {
		t.Fatal("ciphertext decoded without the transformer")
	}
}

// An idle watch that allows bookmarks receives BOOKMARK events carrying
// the current revision, even though nothing under its prefix changes.
func TestWatchBookmarks(t *testing.T) {
	s, client := newStore(t, etcd3.WithProgressInterval(50*time.Millisecond))
	ctx := storagetest.Ctx(t)
	start := storagetest.MustRevision(t, s)
	w, err := s.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: fmt.Sprint(start), AllowBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// Changes elsewhere move the revision on.
	r, err := client.Put(ctx, "/registry/others/x", "y")
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev := storagetest.NextEvent(t, w)
		if ev.Type != watch.Bookmark {
			t.Fatalf("unexpected %s event", ev.Type)
		}
		wd, ok := ev.Object.(*storagetest.Widget)
		if !ok {
			t.Fatalf("bookmark object is %T, want *Widget", ev.Object)
		}
		if rv := storagetest.MustRV(t, wd); rv >= r.Header.Revision {
			break
		}
	}
}

func TestWatchWithoutBookmarksGetsNone(t *testing.T) {
	s, client := newStore(t, etcd3.WithProgressInterval(20*time.Millisecond))
	ctx := storagetest.Ctx(t)
	w, err := s.Watch(ctx, storagetest.Prefix, storage.WatchOptions{ResourceVersion: fmt.Sprint(storagetest.MustRevision(t, s))})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := client.Put(ctx, "/registry/others/x", "y"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		t.Fatalf("unexpected %s event", ev.Type)
	case <-time.After(300 * time.Millisecond):
	}
}

// Stopping the caller's context ends the watch and closes its channel.
func TestWatchEndsWithContext(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := s.Watch(ctx, storagetest.Prefix, storage.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case _, ok := <-w.ResultChan():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed after its context ended")
		}
	}
}

// BenchmarkCreate measures Create throughput from 32 concurrent writers on
// an embedded etcd (fsync off, as in all tests).
func BenchmarkCreate(b *testing.B) {
	client := etcdtest.Start(b)
	s := etcd3.New(client, storagetest.Codec(), storagetest.NewFunc, storagetest.NewListFunc, storagetest.Prefix, nil)
	ctx := b.Context()
	var next atomic.Int64
	const writers = 32
	b.ResetTimer()
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				w := storagetest.New("bench", fmt.Sprintf("w%08d", i), "red", int(i))
				if err := s.Create(ctx, storagetest.Key("bench", w.Name), w, &storagetest.Widget{}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

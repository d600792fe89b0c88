package etcd3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	utiljson "sigs.k8s.io/json"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik8s/minik8s/apiserver/storage"
)

const (
	// defaultFreshnessWait bounds how long a read asking for a
	// resourceVersion newer than etcd's current revision waits before
	// answering "too large resource version" (Kubernetes waits ~3s too).
	defaultFreshnessWait = 3 * time.Second
	// defaultProgressInterval is how often a watch that allows bookmarks
	// asks etcd for a progress notification.
	defaultProgressInterval = time.Minute
	// maxListBatch caps one etcd range while paging through a filtered list.
	maxListBatch = 10000
)

// Option tunes a store.
type Option func(*store)

// WithProgressInterval sets how often a watch with AllowBookmarks requests
// an etcd progress notification (turned into a BOOKMARK event).
func WithProgressInterval(d time.Duration) Option {
	return func(s *store) {
		if d > 0 {
			s.progressInterval = d
		}
	}
}

// WithFreshnessWait sets how long a read for a resourceVersion ahead of
// etcd waits for etcd to catch up before failing with
// ErrCodeTooLargeResourceVersion.
func WithFreshnessWait(d time.Duration) Option {
	return func(s *store) {
		if d > 0 {
			s.freshnessWait = d
		}
	}
}

type store struct {
	client           *clientv3.Client
	codec            runtime.Codec
	newFunc          func() runtime.Object
	newListFunc      func() runtime.Object
	prefix           string
	transformer      storage.Transformer
	progressInterval time.Duration
	freshnessWait    time.Duration
}

// New returns a storage.Interface for the resource whose keys start with
// prefix (e.g. "/registry/pods/"). codec encodes objects to the JSON kept
// in etcd; newFunc/newListFunc make empty objects and lists of the
// resource; transformer (nil = none) encrypts values at rest.
func New(client *clientv3.Client, codec runtime.Codec, newFunc, newListFunc func() runtime.Object,
	prefix string, transformer storage.Transformer, opts ...Option) storage.Interface {
	s := &store{
		client:           client,
		codec:            codec,
		newFunc:          newFunc,
		newListFunc:      newListFunc,
		prefix:           prefix,
		transformer:      transformer,
		progressInterval: defaultProgressInterval,
		freshnessWait:    defaultFreshnessWait,
	}
	if s.transformer == nil {
		s.transformer = identity{}
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

type identity struct{}

func (identity) TransformToStorage(_ string, b []byte) ([]byte, error)   { return b, nil }
func (identity) TransformFromStorage(_ string, b []byte) ([]byte, error) { return b, nil }

// checkKey keeps every operation inside this resource's prefix, so a bug
// in key construction cannot read or overwrite another resource.
func (s *store) checkKey(key string) error {
	if len(key) <= len(s.prefix) || !strings.HasPrefix(key, s.prefix) {
		return storage.NewError(storage.ErrCodeInvalidObj, key, "key is outside the resource prefix %q", s.prefix)
	}
	return nil
}

func (s *store) checkPrefix(prefix string) error {
	if !strings.HasPrefix(prefix, s.prefix) {
		return storage.NewError(storage.ErrCodeInvalidObj, prefix, "prefix is outside the resource prefix %q", s.prefix)
	}
	return nil
}

// encode renders obj (whose resourceVersion must already be empty) as the
// codec's bytes and the transformed bytes to store.
func (s *store) encode(key string, obj runtime.Object) (plain, stored []byte, err error) {
	plain, err = runtime.Encode(s.codec, obj)
	if err != nil {
		return nil, nil, storage.NewError(storage.ErrCodeInvalidObj, key, "encode: %v", err)
	}
	stored, err = s.transformer.TransformToStorage(key, plain)
	if err != nil {
		return nil, nil, fmt.Errorf("transform %s to storage: %w", key, err)
	}
	return plain, stored, nil
}

// plain undoes the transformer on a value read from etcd.
func (s *store) plain(key string, stored []byte) ([]byte, error) {
	p, err := s.transformer.TransformFromStorage(key, stored)
	if err != nil {
		return nil, fmt.Errorf("transform %s from storage: %w", key, err)
	}
	return p, nil
}

// decodeInto resets out (decoding JSON into a used object would keep
// fields absent from the new JSON) and fills it from plain bytes, stamping
// resourceVersion = rev.
func (s *store) decodeInto(key string, plain []byte, out runtime.Object, rev int64) error {
	if out == nil {
		return nil // the caller does not want the result
	}
	v, err := conversion.EnforcePtr(out)
	if err != nil {
		return storage.NewError(storage.ErrCodeInvalidObj, key, "output object: %v", err)
	}
	v.Set(reflect.Zero(v.Type()))
	// The stored JSON is exactly the Go type's encoding (written by this
	// store through the codec), so a direct decode is enough; the codec's
	// recognizer, defaulting and conversion machinery cost ~4% of a create
	// for nothing. Case-sensitive and int64-preserving, like the codec.
	if err := utiljson.UnmarshalCaseSensitivePreserveInts(plain, out); err != nil {
		return storage.NewError(storage.ErrCodeInvalidObj, key, "decode stored object: %v", err)
	}
	return setRV(key, out, rev)
}

// decodeKV decodes a stored value into out.
func (s *store) decodeKV(key string, stored []byte, out runtime.Object, rev int64) error {
	p, err := s.plain(key, stored)
	if err != nil {
		return err
	}
	return s.decodeInto(key, p, out, rev)
}

func setRV(key string, obj runtime.Object, rev int64) error {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return storage.NewError(storage.ErrCodeInvalidObj, key, "object has no metadata: %v", err)
	}
	if rev == 0 {
		acc.SetResourceVersion("")
	} else {
		acc.SetResourceVersion(strconv.FormatInt(rev, 10))
	}
	return nil
}

func (s *store) Create(ctx context.Context, key string, obj, out runtime.Object) error {
	if err := s.checkKey(key); err != nil {
		return err
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return storage.NewError(storage.ErrCodeInvalidObj, key, "object has no metadata: %v", err)
	}
	// Kubernetes refuses this too: a create cannot be conditional on a
	// version of something that does not exist yet.
	if acc.GetResourceVersion() != "" {
		return storage.NewError(storage.ErrCodeInvalidObj, key, "resourceVersion should not be set on objects to be created")
	}
	_, stored, err := s.encode(key, obj)
	if err != nil {
		return err
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(stored))).
		Commit()
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	if !resp.Succeeded {
		return storage.NewError(storage.ErrCodeKeyExists, key, "already exists")
	}
	// out is what was just written: copy it rather than decode the bytes.
	return s.copyInto(key, obj, out, resp.Header.Revision)
}

// copyInto sets out to a deep copy of obj (the object just written) with
// resourceVersion rev: cheaper than decoding the bytes that were stored.
func (s *store) copyInto(key string, obj, out runtime.Object, rev int64) error {
	if out == nil {
		return nil
	}
	v, err := conversion.EnforcePtr(out)
	if err != nil {
		return storage.NewError(storage.ErrCodeInvalidObj, key, "output object: %v", err)
	}
	src := reflect.ValueOf(obj.DeepCopyObject())
	if src.Kind() != reflect.Pointer || src.Elem().Type() != v.Type() {
		return storage.NewError(storage.ErrCodeInvalidObj, key, "wrote %T, want %T", obj, out)
	}
	v.Set(src.Elem())
	return setRV(key, out, rev)
}

func (s *store) Get(ctx context.Context, key string, out runtime.Object) error {
	if err := s.checkKey(key); err != nil {
		return err
	}
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return storage.NewError(storage.ErrCodeKeyNotFound, key, "not found")
	}
	kv := resp.Kvs[0]
	return s.decodeKV(key, kv.Value, out, kv.ModRevision)
}

// checkPreconditions compares precond with the stored object. A stale
// resourceVersion is the ordinary optimistic-concurrency conflict; a UID
// mismatch means the name now belongs to a different object.
func checkPreconditions(key string, p *storage.Preconditions, obj runtime.Object) error {
	if p == nil {
		return nil
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return storage.NewError(storage.ErrCodeInvalidObj, key, "object has no metadata: %v", err)
	}
	if p.UID != nil && *p.UID != acc.GetUID() {
		return storage.NewError(storage.ErrCodePrecondition, key,
			"precondition failed: UID in precondition: %s, UID of the stored object: %s", *p.UID, acc.GetUID())
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != acc.GetResourceVersion() {
		return storage.NewError(storage.ErrCodeResourceVersionConflict, key,
			"precondition failed: resourceVersion in precondition: %s, resourceVersion of the stored object: %s",
			*p.ResourceVersion, acc.GetResourceVersion())
	}
	return nil
}

func (s *store) GuaranteedUpdate(ctx context.Context, key string, out runtime.Object, precond *storage.Preconditions,
	tryUpdate func(current runtime.Object) (runtime.Object, error), cached runtime.Object) error {
	if err := s.checkKey(key); err != nil {
		return err
	}
	// cur is the state the next try starts from; fromCache says it is the
	// caller's cached copy, which may be stale, rather than what etcd
	// returned.
	var (
		cur       runtime.Object
		curPlain  []byte
		curRev    int64
		fromCache bool
	)
	load := func(kvs []*mvccpb.KeyValue) error {
		if len(kvs) == 0 {
			return storage.NewError(storage.ErrCodeKeyNotFound, key, "not found")
		}
		kv := kvs[0]
		plain, err := s.plain(key, kv.Value)
		if err != nil {
			return err
		}
		obj := s.newFunc()
		if err := s.decodeInto(key, plain, obj, kv.ModRevision); err != nil {
			return err
		}
		cur, curPlain, curRev, fromCache = obj, plain, kv.ModRevision, false
		return nil
	}
	read := func() error {
		resp, err := s.client.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("update %s: read: %w", key, err)
		}
		return load(resp.Kvs)
	}
	if rev, plain, ok := s.cachedState(key, cached); ok {
		cur, curPlain, curRev, fromCache = cached, plain, rev, true
	} else if err := read(); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("update %s: %w", key, err)
		}
		// On a cached copy, a failed precondition, a refusal by tryUpdate
		// or a no-op may be an artefact of staleness: each is only
		// believed once seen on what etcd holds.
		if err := checkPreconditions(key, precond, cur); err != nil {
			if fromCache {
				if err := read(); err != nil {
					return err
				}
				continue
			}
			return err
		}
		updated, err := tryUpdate(cur)
		if err != nil {
			if fromCache {
				if err := read(); err != nil {
					return err
				}
				continue
			}
			return err
		}
		if err := setRV(key, updated, 0); err != nil {
			return err
		}
		plain, stored, err := s.encode(key, updated)
		if err != nil {
			return err
		}
		if bytes.Equal(plain, curPlain) {
			if fromCache {
				if err := read(); err != nil {
					return err
				}
				continue
			}
			// Nothing changed: do not burn a revision or wake watchers.
			return s.decodeInto(key, curPlain, out, curRev)
		}
		txn, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", curRev)).
			Then(clientv3.OpPut(key, string(stored))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return fmt.Errorf("update %s: %w", key, err)
		}
		if txn.Succeeded {
			return s.copyInto(key, updated, out, txn.Header.Revision)
		}
		// Lost the race (or the cached copy was stale): the Else branch
		// already read the current state, so retry on it without another
		// round-trip.
		if err := load(txn.Responses[0].GetResponseRange().GetKvs()); err != nil {
			return err
		}
	}
}

// cachedState checks a caller's cached copy of key's object and returns
// its revision and the plain bytes it would be stored as (for the no-op
// check), or ok=false when there is no usable copy. Encoding the copy is
// much cheaper than reading and decoding the object from etcd.
func (s *store) cachedState(key string, cached runtime.Object) (rev int64, plain []byte, ok bool) {
	if cached == nil {
		return 0, nil, false
	}
	acc, err := meta.Accessor(cached)
	if err != nil {
		return 0, nil, false
	}
	rv := acc.GetResourceVersion()
	rev, err = strconv.ParseInt(rv, 10, 64)
	if err != nil || rev <= 0 {
		return 0, nil, false
	}
	// Stored bytes carry no resourceVersion (it is etcd's ModRevision).
	acc.SetResourceVersion("")
	plain, err = runtime.Encode(s.codec, cached)
	acc.SetResourceVersion(rv)
	if err != nil {
		return 0, nil, false
	}
	return rev, plain, true
}

func (s *store) Delete(ctx context.Context, key string, out runtime.Object, precond *storage.Preconditions,
	validate func(current runtime.Object) error) error {
	if err := s.checkKey(key); err != nil {
		return err
	}
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("delete %s: read: %w", key, err)
	}
	kvs := resp.Kvs
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		if len(kvs) == 0 {
			return storage.NewError(storage.ErrCodeKeyNotFound, key, "not found")
		}
		kv := kvs[0]
		cur := s.newFunc()
		if err := s.decodeKV(key, kv.Value, cur, kv.ModRevision); err != nil {
			return err
		}
		if err := checkPreconditions(key, precond, cur); err != nil {
			return err
		}
		if validate != nil {
			if err := validate(cur); err != nil {
				return err
			}
		}
		txn, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(key)).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		if txn.Succeeded {
			return s.decodeKV(key, kv.Value, out, kv.ModRevision)
		}
		kvs = txn.Responses[0].GetResponseRange().GetKvs()
	}
}

func (s *store) Revision(ctx context.Context) (int64, error) {
	// Any key answers with the store's header; count-only keeps it cheap.
	resp, err := s.client.Get(ctx, s.prefix, clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("read current revision under %s: %w", s.prefix, err)
	}
	return resp.Header.Revision, nil
}

// waitForRevision waits until etcd's revision reaches rev, polling because
// a single etcd has no "notify me at revision N" call; the bound is short.
func (s *store) waitForRevision(ctx context.Context, key string, rev int64) error {
	deadline := time.Now().Add(s.freshnessWait)
	for {
		cur, err := s.Revision(ctx)
		if err != nil {
			return err
		}
		if cur >= rev {
			return nil
		}
		if time.Now().After(deadline) {
			return storage.NewError(storage.ErrCodeTooLargeResourceVersion, key, "%d, current: %d", rev, cur)
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for revision %d under %s: %w", rev, key, ctx.Err())
		case <-t.C:
		}
	}
}

// isCompacted reports etcd's "required revision has been compacted".
func isCompacted(err error) bool { return errors.Is(err, rpctypes.ErrCompacted) }

// isFutureRev reports etcd's "required revision is a future revision".
func isFutureRev(err error) bool { return errors.Is(err, rpctypes.ErrFutureRev) }

// parseRV parses a non-empty, non-"0" resourceVersion.
func parseRV(key, rv string) (int64, error) {
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, storage.NewError(storage.ErrCodeInvalidObj, key, "invalid resourceVersion %q: must be a non-negative integer", rv)
	}
	return n, nil
}

// isCreate tells an etcd PUT that created the key from one that changed it.
func isCreate(ev *clientv3.Event) bool {
	return ev.Type == mvccpb.PUT && ev.Kv.CreateRevision == ev.Kv.ModRevision
}

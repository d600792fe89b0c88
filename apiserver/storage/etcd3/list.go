package etcd3

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik8s/minik8s/apiserver/storage"
)

// continueToken is what the opaque "continue" string carries: the revision
// the first page was read at (every later page reads at it too, so the
// pages together are one snapshot) and the key to resume from, relative to
// the listed prefix so a token can never reach outside it.
type continueToken struct {
	Version int    `json:"v"`
	Rev     int64  `json:"rv"`
	Start   string `json:"start"`
}

const continueTokenVersion = 1

func encodeContinue(rev int64, start string) (string, error) {
	b, err := json.Marshal(continueToken{Version: continueTokenVersion, Rev: rev, Start: start})
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func decodeContinue(prefix, token string) (rev int64, start string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, "", storage.NewError(storage.ErrCodeInvalidObj, prefix, "invalid continue token: not base64: %v", err)
	}
	var t continueToken
	if err := json.Unmarshal(b, &t); err != nil {
		return 0, "", storage.NewError(storage.ErrCodeInvalidObj, prefix, "invalid continue token: %v", err)
	}
	if t.Version != continueTokenVersion || t.Rev <= 0 || t.Start == "" {
		return 0, "", storage.NewError(storage.ErrCodeInvalidObj, prefix, "invalid continue token")
	}
	return t.Rev, t.Start, nil
}

// GetList reads the objects under prefix.
//
// Which revision is read:
//   - Continue set: the revision pinned in the token (410 Expired once it
//     is compacted); a resourceVersion other than ""/"0" is refused, as in
//     Kubernetes.
//   - ResourceVersion "" or "0": etcd's current revision (linearizable).
//   - ResourceVersion "N" without Limit: current, but at least N (waits
//     briefly for etcd to reach N, else ErrCodeTooLargeResourceVersion).
//   - ResourceVersion "N" with Limit: exactly N, so a paged list can be
//     restarted at a known snapshot (410 Expired if N is compacted).
//
// With a Predicate, etcd is read in growing batches until Limit matches are
// found or the keys run out.
func (s *store) GetList(ctx context.Context, prefix string, opts storage.ListOptions, listObj runtime.Object) error {
	if !strings.HasSuffix(prefix, "/") {
		// "/registry/pods/default" must not also list namespace "default2".
		prefix += "/"
	}
	if err := s.checkPrefix(prefix); err != nil {
		return err
	}
	listAcc, err := meta.ListAccessor(listObj)
	if err != nil {
		return storage.NewError(storage.ErrCodeInvalidObj, prefix, "list object: %v", err)
	}

	var (
		readRev  int64 // 0 = current; else the pinned revision
		minRev   int64 // with readRev 0: the read must be at least this
		startKey = prefix
		fromCont bool
	)
	switch {
	case opts.Continue != "":
		if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
			return storage.NewError(storage.ErrCodeInvalidObj, prefix, "specifying resourceVersion is not allowed when using continue")
		}
		rev, start, err := decodeContinue(prefix, opts.Continue)
		if err != nil {
			return err
		}
		readRev, startKey, fromCont = rev, prefix+start, true
	case opts.ResourceVersion == "" || opts.ResourceVersion == "0":
	default:
		n, err := parseRV(prefix, opts.ResourceVersion)
		if err != nil {
			return err
		}
		if opts.Limit > 0 {
			readRev = n
		} else {
			minRev = n
		}
	}

	pred := opts.Predicate.WithDefaultAttrs()
	limit := opts.Limit
	batch := limit
	if !pred.Empty() && batch > 0 && batch < 100 {
		// Filtering may skip most keys; start with a reasonable window.
		batch = 100
	}
	rangeEnd := clientv3.GetPrefixRangeEnd(prefix)

	var (
		items     []runtime.Object
		more      bool
		lastKey   string
		remaining *int64
	)
	for {
		ops := []clientv3.OpOption{clientv3.WithRange(rangeEnd)}
		if readRev > 0 {
			ops = append(ops, clientv3.WithRev(readRev))
		}
		if batch > 0 {
			ops = append(ops, clientv3.WithLimit(batch))
		}
		resp, err := s.client.Get(ctx, startKey, ops...)
		switch {
		case err == nil:
		case isCompacted(err) && fromCont:
			return storage.NewError(storage.ErrCodeExpired, prefix,
				"the continue token is too old: revision %d has been compacted; start a new list without continue", readRev)
		case isCompacted(err):
			return storage.NewError(storage.ErrCodeExpired, prefix, "too old resource version: %d has been compacted", readRev)
		case isFutureRev(err) && len(items) == 0:
			if err := s.waitForRevision(ctx, prefix, readRev); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if readRev == 0 {
			if resp.Header.Revision < minRev {
				if err := s.waitForRevision(ctx, prefix, minRev); err != nil {
					return err
				}
				continue
			}
			// Pin every further batch to the revision of the first.
			readRev = resp.Header.Revision
		}

		consumed := 0
		for _, kv := range resp.Kvs {
			if limit > 0 && int64(len(items)) >= limit {
				break
			}
			consumed++
			key := string(kv.Key)
			lastKey = key
			obj := s.newFunc()
			if err := s.decodeKV(key, kv.Value, obj, kv.ModRevision); err != nil {
				return err
			}
			if ok, err := pred.Matches(obj); err != nil || !ok {
				continue
			}
			items = append(items, obj)
		}
		if consumed < len(resp.Kvs) {
			more = true // the limit was reached inside this batch
			break
		}
		if !resp.More {
			break
		}
		if limit > 0 && int64(len(items)) >= limit {
			more = true
			if pred.Empty() {
				// Without a filter every remaining key is an item.
				n := resp.Count - int64(len(resp.Kvs))
				remaining = &n
			}
			break
		}
		startKey = lastKey + "\x00"
		if batch < maxListBatch {
			batch = min(batch*2, maxListBatch)
		}
	}

	if err := meta.SetList(listObj, items); err != nil {
		return storage.NewError(storage.ErrCodeInvalidObj, prefix, "fill list: %v", err)
	}
	listAcc.SetResourceVersion(strconv.FormatInt(readRev, 10))
	listAcc.SetContinue("")
	listAcc.SetRemainingItemCount(nil)
	if more {
		tok, err := encodeContinue(readRev, strings.TrimPrefix(lastKey, prefix)+"\x00")
		if err != nil {
			return fmt.Errorf("list %s: continue token: %w", prefix, err)
		}
		listAcc.SetContinue(tok)
		listAcc.SetRemainingItemCount(remaining)
	}
	return nil
}

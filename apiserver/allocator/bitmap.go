package allocator

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// RepairGrace is how long after its allocation a value that no object
// uses yet is still considered in flight (allocated by a create that has
// not stored its object). Repair keeps such values instead of freeing
// them; it must exceed the longest create request.
const RepairGrace = 2 * time.Minute

// record is the JSON stored in etcd. Data is the bitmap (bit i = offset i,
// least significant bit first), deflate-compressed because a /12 range is
// a 128 KiB bitmap that is almost all zeros and is rewritten on every
// allocation. Recent lists allocations younger than RepairGrace.
type record struct {
	Kind       string   `json:"kind"`
	APIVersion string   `json:"apiVersion"`
	Range      string   `json:"range"`
	Encoding   string   `json:"encoding,omitempty"`
	Data       []byte   `json:"data"`
	Recent     []recent `json:"recent,omitempty"`
}

type recent struct {
	Offset int   `json:"offset"`
	At     int64 `json:"at"` // unix seconds
}

const encodingDeflate = "deflate"

// state is the decoded record.
type state struct {
	bits   []byte
	recent []recent
	// fresh is set when nothing usable was stored (no key yet, or Repair
	// replacing a bitmap of another range), so writing is needed even if
	// the bits do not change.
	fresh bool
}

func (s *state) has(i int) bool { return s.bits[i/8]&(1<<(i%8)) != 0 }
func (s *state) set(i int)      { s.bits[i/8] |= 1 << (i % 8) }
func (s *state) clear(i int)    { s.bits[i/8] &^= 1 << (i % 8) }

func (s *state) count() int {
	n := 0
	for _, b := range s.bits {
		n += bits.OnesCount8(b)
	}
	return n
}

// bitmapRange is the value-agnostic core shared by both allocators: a range
// of size offsets [0, size) persisted under key.
type bitmapRange struct {
	client *clientv3.Client
	key    string
	spec   string // the range as text, stored and compared on load
	size   int
	// dynamicFrom is where dynamic allocations start looking (the upper
	// band); reservedLow offsets are never handed out dynamically.
	dynamicFrom int
	reservedLow int

	// mu serialises this process's writers so they queue locally instead
	// of losing compare-and-swap races against each other in etcd.
	mu  sync.Mutex
	now func() time.Time
	// conflicts counts lost compare-and-swap rounds (for tests and
	// future metrics).
	conflicts atomic.Int64
}

func newBitmapRange(client *clientv3.Client, key, spec string, size, dynamicFrom, reservedLow int) *bitmapRange {
	return &bitmapRange{client: client, key: key, spec: spec, size: size,
		dynamicFrom: dynamicFrom, reservedLow: reservedLow, now: time.Now}
}

// bandOffset returns where the dynamic (upper) band of a range of size
// starts: size/step, clamped to [lo, hi], or 0 for ranges smaller than lo.
// This mirrors Kubernetes' split of service IP and node port ranges.
func bandOffset(size, lo, hi, step int) int {
	if size < lo {
		return 0
	}
	return min(max(size/step, lo), hi)
}

func (r *bitmapRange) empty() *state {
	return &state{bits: make([]byte, (r.size+7)/8), fresh: true}
}

func (r *bitmapRange) decode(raw []byte) (*state, error) {
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("allocator %s: decode stored range: %w", r.key, err)
	}
	if rec.Range != r.spec {
		return nil, fmt.Errorf("allocator %s: %w: stored %q, configured %q", r.key, ErrRangeChanged, rec.Range, r.spec)
	}
	data := rec.Data
	switch rec.Encoding {
	case "":
	case encodingDeflate:
		var err error
		data, err = io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(rec.Data)), int64((r.size+7)/8+1)))
		if err != nil {
			return nil, fmt.Errorf("allocator %s: inflate bitmap: %w", r.key, err)
		}
	default:
		return nil, fmt.Errorf("allocator %s: unknown bitmap encoding %q", r.key, rec.Encoding)
	}
	st := r.empty()
	if len(data) > len(st.bits) {
		return nil, fmt.Errorf("allocator %s: stored bitmap has %d bytes, range %s needs %d", r.key, len(data), r.spec, len(st.bits))
	}
	copy(st.bits, data)
	st.recent = rec.Recent
	st.fresh = false
	return st, nil
}

func (r *bitmapRange) encode(st *state) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := flate.NewWriter(&buf, flate.BestSpeed) // level is valid: no error
	// Trailing zero bytes carry no information.
	end := len(st.bits)
	for end > 0 && st.bits[end-1] == 0 {
		end--
	}
	if _, err := zw.Write(st.bits[:end]); err != nil {
		return nil, fmt.Errorf("allocator %s: compress bitmap: %w", r.key, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("allocator %s: compress bitmap: %w", r.key, err)
	}
	return json.Marshal(record{Kind: "RangeAllocation", APIVersion: "v1", Range: r.spec,
		Encoding: encodingDeflate, Data: buf.Bytes(), Recent: st.recent})
}

// read returns the current state (empty if the key does not exist).
func (r *bitmapRange) read(ctx context.Context) (*state, error) {
	resp, err := r.client.Get(ctx, r.key)
	if err != nil {
		return nil, fmt.Errorf("allocator %s: read: %w", r.key, err)
	}
	if len(resp.Kvs) == 0 {
		return r.empty(), nil
	}
	return r.decode(resp.Kvs[0].Value)
}

// update applies fn to the current state and writes the result with a
// compare-and-swap on ModRevision, re-running fn on a lost race. fn
// returns false when nothing needs writing. ignoreRange lets Repair
// replace a bitmap stored for a different range.
func (r *bitmapRange) update(ctx context.Context, ignoreRange bool, fn func(st *state) (bool, error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	resp, err := r.client.Get(ctx, r.key)
	if err != nil {
		return fmt.Errorf("allocator %s: read: %w", r.key, err)
	}
	kvs := resp.Kvs
	for {
		var st *state
		var modRev int64
		if len(kvs) == 0 {
			st = r.empty()
		} else {
			modRev = kvs[0].ModRevision
			st, err = r.decode(kvs[0].Value)
			if err != nil {
				if !ignoreRange {
					return err
				}
				st = r.empty()
			}
		}
		changed, err := fn(st)
		if err != nil || !changed {
			return err
		}
		st.recent = pruneRecent(st.recent, r.now())
		val, err := r.encode(st)
		if err != nil {
			return err
		}
		// The Else branch returns the winner's value so the retry needs
		// no extra round trip.
		txn, err := r.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(r.key), "=", modRev)).
			Then(clientv3.OpPut(r.key, string(val))).
			Else(clientv3.OpGet(r.key)).
			Commit()
		if err != nil {
			return fmt.Errorf("allocator %s: write: %w", r.key, err)
		}
		if txn.Succeeded {
			return nil
		}
		r.conflicts.Add(1)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("allocator %s: %w", r.key, err)
		}
		kvs = txn.Responses[0].GetResponseRange().Kvs
	}
}

func pruneRecent(in []recent, now time.Time) []recent {
	cutoff := now.Add(-RepairGrace).Unix()
	return slices.DeleteFunc(in, func(e recent) bool { return e.At < cutoff })
}

func (r *bitmapRange) markRecent(st *state, offset int) {
	st.recent = append(st.recent, recent{Offset: offset, At: r.now().Unix()})
}

func (r *bitmapRange) forgetRecent(st *state, offset int) {
	st.recent = slices.DeleteFunc(st.recent, func(e recent) bool { return e.Offset == offset })
}

// allocate marks offset used; false if it already was.
func (r *bitmapRange) allocate(ctx context.Context, offset int) (bool, error) {
	ok := false
	err := r.update(ctx, false, func(st *state) (bool, error) {
		if st.has(offset) {
			ok = false
			return false, nil
		}
		st.set(offset)
		r.markRecent(st, offset)
		ok = true
		return true, nil
	})
	return ok, err
}

// allocateNext marks and returns a free offset: first from a random point
// in the dynamic band, then from the rest; false if none is free.
func (r *bitmapRange) allocateNext(ctx context.Context) (int, bool, error) {
	got, found := -1, false
	err := r.update(ctx, false, func(st *state) (bool, error) {
		got, found = r.pick(st)
		if !found {
			return false, nil
		}
		st.set(got)
		r.markRecent(st, got)
		return true, nil
	})
	return got, found, err
}

func (r *bitmapRange) pick(st *state) (int, bool) {
	upperLo := max(r.dynamicFrom, r.reservedLow)
	if i, ok := scanFree(st, upperLo, r.size); ok {
		return i, true
	}
	return scanFree(st, r.reservedLow, upperLo)
}

// scanFree finds a free offset in [lo, hi), starting at a random point and
// wrapping around, so concurrent allocators rarely want the same value.
func scanFree(st *state, lo, hi int) (int, bool) {
	n := hi - lo
	if n <= 0 {
		return 0, false
	}
	start := rand.IntN(n)
	for k := range n {
		if i := lo + (start+k)%n; !st.has(i) {
			return i, true
		}
	}
	return 0, false
}

// peek picks up to n distinct free offsets the way allocateNext would,
// also avoiding the offsets in taken, and writes nothing: a dry run shows
// the values a real allocation would pick without reserving them. ok is
// false when fewer than n are free; got then holds those that were.
func (r *bitmapRange) peek(ctx context.Context, n int, taken []int) (got []int, ok bool, err error) {
	st, err := r.read(ctx)
	if err != nil {
		return nil, false, err
	}
	for _, o := range taken {
		if o >= 0 && o < r.size {
			st.set(o)
		}
	}
	for range n {
		o, found := r.pick(st)
		if !found {
			return got, false, nil
		}
		st.set(o)
		got = append(got, o)
	}
	return got, true, nil
}

// release clears offset; releasing a free offset is a no-op.
func (r *bitmapRange) release(ctx context.Context, offset int) error {
	return r.update(ctx, false, func(st *state) (bool, error) {
		if !st.has(offset) {
			return false, nil
		}
		st.clear(offset)
		r.forgetRecent(st, offset)
		return true, nil
	})
}

func (r *bitmapRange) has(ctx context.Context, offset int) (bool, error) {
	st, err := r.read(ctx)
	if err != nil {
		return false, err
	}
	return st.has(offset), nil
}

func (r *bitmapRange) free(ctx context.Context) (int, error) {
	st, err := r.read(ctx)
	if err != nil {
		return 0, err
	}
	return r.size - st.count(), nil
}

// repairOffsets is what repair found, as offsets.
type repairOffsets struct {
	leaked, pending, duplicates, added []int
}

// repair makes the stored bitmap exactly inUse, except that allocations
// younger than RepairGrace stay allocated (their object may not be stored
// yet). It also replaces a bitmap stored for another range.
func (r *bitmapRange) repair(ctx context.Context, inUse []int) (repairOffsets, error) {
	var res repairOffsets
	err := r.update(ctx, true, func(st *state) (bool, error) {
		res = repairOffsets{}
		next := r.empty()
		seen := make(map[int]bool, len(inUse))
		for _, o := range inUse {
			if seen[o] {
				res.duplicates = append(res.duplicates, o)
				continue
			}
			seen[o] = true
			next.set(o)
			if !st.has(o) {
				res.added = append(res.added, o)
			}
		}
		young := map[int]bool{}
		cutoff := r.now().Add(-RepairGrace).Unix()
		for _, e := range st.recent {
			if e.At >= cutoff {
				young[e.Offset] = true
			}
		}
		for i := 0; i < r.size; i++ {
			if !st.has(i) || next.has(i) {
				continue
			}
			if young[i] {
				next.set(i)
				res.pending = append(res.pending, i)
			} else {
				res.leaked = append(res.leaked, i)
			}
		}
		next.recent = slices.DeleteFunc(slices.Clone(st.recent), func(e recent) bool { return !next.has(e.Offset) })
		changed := st.fresh || !bytes.Equal(next.bits, st.bits) || len(next.recent) != len(st.recent)
		*st = *next
		return changed, nil
	})
	return res, err
}

package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// CompactRevisionKey is the key apiservers sharing one etcd use to agree
// on who compacts in a given interval (its Version counts compactions).
const CompactRevisionKey = "compact_rev_key"

// DefaultCompactionInterval matches Kubernetes' default: history (and so
// the oldest resourceVersion a watch can resume from) is kept for at least
// one interval.
const DefaultCompactionInterval = 5 * time.Minute

// Compact discards etcd history before rev. A revision that is already
// compacted is not an error: the goal (nothing older than rev) holds.
func Compact(ctx context.Context, client *clientv3.Client, rev int64) error {
	if rev <= 0 {
		return nil
	}
	_, err := client.Compact(ctx, rev)
	if err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("etcd: compact to revision %d: %w", rev, err)
	}
	return nil
}

// RunCompactor compacts every interval to the revision it observed one
// interval earlier, so clients always have at least one interval of history
// to resume watches from. It blocks until ctx is done.
//
// Several apiservers may run it against the same etcd: each round is a
// compare-and-swap on CompactRevisionKey's version, and only the winner of
// a round compacts, so history is not cut twice as fast as intended.
func RunCompactor(ctx context.Context, client *clientv3.Client, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultCompactionInterval
	}
	log := slog.With("component", "etcd-compactor")
	var (
		version int64 // CompactRevisionKey's version as we last saw it
		prevRev int64 // revision observed one round ago; 0 = none yet
	)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		var err error
		version, prevRev, err = compactRound(ctx, client, version, prevRev)
		if err != nil && ctx.Err() == nil {
			log.Warn("compaction round failed", "reason", err)
		}
	}
}

// compactRound claims this round by bumping CompactRevisionKey's version if
// nobody else did since we last looked. The claim's header revision is
// remembered and compacted to one round later.
func compactRound(ctx context.Context, client *clientv3.Client, version, prevRev int64) (int64, int64, error) {
	resp, err := client.Txn(ctx).
		If(clientv3.Compare(clientv3.Version(CompactRevisionKey), "=", version)).
		Then(clientv3.OpPut(CompactRevisionKey, "")).
		Else(clientv3.OpGet(CompactRevisionKey)).
		Commit()
	if err != nil {
		return version, prevRev, fmt.Errorf("claim %s: %w", CompactRevisionKey, err)
	}
	if !resp.Succeeded {
		// Another apiserver compacted in this round; follow its count and
		// start our own window afresh.
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) > 0 {
			version = kvs[0].Version
		} else {
			version = 0
		}
		return version, 0, nil
	}
	cur := resp.Header.Revision
	if err := Compact(ctx, client, prevRev); err != nil {
		return version + 1, cur, err
	}
	if prevRev > 0 {
		slog.Debug("compacted etcd", "component", "etcd-compactor", "revision", prevRev)
	}
	return version + 1, cur, nil
}

package informer

import (
	"context"
	"time"
)

// Syncer is anything that can say whether its cache is filled: an
// Informer, a Typed informer, a Factory.
type Syncer interface {
	HasSynced() bool
}

// syncPollInterval is how often WaitForCacheSync checks; sync happens once
// per informer lifetime, so polling is simpler than wiring notifications.
const syncPollInterval = 50 * time.Millisecond

// WaitForCacheSync blocks until every syncer has synced (true) or ctx ends
// (false). Controllers call it before starting workers so they never act on
// an empty cache.
func WaitForCacheSync(ctx context.Context, syncers ...Syncer) bool {
	t := time.NewTicker(syncPollInterval)
	defer t.Stop()
	for {
		all := true
		for _, s := range syncers {
			if !s.HasSynced() {
				all = false
				break
			}
		}
		if all {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

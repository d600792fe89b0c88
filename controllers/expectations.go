package controllers

import (
	"sync"
	"time"
)

// ExpectationsTimeout is how long expectations are trusted. If a watch
// event is lost for good (it should not be: informers re-list), the
// controller acts again after this long rather than never.
const ExpectationsTimeout = 5 * time.Minute

// Expectations remember, per controller key, the creations and deletions a
// controller has issued but not yet seen come back through its informer.
// While some are outstanding the cache is known to be behind the
// controller's own writes, and acting on it would create or delete twice;
// so a controller only changes the number of things it manages when its
// expectations are satisfied.
//
// Creations are counted (the names are not known before the create
// returns, and the watch event may arrive first); deletions are tracked by
// object key, so seeing a deletion twice (a graceful delete sets
// deletionTimestamp, then the object goes) counts once.
type Expectations struct {
	mu  sync.Mutex
	m   map[string]*expectation
	now func() time.Time
}

type expectation struct {
	adds int
	dels map[string]struct{}
	at   time.Time
}

// NewExpectations returns empty expectations.
func NewExpectations() *Expectations {
	return &Expectations{m: map[string]*expectation{}, now: time.Now}
}

// ExpectCreations records that n creations for key are in flight,
// replacing any earlier record.
func (e *Expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{adds: n, at: e.now()}
}

// ExpectDeletions records that the objects objKeys are being deleted for
// key, replacing any earlier record.
func (e *Expectations) ExpectDeletions(key string, objKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	dels := make(map[string]struct{}, len(objKeys))
	for _, k := range objKeys {
		dels[k] = struct{}{}
	}
	e.m[key] = &expectation{dels: dels, at: e.now()}
}

// CreationObserved counts one creation for key as seen (or as never going
// to happen, when the create failed).
func (e *Expectations) CreationObserved(key string) { e.LowerCreations(key, 1) }

// LowerCreations counts n creations for key as seen or abandoned.
func (e *Expectations) LowerCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.adds > 0 {
		x.adds = max(0, x.adds-n)
	}
}

// DeletionObserved marks the deletion of objKey for key as seen (or as
// never going to happen).
func (e *Expectations) DeletionObserved(key, objKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.dels, objKey)
	}
}

// Satisfied reports whether the controller may act on key: nothing is
// outstanding, nothing was ever recorded, or the record is too old to
// trust.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	return (x.adds <= 0 && len(x.dels) == 0) || e.now().Sub(x.at) > ExpectationsTimeout
}

// Forget drops key's record (its object is gone).
func (e *Expectations) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

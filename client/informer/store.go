package informer

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// IndexFunc computes the values under which an object is indexed.
type IndexFunc func(obj runtime.Object) ([]string, error)

// Indexers names index functions.
type Indexers map[string]IndexFunc

// NamespaceIndex is the index every Indexer has: objects by namespace.
const NamespaceIndex = "namespace"

// MetaNamespaceIndexFunc indexes an object by its namespace.
func MetaNamespaceIndexFunc(obj runtime.Object) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	return []string{m.GetNamespace()}, nil
}

// Indexer is a thread-safe map from key (MetaNamespaceKeyFunc) to object,
// with secondary indices. A write that an index function rejects changes
// nothing.
type Indexer struct {
	mu       sync.RWMutex
	items    map[string]runtime.Object
	indexers Indexers
	// indices[indexName][value] is the set of keys indexed under value.
	indices map[string]map[string]map[string]struct{}
}

// NewIndexer returns an empty store with the namespace index plus indexers.
func NewIndexer(indexers Indexers) *Indexer {
	s := &Indexer{
		items:    map[string]runtime.Object{},
		indexers: Indexers{NamespaceIndex: MetaNamespaceIndexFunc},
		indices:  map[string]map[string]map[string]struct{}{NamespaceIndex: {}},
	}
	for name, f := range indexers {
		s.indexers[name] = f
		s.indices[name] = map[string]map[string]struct{}{}
	}
	return s
}

// ErrIndexerExists is what AddIndexers returns for a name already taken.
var ErrIndexerExists = errors.New("indexer already exists")

// AddIndexers adds indices, indexing the objects already stored.
func (s *Indexer) AddIndexers(indexers Indexers) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range indexers {
		if _, dup := s.indexers[name]; dup {
			return fmt.Errorf("indexer %q: %w", name, ErrIndexerExists)
		}
	}
	built := map[string]map[string]map[string]struct{}{}
	for name, f := range indexers {
		idx := map[string]map[string]struct{}{}
		for key, obj := range s.items {
			vals, err := f(obj)
			if err != nil {
				return fmt.Errorf("index %q of %s: %w", name, key, err)
			}
			addToIndex(idx, vals, key)
		}
		built[name] = idx
	}
	for name, f := range indexers {
		s.indexers[name] = f
		s.indices[name] = built[name]
	}
	return nil
}

// Add stores obj (inserting or replacing by key).
func (s *Indexer) Add(obj runtime.Object) error {
	key, err := MetaNamespaceKeyFunc(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(key, obj)
}

// Update is Add.
func (s *Indexer) Update(obj runtime.Object) error { return s.Add(obj) }

// Delete removes the object with obj's key. Deleting a missing key is fine.
func (s *Indexer) Delete(obj any) error {
	key, err := MetaNamespaceKeyFunc(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteLocked(key)
	return nil
}

// Replace makes the store hold exactly objs.
func (s *Indexer) Replace(objs []runtime.Object) error {
	items := make(map[string]runtime.Object, len(objs))
	for _, obj := range objs {
		key, err := MetaNamespaceKeyFunc(obj)
		if err != nil {
			return err
		}
		items[key] = obj
	}
	indices := map[string]map[string]map[string]struct{}{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, f := range s.indexers {
		idx := map[string]map[string]struct{}{}
		for key, obj := range items {
			vals, err := f(obj)
			if err != nil {
				return fmt.Errorf("index %q of %s: %w", name, key, err)
			}
			addToIndex(idx, vals, key)
		}
		indices[name] = idx
	}
	s.items, s.indices = items, indices
	return nil
}

func (s *Indexer) putLocked(key string, obj runtime.Object) error {
	// Compute every index value first so a failing index func leaves the
	// store untouched.
	newVals := make(map[string][]string, len(s.indexers))
	for name, f := range s.indexers {
		vals, err := f(obj)
		if err != nil {
			return fmt.Errorf("index %q of %s: %w", name, key, err)
		}
		newVals[name] = vals
	}
	if old, ok := s.items[key]; ok {
		s.unindexLocked(key, old)
	}
	s.items[key] = obj
	for name, vals := range newVals {
		addToIndex(s.indices[name], vals, key)
	}
	return nil
}

func (s *Indexer) deleteLocked(key string) {
	old, ok := s.items[key]
	if !ok {
		return
	}
	s.unindexLocked(key, old)
	delete(s.items, key)
}

// unindexLocked removes key from every index using old's values. Index
// funcs are pure, so recomputing gives the values it was filed under.
func (s *Indexer) unindexLocked(key string, old runtime.Object) {
	for name, f := range s.indexers {
		vals, err := f(old)
		if err != nil {
			// Cannot happen for an object that was indexed; fall back to a
			// full scan so no stale entry survives.
			for v, keys := range s.indices[name] {
				delete(keys, key)
				if len(keys) == 0 {
					delete(s.indices[name], v)
				}
			}
			continue
		}
		for _, v := range vals {
			keys := s.indices[name][v]
			delete(keys, key)
			if len(keys) == 0 {
				delete(s.indices[name], v)
			}
		}
	}
}

func addToIndex(idx map[string]map[string]struct{}, vals []string, key string) {
	for _, v := range vals {
		keys := idx[v]
		if keys == nil {
			keys = map[string]struct{}{}
			idx[v] = keys
		}
		keys[key] = struct{}{}
	}
}

// Get returns the object stored under key.
func (s *Indexer) Get(key string) (runtime.Object, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	obj, ok := s.items[key]
	return obj, ok
}

// List returns every stored object, in no particular order.
func (s *Indexer) List() []runtime.Object {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Collect(maps.Values(s.items))
}

// ListKeys returns every key, sorted.
func (s *Indexer) ListKeys() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.items))
}

// Len is the number of stored objects.
func (s *Indexer) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.items)
}

// ByIndex returns the objects indexed under value in index name.
func (s *Indexer) ByIndex(name, value string) ([]runtime.Object, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx, ok := s.indices[name]
	if !ok {
		return nil, fmt.Errorf("index %q does not exist", name)
	}
	keys := idx[value]
	out := make([]runtime.Object, 0, len(keys))
	for k := range keys {
		out = append(out, s.items[k])
	}
	return out, nil
}

// IndexKeys returns the keys indexed under value in index name, sorted.
func (s *Indexer) IndexKeys(name, value string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx, ok := s.indices[name]
	if !ok {
		return nil, fmt.Errorf("index %q does not exist", name)
	}
	return slices.Sorted(maps.Keys(idx[value])), nil
}

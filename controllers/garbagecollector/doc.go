// Package garbagecollector owns cascading deletion through
// metadata.ownerReferences, as Kubernetes' garbage collector does:
//
//   - background: an object all of whose owners are gone is deleted;
//   - foreground: an owner being deleted with the foregroundDeletion
//     finalizer has its dependents deleted (themselves in the foreground)
//     and keeps existing until no dependent with blockOwnerDeletion=true
//     is left, then the collector removes the finalizer;
//   - orphan: an owner being deleted with the orphan finalizer has its
//     ownerReference removed from every dependent, then the finalizer.
//
// It watches every kind it knows through the shared informers (events
// excepted: they are never owners and are too many to cache) and indexes
// objects by owner UID. Before deleting anything because an owner looks
// absent in the cache, it asks the API server, so a lagging cache never
// causes a wrong deletion. It never deletes objects without
// ownerReferences and never touches finalizers other than its own two.
package garbagecollector

// Package informer owns the client-side cache of API objects that every
// minik8s component reads from: list once, watch from the list's
// resourceVersion, keep a thread-safe indexed store current, tell event
// handlers what changed, and recover by re-listing when the server says the
// watch is too old (410 Gone).
//
// Pieces: ListerWatcher (where objects come from), Indexer (the store),
// Informer (the list+watch loop and handler fan-out), Lister[T] (typed
// reads), Factory (one shared informer per resource, as DESIGN rule 7
// demands), and the key helpers (MetaNamespaceKeyFunc, SplitMetaNamespaceKey).
//
// Objects handed out by the store and to handlers are shared: callers must
// treat them as read-only and DeepCopy before changing them. The package
// never writes to the API server.
package informer

// Package typed owns the typed API clients: one generic Client[T, L] that
// speaks get/list/watch/create/update/patch/delete for any resource, thin
// wrappers that add subresource verbs (pods/binding, */scale), and the
// Clientset holding a ready-made client for every resource minik8s serves.
//
// It only shapes requests and decodes answers through client/rest; it must
// not cache, retry conflicts or hold state between calls (informers and
// controllers do that).
package typed

// Package namespace owns the Namespace controller: when a namespace is
// deleted (the API server sets it Terminating and refuses new content), it
// deletes everything in it — every namespaced resource the server's
// discovery lists — waits until nothing is left (pods on nodes finish
// their graceful deletion, objects with finalizers are released by their
// owners), reporting what remains in status.conditions, and then removes
// the "kubernetes" finalizer through namespaces/{name}/finalize so the
// server can delete the namespace.
//
// It never touches namespaces that are not being deleted, and never
// removes finalizers other than "kubernetes".
package namespace

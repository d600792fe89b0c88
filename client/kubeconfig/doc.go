// Package kubeconfig reads and writes kubeconfig files in the standard
// kubectl format (apiVersion v1, kind Config), so the files minik8s writes
// work with stock kubectl and client-go, and minik8s clients can use
// kubeconfigs written by kubectl.
//
// It resolves one context to a flat Config (server, CA, token or client
// certificate, namespace) and turns that into a *tls.Config and an
// *http.Client that adds the bearer token. Only static credentials are
// supported; exec and auth-provider plugins are rejected with a clear
// error. The package does no API calls itself.
package kubeconfig

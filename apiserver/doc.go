// Package apiserver assembles the API server: it starts (or connects to)
// etcd, bootstraps the PKI, tokens and encryption key on first start, builds
// one store plus watch cache per resource, wires the REST handlers, discovery,
// health and metrics behind authentication, creates the built-in objects
// (default namespaces, the kubernetes Service) and serves HTTPS.
//
// Everything else in the cluster talks to etcd only through this server.
package apiserver

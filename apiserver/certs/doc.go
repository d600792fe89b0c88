// Package certs owns the API server's PKI bootstrap: "secure by default".
//
// On first start EnsurePKI creates a private certificate authority and a
// serving certificate for the API server signed by it; later starts reuse
// them and only re-issue the serving certificate when it no longer covers
// the requested host names or is close to expiry. Clients (kubeconfigs,
// components) trust ca.crt.
//
// The package only manages files in the directory it is given and builds
// the server's tls.Config; it does not authenticate requests (see
// apiserver/auth) and does not issue client certificates.
package certs

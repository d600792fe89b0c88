// Package auth owns who a request is (authentication) and the hook that
// decides what it may do (authorization).
//
// Authentication is by bearer token against a static token file in the
// Kubernetes format (token,user,uid,"group1,group2"), created on first
// start with one random token per control-plane identity, and re-read while
// the server runs (TokenFile.WatchFile) so tokens added with CreateToken or
// removed with DeleteToken take effect without a restart. WithAuthentication
// is the HTTP middleware that puts the UserInfo into the request context;
// requests without credentials are refused with a 401 Status except on the
// configured anonymous paths (health and version endpoints).
//
// Authorization: every authenticated user is allowed everything for now
// (AlwaysAllow). RBAC is out of scope; the Authorizer interface is where it
// would plug in, and the REST layer is expected to call it with the
// request's Attributes. This package does not parse REST paths itself.
package auth

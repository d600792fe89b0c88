package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrInvalidToken means a bearer token was presented but matches no user.
var ErrInvalidToken = errors.New("invalid bearer token")

// Authenticator identifies the user making a request. It returns
// (user, true, nil) on success, (nil, false, nil) when the request carries
// no credentials it understands, and an error when credentials were
// presented but are invalid.
type Authenticator interface {
	AuthenticateRequest(r *http.Request) (*UserInfo, bool, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (*UserInfo, bool, error)

// AuthenticateRequest calls fn.
func (fn AuthenticatorFunc) AuthenticateRequest(r *http.Request) (*UserInfo, bool, error) {
	return fn(r)
}

// Union tries each authenticator in order; the first success wins. If none
// succeeds, the errors of those that rejected credentials are joined, so a
// bad token is still reported as bad rather than as missing.
func Union(authns ...Authenticator) Authenticator {
	return AuthenticatorFunc(func(r *http.Request) (*UserInfo, bool, error) {
		var errs []error
		for _, a := range authns {
			u, ok, err := a.AuthenticateRequest(r)
			if ok {
				return u, true, nil
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		return nil, false, errors.Join(errs...)
	})
}

// DefaultAnonymousPaths are served without credentials, as on a Kubernetes
// API server with the default system:public-info-viewer binding.
var DefaultAnonymousPaths = []string{"/healthz", "/livez", "/readyz", "/version"}

// websocketTokenPrefix carries a bearer token inside Sec-WebSocket-Protocol,
// for browser clients that cannot set an Authorization header on a
// WebSocket upgrade (the Kubernetes convention).
const websocketTokenPrefix = "base64url.bearer.authorization.k8s.io."

// BearerToken extracts the token from "Authorization: Bearer <token>" (the
// scheme is case-insensitive), or from the WebSocket subprotocol form.
func BearerToken(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
		if ok && strings.EqualFold(scheme, "bearer") {
			if token = strings.TrimSpace(token); token != "" {
				return token, true
			}
		}
		return "", false
	}
	for _, p := range websocketProtocols(r) {
		if enc, ok := strings.CutPrefix(p, websocketTokenPrefix); ok {
			b, err := base64.RawURLEncoding.DecodeString(enc)
			if err == nil && len(b) > 0 {
				return string(b), true
			}
		}
	}
	return "", false
}

func websocketProtocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// hasCredentials reports whether r tries to authenticate at all.
func hasCredentials(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" {
		return true
	}
	for _, p := range websocketProtocols(r) {
		if strings.HasPrefix(p, websocketTokenPrefix) {
			return true
		}
	}
	return false
}

// WithAuthentication authenticates every request with authn before calling
// handler. On success the user (with system:authenticated added) is stored
// in the request context (see UserFrom) and the credentials are removed
// from the request, so nothing downstream can forward them.
//
// A request without credentials to one of anonymousPaths (an exact path or
// anything below it, e.g. /healthz/etcd) proceeds as the anonymous user.
// Every other failure, including invalid credentials on an anonymous path
// (as in Kubernetes), goes to unauthenticated; nil means
// WriteUnauthorized.
func WithAuthentication(handler http.Handler, authn Authenticator, unauthenticated func(w http.ResponseWriter, r *http.Request), anonymousPaths ...string) http.Handler {
	if unauthenticated == nil {
		unauthenticated = WriteUnauthorized
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok, err := authn.AuthenticateRequest(r)
		if ok && u != nil {
			// Copy before adding the group: an authenticator may hand out
			// a shared value.
			u = &UserInfo{Name: u.Name, UID: u.UID, Groups: slices.Clone(u.Groups)}
			if !u.InGroup(GroupAuthenticated) && u.Name != UserAnonymous {
				u.Groups = append(u.Groups, GroupAuthenticated)
			}
			r = r.Clone(WithUser(r.Context(), u))
			stripCredentials(r)
			handler.ServeHTTP(w, r)
			return
		}
		if err == nil && !hasCredentials(r) && anonymousAllowed(r.URL.Path, anonymousPaths) {
			handler.ServeHTTP(w, r.WithContext(WithUser(r.Context(), Anonymous())))
			return
		}
		if err != nil {
			slog.Debug("authentication failed", "component", "apiserver", "path", r.URL.Path,
				"remote", r.RemoteAddr, "reason", err)
		}
		unauthenticated(w, r)
	})
}

func anonymousAllowed(path string, allowed []string) bool {
	for _, a := range allowed {
		a = strings.TrimSuffix(a, "/")
		if path == a || strings.HasPrefix(path, a+"/") {
			return true
		}
	}
	return false
}

func stripCredentials(r *http.Request) {
	r.Header.Del("Authorization")
	protos := websocketProtocols(r)
	if len(protos) == 0 {
		return
	}
	kept := protos[:0]
	for _, p := range protos {
		if !strings.HasPrefix(p, websocketTokenPrefix) {
			kept = append(kept, p)
		}
	}
	r.Header.Del("Sec-WebSocket-Protocol")
	if len(kept) > 0 {
		r.Header.Set("Sec-WebSocket-Protocol", strings.Join(kept, ","))
	}
}

// WriteUnauthorized writes the Kubernetes 401 Status body.
func WriteUnauthorized(w http.ResponseWriter, _ *http.Request) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  "Unauthorized",
		Reason:   metav1.StatusReasonUnauthorized,
		Code:     http.StatusUnauthorized,
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(&st)
}

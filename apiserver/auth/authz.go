package auth

import "context"

// Decision is an authorizer's verdict.
type Decision int

const (
	// DecisionNoOpinion lets the next authorizer in a chain decide; at the
	// end of a chain it means deny.
	DecisionNoOpinion Decision = iota
	DecisionAllow
	DecisionDeny
)

// Attributes describe a request for authorization, in Kubernetes terms.
type Attributes struct {
	User            *UserInfo
	Verb            string // get, list, watch, create, update, patch, delete, deletecollection; or the HTTP verb for non-resource requests
	ResourceRequest bool
	APIGroup        string
	APIVersion      string
	Namespace       string
	Resource        string
	Subresource     string
	Name            string
	Path            string // the URL path, for non-resource requests such as /healthz
}

// Authorizer decides whether a request may proceed; reason is shown to the
// client in a 403 Status.
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (decision Decision, reason string, err error)
}

// AlwaysAllow permits everything. It is the only authorizer for now: any
// authenticated user (and anonymous users on the anonymous paths) has full
// access. RBAC is out of scope.
type AlwaysAllow struct{}

// Authorize implements Authorizer.
func (AlwaysAllow) Authorize(context.Context, Attributes) (Decision, string, error) {
	return DecisionAllow, "", nil
}

package auth

import "context"

// Well-known user and group names, as in Kubernetes.
const (
	GroupMasters         = "system:masters"
	GroupNodes           = "system:nodes"
	GroupAuthenticated   = "system:authenticated"
	GroupUnauthenticated = "system:unauthenticated"
	UserAnonymous        = "system:anonymous"

	UserAdmin             = "admin"
	UserControllerManager = "system:kube-controller-manager"
	UserScheduler         = "system:kube-scheduler"
	UserProxy             = "system:kube-proxy"
	// UserNodeJoin is the identity of the cluster join token (the
	// <data-dir>/node-token a new node presents); a member of system:nodes.
	UserNodeJoin = "system:node-join"
	// NodeUserPrefix + node name is the identity of a kubelet.
	NodeUserPrefix = "system:node:"
)

// UserInfo is an authenticated (or anonymous) identity.
type UserInfo struct {
	Name   string
	UID    string
	Groups []string
}

// InGroup reports whether u is a member of group.
func (u *UserInfo) InGroup(group string) bool {
	if u == nil {
		return false
	}
	for _, g := range u.Groups {
		if g == group {
			return true
		}
	}
	return false
}

// Anonymous is the identity given to credential-less requests on anonymous
// paths, matching Kubernetes' anonymous user.
func Anonymous() *UserInfo {
	return &UserInfo{Name: UserAnonymous, Groups: []string{GroupUnauthenticated}}
}

// NodeUser returns the user name of the kubelet on node.
func NodeUser(node string) string { return NodeUserPrefix + node }

// DefaultGroups returns the groups EnsureTokens gives a user it creates:
// admin is a cluster superuser (system:masters) and kubelets are in
// system:nodes; the other component identities need no group.
func DefaultGroups(user string) []string {
	switch {
	case user == UserAdmin:
		return []string{GroupMasters}
	case user == UserNodeJoin:
		return []string{GroupNodes}
	case len(user) > len(NodeUserPrefix) && user[:len(NodeUserPrefix)] == NodeUserPrefix:
		return []string{GroupNodes}
	}
	return nil
}

type userKey struct{}

// WithUser returns ctx carrying u.
func WithUser(ctx context.Context, u *UserInfo) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user stored by WithUser (set by WithAuthentication).
func UserFrom(ctx context.Context) (*UserInfo, bool) {
	u, ok := ctx.Value(userKey{}).(*UserInfo)
	return u, ok && u != nil
}

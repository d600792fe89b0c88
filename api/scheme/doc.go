// Package scheme owns the one runtime.Scheme of minik8s: every API group
// (core/v1, apps/v1, coordination.k8s.io/v1, autoscaling/v1, policy/v1), the
// meta types (Status, ListOptions, DeleteOptions, WatchEvent, Table ...) and
// the defaulting functions, plus the codec factories built on it. Components
// encode, decode and default objects through it; it holds no state beyond
// the registrations made at init.
package scheme

// Package proxy owns the node's service data path: it watches Services and
// Endpoints and programs iptables so that a Service's cluster IP, external
// IPs and node ports reach its ready endpoints, as kube-proxy does in
// iptables mode.
//
// The pieces, from pure to impure:
//
//   - model.go turns Services and Endpoints into ServicePorts (one per
//     service port, with its ready endpoints), hash.go names their chains
//     (KUBE-SVC-<hash>, KUBE-SEP-<hash>);
//   - render.go renders the whole desired state, chain by chain (nat and
//     filter tables), with no I/O, so it is golden-tested;
//   - plan.go compares it with the kernel's chains (read back with
//     iptables-save) or with what the last sync applied, and writes only
//     the chains that differ, as iptables-restore --noflush input;
//   - iptables.go applies that in one `iptables-restore --noflush` call
//     (a very large rewrite is split, see Plan), keeps the jump rules from
//     the built-in chains in place with go-iptables, flushes stale UDP
//     conntrack entries and removes everything on --cleanup;
//   - proxier.go runs the loop: informers trigger syncs, which are
//     rate-limited and coalesced (runner.go), with a periodic full resync;
//     it serves /metrics and /healthz.
//
// The package only reads from the API server. It owns the KUBE-* chains it
// declares (see OwnedChains) and the jump rules to them; it must not touch
// any other rule. netns.go lets a caller run all of it inside a named
// network namespace, which is how tests keep off the host's iptables.
package proxy

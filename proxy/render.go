package proxy

import (
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Chains the proxy owns besides the per-service KUBE-SVC/KUBE-SEP chains.
const (
	ChainServices         = "KUBE-SERVICES"          // nat and filter
	ChainNodePorts        = "KUBE-NODEPORTS"         // nat
	ChainPostrouting      = "KUBE-POSTROUTING"       // nat
	ChainMarkMasq         = "KUBE-MARK-MASQ"         // nat
	ChainExternalServices = "KUBE-EXTERNAL-SERVICES" // filter
	ChainForward          = "KUBE-FORWARD"           // filter
	ChainProxyFirewall    = "KUBE-PROXY-FIREWALL"    // filter
)

// MasqueradeMark is the packet mark bit that asks KUBE-POSTROUTING to
// masquerade a connection, as in Kubernetes.
const MasqueradeMark = "0x4000"

// natChains and filterChains are the fixed chains each table gets, in the
// order they are declared.
var (
	natChains    = []string{ChainServices, ChainNodePorts, ChainPostrouting, ChainMarkMasq}
	filterChains = []string{ChainServices, ChainExternalServices, ChainForward, ChainProxyFirewall}
)

// OwnedChain reports whether a chain of the given table is one the proxy
// creates (and so may flush and delete).
func OwnedChain(table, chain string) bool {
	switch table {
	case "nat":
		return slices.Contains(natChains, chain) || strings.HasPrefix(chain, svcChainPrefix) || strings.HasPrefix(chain, sepChainPrefix)
	case "filter":
		return slices.Contains(filterChains, chain)
	}
	return false
}

// RenderOptions are the node-wide settings that shape the rules.
type RenderOptions struct {
	// ClusterCIDR is the pod network. Traffic to a cluster IP from outside
	// it is masqueraded so replies come back through this node. The zero
	// value disables that rule (then off-cluster clients must route pod
	// replies themselves), as kube-proxy does without --cluster-cidr.
	ClusterCIDR netip.Prefix
	// NodePortAddresses limits node ports to local addresses inside these
	// prefixes; empty means every local address.
	NodePortAddresses []netip.Prefix
	// RandomFully adds --random-fully to MASQUERADE (iptables >= 1.6.2).
	RandomFully bool
}

// Chain is one rendered chain: the rules the proxy wants in it.
type Chain struct {
	Table string
	Name  string
	// Owner is the service port ("namespace/name:port") a KUBE-SVC or
	// KUBE-SEP chain belongs to; "" for the fixed chains.
	Owner string
	// Lines are the rules, each "-A NAME ...".
	Lines []string
	hash  uint64
}

// Key is "table/name".
func (c *Chain) Key() string { return c.Table + "/" + c.Name }

// Rules is one rendered desired state, chain by chain.
type Rules struct {
	// Chains in the order they are written: filter's fixed chains, nat's
	// fixed chains, then each service port's KUBE-SVC chain followed by
	// its KUBE-SEP chains.
	Chains []*Chain
	// ServiceChains are the names of the KUBE-SVC and KUBE-SEP chains.
	ServiceChains map[string]struct{}
	// NATRules and FilterRules count the rules per table.
	NATRules, FilterRules int
}

// Hashes maps each chain's Key to the hash of its rules, the form Plan
// compares against.
func (r *Rules) Hashes() map[string]uint64 {
	out := make(map[string]uint64, len(r.Chains))
	for _, c := range r.Chains {
		out[c.Key()] = c.hash
	}
	return out
}

// Text is the whole state as one iptables-restore input that declares
// (and so flushes) every chain: what a sync writes when it knows nothing
// about the kernel's current rules.
func (r *Rules) Text() []byte {
	p := r.Plan(nil, 0)
	if len(p.Commits) == 0 {
		return nil
	}
	return p.Commits[0]
}

// ruleBuf collects the rules of one chain.
type ruleBuf struct {
	c *Chain
}

func (r ruleBuf) add(args ...string) {
	var b strings.Builder
	n := 4 + len(r.c.Name)
	for _, a := range args {
		n += 1 + len(a)
	}
	b.Grow(n)
	b.WriteString("-A ")
	b.WriteString(r.c.Name)
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	r.c.Lines = append(r.c.Lines, b.String())
}

// comment returns the args of an iptables comment match; text never holds
// a double quote (it is made of Kubernetes names, IPs and ports).
func comment(text string) []string {
	return []string{"-m", "comment", "--comment", `"` + text + `"`}
}

// join concatenates argument groups into one slice.
func join(groups ...[]string) []string {
	n := 0
	for _, g := range groups {
		n += len(g)
	}
	out := make([]string, 0, n)
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func hostPrefix(a netip.Addr) string { return a.String() + "/32" }

// portMatch is "-p proto -m proto --dport port".
func portMatch(proto string, port int32) []string {
	return []string{"-p", proto, "-m", proto, "--dport", portString(port)}
}

// nodePortDest are the destination matches that select the node's own
// addresses for node ports: one entry per allowed prefix.
func nodePortDest(opts RenderOptions) [][]string {
	local := []string{"-m", "addrtype", "--dst-type", "LOCAL"}
	if len(opts.NodePortAddresses) == 0 {
		return [][]string{local}
	}
	var out [][]string
	for _, p := range opts.NodePortAddresses {
		if p.Bits() == 0 {
			return [][]string{local}
		}
		out = append(out, join([]string{"-d", p.String()}, local))
	}
	return out
}

// probability is the chance that the i-th of n fan-out rules (0-based)
// takes a connection that reached it, so that every endpoint gets 1/n. It
// is written as iptables stores and prints it (a 31-bit fixed-point
// fraction, 11 decimals), so rules read back compare equal.
func probability(i, n int) string {
	fixed := math.Round(0x80000000 / float64(n-i))
	return strconv.FormatFloat(fixed/0x80000000, 'f', 11, 64)
}

// Render renders the desired state for ports. It does no I/O and its
// output depends only on its input.
func Render(ports []*ServicePort, opts RenderOptions) *Rules {
	out := &Rules{ServiceChains: make(map[string]struct{}, len(ports)*4)}
	newChain := func(table, name, owner string) ruleBuf {
		c := &Chain{Table: table, Name: name, Owner: owner}
		out.Chains = append(out.Chains, c)
		return ruleBuf{c}
	}
	var (
		filterServices = newChain("filter", ChainServices, "")
		filterExternal = newChain("filter", ChainExternalServices, "")
		filterForward  = newChain("filter", ChainForward, "")
		filterFirewall = newChain("filter", ChainProxyFirewall, "")
		natServices    = newChain("nat", ChainServices, "")
		natNodePorts   = newChain("nat", ChainNodePorts, "")
		natPostrouting = newChain("nat", ChainPostrouting, "")
		natMarkMasq    = newChain("nat", ChainMarkMasq, "")
	)

	// Masquerading: anything marked by KUBE-MARK-MASQ is SNATed on its way
	// out, once (the mark is cleared so a re-routed packet is not SNATed
	// twice). MARK is written as iptables-save prints it (--set-xmark
	// value/mask: 0x4000/0x4000 sets the bit, 0x4000/0x0 flips it), so
	// rules read back from the kernel compare equal.
	mask := MasqueradeMark + "/" + MasqueradeMark
	natPostrouting.add("-m", "mark", "!", "--mark", mask, "-j", "RETURN")
	natPostrouting.add("-j", "MARK", "--set-xmark", MasqueradeMark+"/0x0")
	masq := join(comment("kubernetes service traffic requiring SNAT"), []string{"-j", "MASQUERADE"})
	if opts.RandomFully {
		masq = append(masq, "--random-fully")
	}
	natPostrouting.add(masq...)
	natMarkMasq.add("-j", "MARK", "--set-xmark", mask)

	// Forwarding: let service traffic through even when FORWARD's policy
	// is DROP; drop what conntrack cannot place (it would leak un-NATed).
	filterForward.add("-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	filterForward.add(join(comment("kubernetes forwarding rules"), []string{"-m", "mark", "--mark", mask, "-j", "ACCEPT"})...)
	filterForward.add(join(comment("kubernetes forwarding conntrack rule"), []string{"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"})...)
	// route_localnet (needed for node ports on 127.0.0.1) would otherwise
	// let other hosts reach services bound to loopback.
	filterFirewall.add(join([]string{"!", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8"}, comment("block incoming localnet connections"),
		[]string{"-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP"})...)

	// A TCP client is refused with a RST, others with ICMP port
	// unreachable. kube-proxy sends ICMP for TCP too, but forwarded
	// traffic (a pod's connection) then waits for its SYN's first
	// retransmission: on this project's test kernel (6.18) the ICMP
	// answering a pod's first SYN never reaches it, the next one does, so
	// "connection refused" took ~1 s from a pod (and <2 ms from the node)
	// whatever the ICMP rate limits. A RST arrives at once either way.
	rejectFor := func(proto string) []string {
		if proto == "tcp" {
			return []string{"-j", "REJECT", "--reject-with", "tcp-reset"}
		}
		return []string{"-j", "REJECT", "--reject-with", "icmp-port-unreachable"}
	}
	npDest := nodePortDest(opts)

	for _, sp := range ports {
		name := sp.String()
		proto := sp.proto()
		pm := portMatch(proto, sp.Port)
		clusterDst := []string{"-d", hostPrefix(sp.ClusterIP)}

		if len(sp.Endpoints) == 0 {
			// No endpoints: refuse at once instead of letting clients time
			// out (filter table, since nat cannot REJECT).
			c := comment(name + " has no endpoints")
			reject := rejectFor(proto)
			filterServices.add(join(c, clusterDst, pm, reject)...)
			for _, ip := range sp.ExternalIPs {
				filterExternal.add(join(c, []string{"-d", hostPrefix(ip)}, pm, reject)...)
			}
			if sp.NodePort != 0 {
				npm := portMatch(proto, sp.NodePort)
				for _, d := range npDest {
					filterExternal.add(join(c, d, npm, reject)...)
				}
			}
			continue
		}

		svcChain := sp.ChainName()
		out.ServiceChains[svcChain] = struct{}{}
		svc := newChain("nat", svcChain, name)
		toSvc := []string{"-j", svcChain}
		toMasq := []string{"-j", ChainMarkMasq}

		natServices.add(join(comment(name+" cluster IP"), clusterDst, pm, toSvc)...)
		for _, ip := range sp.ExternalIPs {
			c := comment(name + " external IP")
			d := []string{"-d", hostPrefix(ip)}
			natServices.add(join(c, d, pm, toMasq)...)
			natServices.add(join(c, d, pm, toSvc)...)
		}
		if sp.NodePort != 0 {
			c := comment(name)
			npm := portMatch(proto, sp.NodePort)
			natNodePorts.add(join(c, npm, toMasq)...)
			natNodePorts.add(join(c, npm, toSvc)...)
		}

		if opts.ClusterCIDR.IsValid() {
			svc.add(join(comment(name+" cluster IP"), []string{"!", "-s", opts.ClusterCIDR.String()}, clusterDst, pm, toMasq)...)
		}
		n := len(sp.Endpoints)
		sepChains := make([]string, n)
		for i, ep := range sp.Endpoints {
			sepChains[i] = sp.EndpointChain(ep)
		}
		if sp.AffinitySeconds > 0 {
			// A client seen recently goes back to the endpoint it got.
			secs := strconv.Itoa(int(sp.AffinitySeconds))
			for i, ep := range sp.Endpoints {
				svc.add(join(comment(name+" -> "+ep.String()),
					[]string{"-m", "recent", "--name", sepChains[i], "--mask", "255.255.255.255", "--rsource", "--rcheck", "--seconds", secs, "--reap", "-j", sepChains[i]})...)
			}
		}
		for i, ep := range sp.Endpoints {
			args := comment(name + " -> " + ep.String())
			if i < n-1 {
				args = append(args, "-m", "statistic", "--mode", "random", "--probability", probability(i, n))
			}
			svc.add(append(args, "-j", sepChains[i])...)
		}
		for i, ep := range sp.Endpoints {
			sepName := sepChains[i]
			out.ServiceChains[sepName] = struct{}{}
			sep := newChain("nat", sepName, name)
			c := comment(name)
			// Hairpin: a pod reaching itself through the service must be
			// SNATed or it would answer itself directly.
			sep.add(join(c, []string{"-s", hostPrefix(ep.IP)}, toMasq)...)
			args := join(c, []string{"-p", proto})
			if sp.AffinitySeconds > 0 {
				args = append(args, "-m", "recent", "--name", sepName, "--mask", "255.255.255.255", "--rsource", "--set")
			}
			sep.add(append(args, "-m", proto, "-j", "DNAT", "--to-destination", ep.String())...)
		}
	}

	// Node ports are tried last, only for packets to this node's addresses.
	for _, d := range npDest {
		natServices.add(join(comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain"), d, []string{"-j", ChainNodePorts})...)
	}

	for _, c := range out.Chains {
		c.hash = chainHash(c.Lines)
		if c.Table == "nat" {
			out.NATRules += len(c.Lines)
		} else {
			out.FilterRules += len(c.Lines)
		}
	}
	return out
}

package proxy

import (
	"bytes"
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

// Rules is one rendered desired state.
type Rules struct {
	// Text is the iptables-restore input (filter and nat tables), meant for
	// `iptables-restore --noflush`.
	Text []byte
	// ServiceChains are the KUBE-SVC and KUBE-SEP chains Text declares.
	ServiceChains map[string]struct{}
	// StaleChains are the KUBE-SVC/KUBE-SEP chains Text deletes.
	StaleChains []string
	// NATRules and FilterRules count the rules written per table.
	NATRules, FilterRules int
}

// ruleBuf accumulates "-A CHAIN args..." lines.
type ruleBuf struct {
	b     bytes.Buffer
	count int
}

func (r *ruleBuf) add(chain string, args ...string) {
	r.b.WriteString("-A ")
	r.b.WriteString(chain)
	for _, a := range args {
		r.b.WriteByte(' ')
		r.b.WriteString(a)
	}
	r.b.WriteByte('\n')
	r.count++
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
// takes a connection that reached it, so that every endpoint gets 1/n.
func probability(i, n int) string {
	return strconv.FormatFloat(1.0/float64(n-i), 'f', 10, 64)
}

// Render renders the desired state for ports. existing lists the chains
// now present in the nat table (any names); KUBE-SVC/KUBE-SEP chains among
// them that ports no longer need are flushed and deleted by the same
// restore. Render does no I/O and its output depends only on its input.
func Render(ports []*ServicePort, opts RenderOptions, existing []string) *Rules {
	out := &Rules{ServiceChains: make(map[string]struct{}, len(ports)*4)}

	var (
		natDecl, filterDecl bytes.Buffer
		natServices         ruleBuf // nat KUBE-SERVICES
		natNodePorts        ruleBuf // nat KUBE-NODEPORTS
		natPerService       ruleBuf // KUBE-SVC-*, KUBE-SEP-*
		filterServices      ruleBuf // filter KUBE-SERVICES
		filterExternal      ruleBuf // filter KUBE-EXTERNAL-SERVICES
		fixed               ruleBuf // nat fixed chains
		filterFixed         ruleBuf // filter fixed chains
	)
	declare := func(b *bytes.Buffer, chain string) {
		b.WriteByte(':')
		b.WriteString(chain)
		b.WriteString(" - [0:0]\n")
	}
	for _, c := range natChains {
		declare(&natDecl, c)
	}
	for _, c := range filterChains {
		declare(&filterDecl, c)
	}

	// Masquerading: anything marked by KUBE-MARK-MASQ is SNATed on its way
	// out, once (the mark is cleared so a re-routed packet is not SNATed
	// twice).
	fixed.add(ChainPostrouting, "-m", "mark", "!", "--mark", MasqueradeMark+"/"+MasqueradeMark, "-j", "RETURN")
	fixed.add(ChainPostrouting, "-j", "MARK", "--xor-mark", MasqueradeMark)
	masq := join(comment("kubernetes service traffic requiring SNAT"), []string{"-j", "MASQUERADE"})
	if opts.RandomFully {
		masq = append(masq, "--random-fully")
	}
	fixed.add(ChainPostrouting, masq...)
	fixed.add(ChainMarkMasq, "-j", "MARK", "--or-mark", MasqueradeMark)

	// Forwarding: let service traffic through even when FORWARD's policy
	// is DROP; drop what conntrack cannot place (it would leak un-NATed).
	filterFixed.add(ChainForward, "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	filterFixed.add(ChainForward, join(comment("kubernetes forwarding rules"), []string{"-m", "mark", "--mark", MasqueradeMark + "/" + MasqueradeMark, "-j", "ACCEPT"})...)
	filterFixed.add(ChainForward, join(comment("kubernetes forwarding conntrack rule"), []string{"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"})...)
	// route_localnet (needed for node ports on 127.0.0.1) would otherwise
	// let other hosts reach services bound to loopback.
	filterFixed.add(ChainProxyFirewall, join([]string{"!", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8"}, comment("block incoming localnet connections"),
		[]string{"-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP"})...)

	reject := []string{"-j", "REJECT", "--reject-with", "icmp-port-unreachable"}
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
			filterServices.add(ChainServices, join(c, clusterDst, pm, reject)...)
			for _, ip := range sp.ExternalIPs {
				filterExternal.add(ChainExternalServices, join(c, []string{"-d", hostPrefix(ip)}, pm, reject)...)
			}
			if sp.NodePort != 0 {
				npm := portMatch(proto, sp.NodePort)
				for _, d := range npDest {
					filterExternal.add(ChainExternalServices, join(c, d, npm, reject)...)
				}
			}
			continue
		}

		svcChain := sp.ChainName()
		out.ServiceChains[svcChain] = struct{}{}
		declare(&natDecl, svcChain)
		toSvc := []string{"-j", svcChain}
		toMasq := []string{"-j", ChainMarkMasq}

		natServices.add(ChainServices, join(comment(name+" cluster IP"), clusterDst, pm, toSvc)...)
		for _, ip := range sp.ExternalIPs {
			c := comment(name + " external IP")
			d := []string{"-d", hostPrefix(ip)}
			natServices.add(ChainServices, join(c, d, pm, toMasq)...)
			natServices.add(ChainServices, join(c, d, pm, toSvc)...)
		}
		if sp.NodePort != 0 {
			c := comment(name)
			npm := portMatch(proto, sp.NodePort)
			natNodePorts.add(ChainNodePorts, join(c, npm, toMasq)...)
			natNodePorts.add(ChainNodePorts, join(c, npm, toSvc)...)
		}

		if opts.ClusterCIDR.IsValid() {
			natPerService.add(svcChain, join(comment(name+" cluster IP"), []string{"!", "-s", opts.ClusterCIDR.String()}, clusterDst, pm, toMasq)...)
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
				natPerService.add(svcChain, join(comment(name+" -> "+ep.String()),
					[]string{"-m", "recent", "--name", sepChains[i], "--mask", "255.255.255.255", "--rsource", "--rcheck", "--seconds", secs, "--reap", "-j", sepChains[i]})...)
			}
		}
		for i, ep := range sp.Endpoints {
			args := comment(name + " -> " + ep.String())
			if i < n-1 {
				args = append(args, "-m", "statistic", "--mode", "random", "--probability", probability(i, n))
			}
			natPerService.add(svcChain, append(args, "-j", sepChains[i])...)
		}
		for i, ep := range sp.Endpoints {
			sep := sepChains[i]
			out.ServiceChains[sep] = struct{}{}
			declare(&natDecl, sep)
			c := comment(name)
			// Hairpin: a pod reaching itself through the service must be
			// SNATed or it would answer itself directly.
			natPerService.add(sep, join(c, []string{"-s", hostPrefix(ep.IP)}, toMasq)...)
			args := join(c, []string{"-p", proto})
			if sp.AffinitySeconds > 0 {
				args = append(args, "-m", "recent", "--name", sep, "--mask", "255.255.255.255", "--rsource", "--set")
			}
			natPerService.add(sep, append(args, "-m", proto, "-j", "DNAT", "--to-destination", ep.String())...)
		}
	}

	// Node ports are tried last, only for packets to this node's addresses.
	for _, d := range npDest {
		natServices.add(ChainServices, join(comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain"), d, []string{"-j", ChainNodePorts})...)
	}

	for _, c := range existing {
		if !strings.HasPrefix(c, svcChainPrefix) && !strings.HasPrefix(c, sepChainPrefix) {
			continue
		}
		if _, ok := out.ServiceChains[c]; !ok {
			out.StaleChains = append(out.StaleChains, c)
		}
	}
	slices.Sort(out.StaleChains)
	out.StaleChains = slices.Compact(out.StaleChains)
	for _, c := range out.StaleChains {
		declare(&natDecl, c) // flushes it, so nothing refers to anything
	}

	var text bytes.Buffer
	text.Grow(filterDecl.Len() + natDecl.Len() + filterServices.b.Len() + natPerService.b.Len() + natServices.b.Len() + 1024)
	text.WriteString("*filter\n")
	text.Write(filterDecl.Bytes())
	text.Write(filterFixed.b.Bytes())
	text.Write(filterServices.b.Bytes())
	text.Write(filterExternal.b.Bytes())
	text.WriteString("COMMIT\n*nat\n")
	text.Write(natDecl.Bytes())
	text.Write(fixed.b.Bytes())
	text.Write(natServices.b.Bytes())
	text.Write(natNodePorts.b.Bytes())
	text.Write(natPerService.b.Bytes())
	for _, c := range out.StaleChains {
		text.WriteString("-X " + c + "\n")
	}
	text.WriteString("COMMIT\n")
	out.Text = text.Bytes()
	out.FilterRules = filterFixed.count + filterServices.count + filterExternal.count
	out.NATRules = fixed.count + natServices.count + natNodePorts.count + natPerService.count
	return out
}

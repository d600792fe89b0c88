package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// jumpRule is a rule the proxy keeps in a built-in chain so that traffic
// enters its own chains.
type jumpRule struct {
	table, chain string
	spec         []string
}

// jumpRules are kept at the top of the built-in chains, in this order
// within each chain. Filter jumps only look at new connections: replies of
// established ones must never be rejected.
var jumpRules = []jumpRule{
	{"filter", "INPUT", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals", "-j", ChainExternalServices}},
	{"filter", "INPUT", []string{"-m", "comment", "--comment", "kubernetes localnet protection", "-j", ChainProxyFirewall}},
	{"filter", "FORWARD", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes service portals", "-j", ChainServices}},
	{"filter", "FORWARD", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals", "-j", ChainExternalServices}},
	{"filter", "FORWARD", []string{"-m", "comment", "--comment", "kubernetes forwarding rules", "-j", ChainForward}},
	{"filter", "OUTPUT", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes service portals", "-j", ChainServices}},
	{"filter", "OUTPUT", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals", "-j", ChainExternalServices}},
	{"nat", "PREROUTING", []string{"-m", "comment", "--comment", "kubernetes service portals", "-j", ChainServices}},
	{"nat", "OUTPUT", []string{"-m", "comment", "--comment", "kubernetes service portals", "-j", ChainServices}},
	{"nat", "POSTROUTING", []string{"-m", "comment", "--comment", "kubernetes postrouting rules", "-j", ChainPostrouting}},
}

// Iptables applies rendered rules to the kernel. Every method runs
// programs (iptables, iptables-restore, conntrack) in the network
// namespace of the calling thread, so a caller using a private namespace
// must call from the goroutine that entered it (see InNetns).
type Iptables struct {
	ipt         *iptables.IPTables
	restoreArgs []string
	log         *slog.Logger
	// conntrack is the path of the conntrack tool, "" if missing.
	conntrack string
	// legacy is true when iptables is the legacy (x_tables) backend
	// rather than nf_tables.
	legacy bool
}

// NewIptables probes iptables (version, backend) and the helper programs.
func NewIptables(log *slog.Logger) (*Iptables, error) {
	if log == nil {
		log = slog.Default()
	}
	ipt, err := iptables.New(iptables.IPFamily(iptables.ProtocolIPv4), iptables.Timeout(5))
	if err != nil {
		return nil, fmt.Errorf("probe iptables: %w", err)
	}
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		return nil, fmt.Errorf("iptables-restore: %w", err)
	}
	x := &Iptables{ipt: ipt, log: log, restoreArgs: []string{"--noflush"}}
	major, minor, patch := ipt.GetIptablesVersion()
	if out, err := exec.Command("iptables", "--version").Output(); err == nil && !bytes.Contains(out, []byte("nf_tables")) {
		x.legacy = true
		// Legacy iptables takes a global lock; wait for it rather than
		// failing when another program holds it. The nf_tables backend
		// has no such lock and no such flag.
		x.restoreArgs = append(x.restoreArgs, "--wait=5")
	}
	if p, err := exec.LookPath("conntrack"); err == nil {
		x.conntrack = p
	} else {
		log.Warn("conntrack not found: stale UDP conntrack entries will not be flushed when endpoints go away")
	}
	log.Info("iptables ready", "version", fmt.Sprintf("%d.%d.%d", major, minor, patch), "legacy", x.legacy, "randomFully", ipt.HasRandomFully())
	return x, nil
}

// Legacy reports whether iptables is the legacy (x_tables) backend.
func (x *Iptables) Legacy() bool { return x.legacy }

// HasRandomFully reports whether MASQUERADE supports --random-fully.
func (x *Iptables) HasRandomFully() bool { return x.ipt.HasRandomFully() }

// ListChains lists the chains of table.
func (x *Iptables) ListChains(table string) ([]string, error) {
	chains, err := x.ipt.ListChains(table)
	if err != nil {
		return nil, fmt.Errorf("list chains of table %s: %w", table, err)
	}
	return chains, nil
}

var restoreLine = regexp.MustCompile(`line:? (\d+)`)
var commentArg = regexp.MustCompile(`--comment "([^"]*)"`)

// Restore feeds text to one `iptables-restore --noflush`: every table in
// text changes atomically, and chains it does not mention keep their
// rules. A failure names the input line and, if the line has one, the
// service it was written for.
func (x *Iptables) Restore(ctx context.Context, text []byte) error {
	cmd := exec.CommandContext(ctx, "iptables-restore", x.restoreArgs...)
	cmd.Stdin = bytes.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		var kept []string
		for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			if !strings.HasPrefix(l, "Try `") {
				kept = append(kept, l)
			}
		}
		msg := strings.Join(kept, "; ")
		if m := restoreLine.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			lines := bytes.Split(text, []byte("\n"))
			if n >= 1 && n <= len(lines) {
				line := string(lines[n-1])
				owner := "no service"
				// Service rules' comments start with "namespace/name[:port]".
				if c := commentArg.FindStringSubmatch(line); c != nil && strings.Contains(strings.Fields(c[1] + " ")[0], "/") {
					owner = "service " + strings.Fields(c[1])[0]
				}
				return fmt.Errorf("iptables-restore failed at line %d (%s): %q: %s: %w", n, owner, line, msg, err)
			}
		}
		return fmt.Errorf("iptables-restore: %s: %w", msg, err)
	}
	return nil
}

// Save returns `iptables-save` output (every table).
func (x *Iptables) Save(ctx context.Context) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "iptables-save")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("iptables-save: %s: %w", strings.TrimSpace(stderr.String()), err)
	}
	return out, nil
}

// JumpsInput returns iptables-restore input that inserts the jump rules
// missing from saved (parsed iptables-save output of every table) at the
// top of their built-in chains, in jumpRules order, and how many it
// inserts; nil and 0 when none is missing. The chains the rules jump to
// must exist when it is applied, so it goes after (or at the end of) the
// restore that creates them. Doing this inside the restore, rather than
// with one `iptables -C` per rule, matters with iptables-nft: each such
// call fetches the whole ruleset into its cache (about 50 ms apiece at
// 30,000 rules).
func JumpsInput(saved map[string]map[string][]string) ([]byte, int) {
	var b bytes.Buffer
	n := 0
	for _, table := range []string{"filter", "nat"} {
		var lines []string
		// Insert bottom-up at position 1 so rules of one chain end up in
		// jumpRules order.
		for i := len(jumpRules) - 1; i >= 0; i-- {
			j := jumpRules[i]
			if j.table != table {
				continue
			}
			want := ruleHash("-A " + j.chain + " " + strings.Join(j.spec, " "))
			if slices.ContainsFunc(saved[j.table][j.chain], func(l string) bool { return ruleHash(l) == want }) {
				continue
			}
			args := make([]string, len(j.spec))
			for k, a := range j.spec {
				if strings.ContainsAny(a, " \t") {
					a = `"` + a + `"`
				}
				args[k] = a
			}
			lines = append(lines, "-I "+j.chain+" 1 "+strings.Join(args, " "))
		}
		if len(lines) == 0 {
			continue
		}
		b.WriteString("*" + table + "\n")
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		b.WriteString("COMMIT\n")
		n += len(lines)
	}
	if n == 0 {
		return nil, 0
	}
	return b.Bytes(), n
}

// DeleteUDPConntrack deletes UDP conntrack entries matching filter (as
// conntrack(8) options, e.g. "--orig-dst", ip). Finding nothing to delete
// is not an error; a missing conntrack tool is only logged at startup.
func (x *Iptables) DeleteUDPConntrack(ctx context.Context, filter ...string) error {
	if x.conntrack == "" {
		return nil
	}
	args := append([]string{"-D", "-p", "udp"}, filter...)
	out, err := exec.CommandContext(ctx, x.conntrack, args...).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("0 flow entries have been deleted")) {
			return nil
		}
		return fmt.Errorf("conntrack %s: %s: %w", strings.Join(args, " "), bytes.TrimSpace(out), err)
	}
	return nil
}

// cleanupChunk is the most chains Cleanup flushes or deletes in one commit.
const cleanupChunk = 1000

// builtinChains lists, per table, the built-in chains jump rules live in.
var builtinChains = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"nat":    {"PREROUTING", "OUTPUT", "POSTROUTING"},
}

// jumpTarget returns the -j target of a rule in `iptables -S` form.
func jumpTarget(rule string) string {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "--jump" {
			return f[i+1]
		}
	}
	return ""
}

// Cleanup removes every rule and chain the proxy creates: first any rule
// in a built-in chain that jumps to one of its chains (whatever its exact
// form, so rules left by older versions go too), then its chains, flushed
// and deleted by one iptables-restore (falling back to one chain at a time
// if something else still refers to one). It reports what it removed.
func (x *Iptables) Cleanup(ctx context.Context) (jumps, chains int, err error) {
	var errs []error
	for _, table := range []string{"filter", "nat"} {
		for _, chain := range builtinChains[table] {
			rules, err := x.ipt.List(table, chain)
			if err != nil {
				errs = append(errs, fmt.Errorf("list %s/%s: %w", table, chain, err))
				continue
			}
			// rules[0] is the policy ("-P CHAIN ACCEPT"), so rule k is
			// rules[k]. Delete from the bottom so numbers stay valid.
			for k := len(rules) - 1; k >= 1; k-- {
				if !OwnedChain(table, jumpTarget(rules[k])) {
					continue
				}
				if err := x.ipt.DeleteById(table, chain, k); err != nil {
					errs = append(errs, fmt.Errorf("delete %s/%s rule %q: %w", table, chain, rules[k], err))
					continue
				}
				jumps++
			}
		}
	}
	owned := map[string][]string{}
	listOwned := func() {
		for _, table := range []string{"filter", "nat"} {
			owned[table] = nil
			all, err := x.ListChains(table)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, c := range all {
				if OwnedChain(table, c) {
					owned[table] = append(owned[table], c)
				}
			}
			slices.Sort(owned[table])
		}
	}
	listOwned()
	// All chains are flushed before any is deleted, so chains referring to
	// each other can go. Both steps are split into commits of at most
	// cleanupChunk chains, for the same reason syncs are (DefaultBatchLines:
	// iptables-nft's cost per commit grows with chains × commands).
	var text bytes.Buffer
	for _, step := range []string{"flush", "delete"} {
		for _, table := range []string{"filter", "nat"} {
			for cs := range slices.Chunk(owned[table], cleanupChunk) {
				text.WriteString("*" + table + "\n")
				for _, c := range cs {
					if step == "flush" {
						text.WriteString(":" + c + " - [0:0]\n")
					} else {
						text.WriteString("-X " + c + "\n")
					}
				}
				text.WriteString("COMMIT\n")
			}
		}
	}
	if text.Len() > 0 {
		if rerr := x.Restore(ctx, text.Bytes()); rerr == nil {
			chains = len(owned["filter"]) + len(owned["nat"])
		} else {
			x.log.Warn("removing chains in one restore failed; removing the rest one by one", "err", rerr)
			// Some commits may have gone through: start from what is left.
			before := len(owned["filter"]) + len(owned["nat"])
			listOwned()
			chains = before - len(owned["filter"]) - len(owned["nat"])
			for table, cs := range owned {
				for _, c := range cs {
					if err := x.ipt.ClearChain(table, c); err != nil {
						errs = append(errs, fmt.Errorf("flush %s/%s: %w", table, c, err))
					}
				}
			}
			for table, cs := range owned {
				for _, c := range cs {
					if err := x.ipt.DeleteChain(table, c); err != nil {
						errs = append(errs, fmt.Errorf("delete chain %s/%s: %w", table, c, err))
						continue
					}
					chains++
				}
			}
		}
	}
	return jumps, chains, errors.Join(errs...)
}

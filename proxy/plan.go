package proxy

import (
	"bytes"
	"math/bits"
	"slices"
	"strings"
)

// Hashing rules so that the kernel's copy (as iptables-save prints it)
// and ours compare equal: iptables-save reorders matches and drops quotes
// where it can, so a rule's hash is order-independent over its
// whitespace-separated tokens, with double quotes ignored. A chain's hash
// depends on the order of its rules.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func ruleHash(line string) uint64 {
	var sum uint64
	h := uint64(fnvOffset)
	in := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch c {
		case ' ', '\t':
			if in {
				sum += h * fnvPrime
				h, in = fnvOffset, false
			}
		case '"':
		default:
			h = (h ^ uint64(c)) * fnvPrime
			in = true
		}
	}
	if in {
		sum += h * fnvPrime
	}
	return sum
}

func chainHash(lines []string) uint64 {
	h := uint64(fnvOffset)
	for _, l := range lines {
		h = (bits.RotateLeft64(h, 17) ^ ruleHash(l)) * fnvPrime
	}
	return (h ^ uint64(len(lines))) * fnvPrime
}

// ChainHashes hashes the chains of parsed iptables-save output that the
// proxy owns, keyed "table/chain": the current state to Plan against.
func ChainHashes(saved map[string]map[string][]string) map[string]uint64 {
	out := map[string]uint64{}
	for table, chains := range saved {
		for name, lines := range chains {
			if OwnedChain(table, name) {
				out[table+"/"+name] = chainHash(lines)
			}
		}
	}
	return out
}

// Plan is how to bring the kernel from a known state to Rules.
type Plan struct {
	// Commits are iptables-restore --noflush inputs, each one transaction
	// (a COMMIT per table it touches), applied in order. Usually there is
	// at most one. A rewrite larger than the batch size is split: service
	// chains (not yet, or still consistently, used) first, in batches that
	// each hold whole services, then one final commit with the fixed
	// chains (KUBE-SERVICES, KUBE-NODEPORTS, ...) and the deletions, which
	// switches traffic over atomically. Input joins them for a single
	// iptables-restore run.
	Commits [][]byte
	// Written counts the chains written, Created those among them that
	// did not exist, Lines the rules written.
	Written, Created, Lines int
	// Stale are the KUBE-SVC/KUBE-SEP chains deleted.
	Stale []string
}

// Input is the whole plan as one iptables-restore input: the commits one
// after another. One process applies them all; each COMMIT is still its
// own transaction, so the batching of Commits is kept (see
// DefaultBatchLines for why that matters) without paying for a process,
// its start-up and its cache fetch per batch.
func (p *Plan) Input() []byte { return bytes.Join(p.Commits, nil) }

// Plan computes the commits that turn current into r. current maps
// "table/chain" to the hash of what that chain holds now (ChainHashes of
// the kernel, or Hashes of the last Rules applied); chains it lists that r
// lacks are deleted if they are KUBE-SVC/KUBE-SEP chains. A nil current
// means unknown: every chain is declared with ":CHAIN - [0:0]", which
// creates or flushes it. Known-new chains are created with -N. Batches
// hold at most maxLines rules unless one service needs more; maxLines <=
// 0 means a single commit whatever its size.
func (r *Rules) Plan(current map[string]uint64, maxLines int) *Plan {
	p := &Plan{}
	desired := make(map[string]bool, len(r.Chains))
	var fixed, leaf []*Chain
	created := map[*Chain]bool{}
	for _, c := range r.Chains {
		key := c.Key()
		desired[key] = true
		if current != nil {
			h, ok := current[key]
			if ok && h == c.hash {
				continue
			}
			created[c] = !ok
		}
		if c.Owner == "" {
			fixed = append(fixed, c)
		} else {
			leaf = append(leaf, c)
		}
		p.Lines += len(c.Lines)
	}
	for key := range current {
		table, name, _ := strings.Cut(key, "/")
		if table == "nat" && !desired[key] && (strings.HasPrefix(name, svcChainPrefix) || strings.HasPrefix(name, sepChainPrefix)) {
			p.Stale = append(p.Stale, name)
		}
	}
	slices.Sort(p.Stale)
	p.Written = len(fixed) + len(leaf)
	for _, c := range created {
		if c {
			p.Created++
		}
	}
	if p.Written == 0 && len(p.Stale) == 0 {
		return p
	}
	if maxLines <= 0 || p.Lines <= maxLines {
		p.Commits = [][]byte{restoreText(append(fixed, leaf...), p.Stale, created)}
		return p
	}
	// Batch the service chains, never splitting one service port's set.
	// Fixed chains they jump to (KUBE-MARK-MASQ) must exist first: create
	// missing ones empty up front; the final restore fills them.
	var shells []*Chain
	for _, c := range fixed {
		if created[c] {
			shells = append(shells, &Chain{Table: c.Table, Name: c.Name})
			created[c] = false
		}
	}
	if len(shells) > 0 {
		for _, c := range shells {
			created[c] = true
		}
		p.Commits = append(p.Commits, restoreText(shells, nil, created))
	}
	var batch []*Chain
	lines := 0
	for i, c := range leaf {
		batch = append(batch, c)
		lines += len(c.Lines)
		last := i == len(leaf)-1 || leaf[i+1].Owner != c.Owner
		if last && lines >= maxLines {
			p.Commits = append(p.Commits, restoreText(batch, nil, created))
			batch, lines = nil, 0
		}
	}
	p.Commits = append(p.Commits, restoreText(append(batch, fixed...), p.Stale, created))
	return p
}

// restoreText writes chains (and deletes stale nat chains) as
// iptables-restore input, filter before nat.
func restoreText(chains []*Chain, stale []string, created map[*Chain]bool) []byte {
	size := 64
	for _, c := range chains {
		size += 32 + len(c.Name)
		for _, l := range c.Lines {
			size += len(l) + 1
		}
	}
	var b bytes.Buffer
	b.Grow(size + 40*len(stale))
	for _, table := range []string{"filter", "nat"} {
		var mine []*Chain
		for _, c := range chains {
			if c.Table == table {
				mine = append(mine, c)
			}
		}
		if len(mine) == 0 && (table != "nat" || len(stale) == 0) {
			continue
		}
		b.WriteString("*" + table + "\n")
		for _, c := range mine {
			if created[c] {
				continue
			}
			// Declaring an existing chain flushes it; an unknown one is
			// created.
			b.WriteString(":" + c.Name + " - [0:0]\n")
		}
		if table == "nat" {
			for _, s := range stale {
				b.WriteString(":" + s + " - [0:0]\n") // flushed, so it refers to nothing
			}
		}
		for _, c := range mine {
			if created[c] {
				b.WriteString("-N " + c.Name + "\n")
			}
		}
		for _, c := range mine {
			for _, l := range c.Lines {
				b.WriteString(l)
				b.WriteByte('\n')
			}
		}
		if table == "nat" {
			for _, s := range stale {
				b.WriteString("-X " + s + "\n")
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes()
}

// ParseSave parses iptables-save output into table -> chain -> rules
// ("-A CHAIN ..." lines); chains without rules are present with none.
func ParseSave(text []byte) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	var cur map[string][]string
	for len(text) > 0 {
		var line []byte
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, nil
		}
		switch {
		case len(line) == 0 || line[0] == '#':
		case line[0] == '*':
			cur = map[string][]string{}
			out[string(line[1:])] = cur
		case cur == nil:
		case line[0] == ':':
			name, _, _ := bytes.Cut(line[1:], []byte(" "))
			if _, ok := cur[string(name)]; !ok {
				cur[string(name)] = nil
			}
		case bytes.HasPrefix(line, []byte("-A ")):
			name, _, _ := bytes.Cut(line[3:], []byte(" "))
			cur[string(name)] = append(cur[string(name)], string(line))
		}
	}
	return out
}

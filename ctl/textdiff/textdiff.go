// Package textdiff produces unified diffs (diff -u) of two texts, line by
// line, with Myers' shortest-edit-script algorithm. `ctl diff` prints its
// output; it has no other users and does no I/O.
package textdiff

import (
	"fmt"
	"strings"
)

type opKind int

const (
	keep opKind = iota
	del
	ins
)

type op struct {
	kind opKind
	a, b int // line indexes in a (keep, del) and b (keep, ins)
}

// lines splits text into lines, keeping whether the last one ended with a
// newline.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	ls := strings.SplitAfter(s, "\n")
	if ls[len(ls)-1] == "" {
		ls = ls[:len(ls)-1]
	}
	return ls
}

// edits computes the shortest edit script from a to b.
func edits(a, b []string) []op {
	n, m := len(a), len(b)
	max := n + m
	if max == 0 {
		return nil
	}
	offset := max
	v := make([]int, 2*max+2)
	var trace [][]int
	for d := 0; d <= max; d++ {
		snapshot := make([]int, len(v))
		copy(snapshot, v)
		trace = append(trace, snapshot)
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[offset+k-1] < v[offset+k+1]) {
				x = v[offset+k+1]
			} else {
				x = v[offset+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[offset+k] = x
			if x >= n && y >= m {
				return backtrack(trace, a, b, d, offset)
			}
		}
	}
	return nil
}

func backtrack(trace [][]int, a, b []string, dEnd, offset int) []op {
	x, y := len(a), len(b)
	var rev []op
	for d := dEnd; d > 0; d-- {
		v := trace[d]
		k := x - y
		var prevK int
		if k == -d || (k != d && v[offset+k-1] < v[offset+k+1]) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := v[offset+prevK]
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			x--
			y--
			rev = append(rev, op{keep, x, y})
		}
		if x == prevX {
			y--
			rev = append(rev, op{ins, x, y})
		} else {
			x--
			rev = append(rev, op{del, x, y})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		rev = append(rev, op{keep, x, y})
	}
	out := make([]op, len(rev))
	for i := range rev {
		out[i] = rev[len(rev)-1-i]
	}
	return out
}

// Unified returns the unified diff of a and b with the given file labels
// and context lines, or "" when they are equal.
func Unified(aName, bName, a, b string, context int) string {
	al, bl := lines(a), lines(b)
	ops := edits(al, bl)
	changed := false
	for _, o := range ops {
		if o.kind != keep {
			changed = true
			break
		}
	}
	if !changed {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", aName, bName)
	// Group the script into hunks: changes with up to context unchanged
	// lines around them, merging hunks whose contexts touch.
	i := 0
	for i < len(ops) {
		for i < len(ops) && ops[i].kind == keep {
			i++
		}
		if i >= len(ops) {
			break
		}
		start := max(0, i-context)
		end := i
		for end < len(ops) {
			if ops[end].kind != keep {
				end++
				continue
			}
			// a run of unchanged lines: does another change follow soon?
			run := end
			for run < len(ops) && ops[run].kind == keep {
				run++
			}
			if run < len(ops) && run-end <= 2*context {
				end = run
				continue
			}
			end = min(run, end+context)
			break
		}
		writeHunk(&sb, ops[start:end], al, bl)
		i = end
	}
	return sb.String()
}

func writeHunk(sb *strings.Builder, ops []op, a, b []string) {
	aStart, bStart := ops[0].a, ops[0].b
	aCount, bCount := 0, 0
	for _, o := range ops {
		switch o.kind {
		case keep:
			aCount++
			bCount++
		case del:
			aCount++
		case ins:
			bCount++
		}
	}
	fmt.Fprintf(sb, "@@ -%s +%s @@\n", rangeOf(aStart, aCount), rangeOf(bStart, bCount))
	for _, o := range ops {
		var prefix, text string
		switch o.kind {
		case keep:
			prefix, text = " ", a[o.a]
		case del:
			prefix, text = "-", a[o.a]
		case ins:
			prefix, text = "+", b[o.b]
		}
		sb.WriteString(prefix)
		sb.WriteString(text)
		if !strings.HasSuffix(text, "\n") {
			sb.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

// rangeOf is diff's "start,count" (1-based; an empty range names the line
// before it).
func rangeOf(start, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, count)
}

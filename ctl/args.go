package ctl

import (
	"context"
	"fmt"
	"strings"
)

// selection is one resource type and, optionally, names of its objects.
type selection struct {
	m     *mapping
	names []string // nil = every object (subject to selectors)
	// ns overrides the command's namespace (objects named by -f files).
	ns string
	// category is set when the type came from a category such as "all".
	category bool
}

// parseArgs turns kubectl-style arguments into selections:
//
//	TYPE                  every object of TYPE
//	TYPE NAME...          the named objects
//	TYPE1,TYPE2 [NAME...] several types
//	TYPE/NAME...          objects of possibly different types
func (e *env) parseArgs(ctx context.Context, args []string) ([]*selection, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("you must specify the type of resource to get (e.g. pods, deployments); `ctl api-resources` lists them")
	}
	mp, err := e.discovery(ctx)
	if err != nil {
		return nil, err
	}
	if strings.Contains(args[0], "/") {
		var out []*selection
		byType := map[*mapping]*selection{}
		for _, a := range args {
			typ, name, ok := strings.Cut(a, "/")
			if !ok || typ == "" || name == "" {
				return nil, fmt.Errorf("%q: when one argument is TYPE/NAME, all must be (e.g. deploy/web svc/web)", a)
			}
			m, err := mp.resource(typ)
			if err != nil {
				return nil, err
			}
			s := byType[m]
			if s == nil {
				s = &selection{m: m}
				byType[m] = s
				out = append(out, s)
			}
			s.names = append(s.names, name)
		}
		return out, nil
	}
	var out []*selection
	seen := map[*mapping]bool{}
	for _, t := range strings.Split(args[0], ",") {
		if t == "" {
			continue
		}
		ms, err := mp.resources(t)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if seen[m] {
				continue
			}
			seen[m] = true
			out = append(out, &selection{m: m, category: len(ms) > 1 || !isResourceName(m, t)})
		}
	}
	if len(args) > 1 {
		for _, s := range out {
			s.names = append([]string(nil), args[1:]...)
		}
	}
	return out, nil
}

// isResourceName reports whether t names m itself rather than a category
// containing it.
func isResourceName(m *mapping, t string) bool {
	t = strings.ToLower(t)
	if i := strings.IndexByte(t, '.'); i >= 0 {
		t = t[:i]
	}
	if t == m.Resource || t == m.Singular || t == strings.ToLower(m.Kind) {
		return true
	}
	for _, s := range m.ShortNames {
		if s == t {
			return true
		}
	}
	return false
}

// namedCount is the number of objects named in the selections.
func namedCount(sels []*selection) int {
	n := 0
	for _, s := range sels {
		n += len(s.names)
	}
	return n
}

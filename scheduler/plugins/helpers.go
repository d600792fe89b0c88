package plugins

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

// tolerates reports whether tol lets a pod onto a node with taint: the
// effect and key must match when the toleration names them, and Exists
// ignores the value while Equal (or no operator) compares it.
func tolerates(tol *corev1.Toleration, taint *corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != taint.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != taint.Key {
		return false
	}
	switch tol.Operator {
	case corev1.TolerationOpExists:
		return true
	case corev1.TolerationOpEqual, "":
		return tol.Value == taint.Value
	}
	return false
}

func toleratedBy(taint *corev1.Taint, tols []corev1.Toleration) bool {
	for i := range tols {
		if tolerates(&tols[i], taint) {
			return true
		}
	}
	return false
}

// nodeSelector is a compiled NodeSelector: an OR of terms, each an AND of
// requirements on labels (matchExpressions) and fields (matchFields; only
// metadata.name exists, as in Kubernetes).
type nodeSelector struct {
	terms []nodeSelectorTerm
}

type nodeSelectorTerm struct {
	exprs, fields []requirement
	// invalid terms (bad operator, Gt with a non-number, In without
	// values, an unknown field) match nothing.
	invalid bool
}

type requirement struct {
	key    string
	op     corev1.NodeSelectorOperator
	values []string
	num    int64 // Gt/Lt
}

func compileNodeSelector(ns *corev1.NodeSelector) *nodeSelector {
	out := &nodeSelector{terms: make([]nodeSelectorTerm, 0, len(ns.NodeSelectorTerms))}
	for i := range ns.NodeSelectorTerms {
		out.terms = append(out.terms, compileTerm(&ns.NodeSelectorTerms[i]))
	}
	return out
}

func compileTerm(t *corev1.NodeSelectorTerm) nodeSelectorTerm {
	var out nodeSelectorTerm
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		// An empty term matches no objects.
		out.invalid = true
		return out
	}
	for _, r := range t.MatchExpressions {
		req, err := compileRequirement(r)
		if err != nil {
			out.invalid = true
			return out
		}
		out.exprs = append(out.exprs, req)
	}
	for _, r := range t.MatchFields {
		if r.Key != "metadata.name" || (r.Operator != corev1.NodeSelectorOpIn && r.Operator != corev1.NodeSelectorOpNotIn) || len(r.Values) != 1 {
			out.invalid = true
			return out
		}
		out.fields = append(out.fields, requirement{key: r.Key, op: r.Operator, values: r.Values})
	}
	return out
}

func compileRequirement(r corev1.NodeSelectorRequirement) (requirement, error) {
	req := requirement{key: r.Key, op: r.Operator, values: r.Values}
	switch r.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(r.Values) == 0 {
			return req, fmt.Errorf("%s %s needs values", r.Key, r.Operator)
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(r.Values) != 0 {
			return req, fmt.Errorf("%s %s takes no values", r.Key, r.Operator)
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(r.Values) != 1 {
			return req, fmt.Errorf("%s %s needs one value", r.Key, r.Operator)
		}
		n, err := strconv.ParseInt(r.Values[0], 10, 64)
		if err != nil {
			return req, fmt.Errorf("%s %s: %w", r.Key, r.Operator, err)
		}
		req.num = n
	default:
		return req, fmt.Errorf("unknown operator %q", r.Operator)
	}
	return req, nil
}

// matches reports whether node satisfies at least one term.
func (s *nodeSelector) matches(node *corev1.Node) bool {
	for i := range s.terms {
		if s.terms[i].matches(node) {
			return true
		}
	}
	return false
}

func (t *nodeSelectorTerm) matches(node *corev1.Node) bool {
	if t.invalid {
		return false
	}
	for i := range t.exprs {
		if !t.exprs[i].matchesLabels(node.Labels) {
			return false
		}
	}
	for i := range t.fields {
		in := slices.Contains(t.fields[i].values, node.Name)
		if in != (t.fields[i].op == corev1.NodeSelectorOpIn) {
			return false
		}
	}
	return true
}

func (r *requirement) matchesLabels(ls map[string]string) bool {
	v, ok := ls[r.key]
	switch r.op {
	case corev1.NodeSelectorOpIn:
		return ok && slices.Contains(r.values, v)
	case corev1.NodeSelectorOpNotIn:
		return !ok || !slices.Contains(r.values, v)
	case corev1.NodeSelectorOpExists:
		return ok
	case corev1.NodeSelectorOpDoesNotExist:
		return !ok
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		if r.op == corev1.NodeSelectorOpGt {
			return n > r.num
		}
		return n < r.num
	}
	return false
}

// nodeNames returns the node names the selector is limited to through
// matchFields metadata.name In, or nil when some term is not limited.
func (s *nodeSelector) nodeNames() map[string]struct{} {
	out := map[string]struct{}{}
	for i := range s.terms {
		t := &s.terms[i]
		if t.invalid {
			continue
		}
		limited := false
		for _, f := range t.fields {
			if f.op == corev1.NodeSelectorOpIn {
				for _, v := range f.values {
					out[v] = struct{}{}
				}
				limited = true
				break
			}
		}
		if !limited {
			return nil
		}
	}
	if len(out) == 0 {
		// Nothing can match; let the Filter say so node by node, so the
		// message counts the nodes.
		return nil
	}
	return out
}

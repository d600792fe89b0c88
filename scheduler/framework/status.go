package framework

import (
	"errors"
	"strings"
)

// Code is the outcome class of a plugin call.
type Code int

// The codes a plugin may return. A nil *Status means Success.
const (
	// Success: the node passes (Filter) or the call worked.
	Success Code = iota
	// Error: something went wrong that is not the pod's fault; the pod is
	// retried after a backoff.
	Error
	// Unschedulable: the pod does not fit this node now, but could after a
	// cluster change (resources freed, a port released).
	Unschedulable
	// UnschedulableAndUnresolvable: the pod cannot fit this node unless the
	// node itself changes (labels, taints, unschedulable flag).
	UnschedulableAndUnresolvable
	// Skip: from PreFilter, "my Filter has nothing to check for this pod";
	// from PreScore, "my Score has nothing to add"; from Bind, "not mine".
	Skip
)

var codeNames = [...]string{"Success", "Error", "Unschedulable", "UnschedulableAndUnresolvable", "Skip"}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "Unknown"
}

// Status is what a plugin returns. A nil *Status is Success, so the common
// path allocates nothing. A Status must not be changed once returned:
// plugins may hand out the same *Status for every node that fails the same
// way.
type Status struct {
	code    Code
	reasons []string
	err     error
	plugin  string
}

// NewStatus returns a Status with code and reasons, the short texts that
// end up in "0/3 nodes are available: 2 Insufficient cpu".
func NewStatus(code Code, reasons ...string) *Status {
	return &Status{code: code, reasons: reasons}
}

// AsStatus wraps err as an Error status (nil for a nil err).
func AsStatus(err error) *Status {
	if err == nil {
		return nil
	}
	return &Status{code: Error, err: err, reasons: []string{err.Error()}}
}

// WithPlugin records which plugin produced s and returns s. Call it when
// building the status, never on one that was already handed out.
func (s *Status) WithPlugin(name string) *Status {
	if s != nil {
		s.plugin = name
	}
	return s
}

// Code is s's code; Success for nil.
func (s *Status) Code() Code {
	if s == nil {
		return Success
	}
	return s.code
}

// IsSuccess reports whether s is nil or Success.
func (s *Status) IsSuccess() bool { return s.Code() == Success }

// IsSkip reports whether s is Skip.
func (s *Status) IsSkip() bool { return s.Code() == Skip }

// IsRejected reports whether s says the pod does not fit
// (Unschedulable or UnschedulableAndUnresolvable).
func (s *Status) IsRejected() bool {
	c := s.Code()
	return c == Unschedulable || c == UnschedulableAndUnresolvable
}

// Reasons are the short reason texts.
func (s *Status) Reasons() []string {
	if s == nil {
		return nil
	}
	return s.reasons
}

// Plugin is the name of the plugin that produced s.
func (s *Status) Plugin() string {
	if s == nil {
		return ""
	}
	return s.plugin
}

// Message joins the reasons with ", ".
func (s *Status) Message() string {
	if s == nil {
		return ""
	}
	return strings.Join(s.reasons, ", ")
}

// AsError returns nil for success and an error otherwise; an Error status
// keeps its wrapped error for errors.Is/As.
func (s *Status) AsError() error {
	if s.IsSuccess() {
		return nil
	}
	if s.err != nil {
		if s.plugin != "" {
			return &pluginError{plugin: s.plugin, err: s.err}
		}
		return s.err
	}
	msg := s.Message()
	if s.plugin != "" {
		msg = s.plugin + ": " + msg
	}
	return errors.New(msg)
}

type pluginError struct {
	plugin string
	err    error
}

func (e *pluginError) Error() string { return "plugin " + e.plugin + ": " + e.err.Error() }
func (e *pluginError) Unwrap() error { return e.err }

package ctl

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// objError is an error about one object read from a manifest or named on
// the command line: "error when creating web.yaml (document 2): ...".
type objError struct {
	action string // "creating", "applying", ...
	where  string // "web.yaml (document 2)" or ""
	err    error
}

func (e *objError) Error() string { return e.err.Error() }
func (e *objError) Unwrap() error { return e.err }

// formatError renders an error the way kubectl does: "Error from server
// (Reason): ..." for API errors, with each field cause on its own line;
// connection problems name the server and how to start one; everything
// else is "error: ...".
func (e *env) formatError(err error) string {
	prefix := ""
	var oe *objError
	if errors.As(err, &oe) && oe.where != "" {
		prefix = fmt.Sprintf("error when %s %s: ", oe.action, oe.where)
	}
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		return "Error from server (" + reasonOf(se) + "): " + prefix + statusMessage(se.ErrStatus)
	}
	if msg := e.connectionMessage(err); msg != "" {
		return msg
	}
	return "error: " + prefix + err.Error()
}

func reasonOf(se *apierrors.StatusError) string {
	if r := string(se.ErrStatus.Reason); r != "" && se.ErrStatus.Reason != metav1.StatusReasonUnknown {
		return r
	}
	return fmt.Sprintf("HTTP %d", se.ErrStatus.Code)
}

// statusMessage is the server's message plus any field causes it does not
// already spell out.
func statusMessage(st metav1.Status) string {
	msg := st.Message
	if st.Details == nil || len(st.Details.Causes) == 0 {
		return msg
	}
	var extra []string
	for _, c := range st.Details.Causes {
		line := c.Message
		if c.Field != "" {
			line = c.Field + ": " + c.Message
		}
		if !strings.Contains(msg, line) {
			extra = append(extra, "  * "+line)
		}
	}
	if len(extra) == 0 && st.Reason == metav1.StatusReasonInvalid {
		// The message joins every cause on one line; list them one per
		// line, which is easier to read with several.
		if i := strings.Index(msg, " is invalid: "); i >= 0 && len(st.Details.Causes) > 1 {
			var b strings.Builder
			b.WriteString(msg[:i+len(" is invalid:")])
			for _, c := range st.Details.Causes {
				b.WriteString("\n  * ")
				if c.Field != "" {
					b.WriteString(c.Field + ": ")
				}
				b.WriteString(c.Message)
			}
			return b.String()
		}
	}
	if len(extra) == 0 {
		return msg
	}
	return msg + "\n" + strings.Join(extra, "\n")
}

// connectionMessage explains a failure to reach the server, or returns "".
func (e *env) connectionMessage(err error) string {
	server := e.server()
	if server == "" {
		server = "(unknown)"
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("The connection to the server %s was refused - is the cluster running?\n"+
			"Start one with `make up` (it writes %s), or point --kubeconfig/--context at a running cluster.", server, e.kubeconfigName())
	case errors.As(err, &ua), errors.As(err, &cv):
		return fmt.Sprintf("error: the server %s presented a certificate not signed by the certificate authority in %s: "+
			"fix certificate-authority(-data) there (a cluster started afresh has a new CA; use its new kubeconfig)", server, e.kubeconfigName())
	case errors.As(err, &hn):
		return fmt.Sprintf("error: the certificate of %s is not valid for that name: %v; set tls-server-name in %s or use an address in the certificate",
			server, hn.Error(), e.kubeconfigName())
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("error: cannot resolve the server host in %s (%s): %v", server, e.kubeconfigName(), dnsErr)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Sprintf("error: cannot connect to the server %s: %v\nIs the cluster running? Start one with `make up`, or check --kubeconfig/--context.", server, opErr.Err)
	}
	return ""
}

func (e *env) kubeconfigName() string {
	if e.kc != nil && e.kc.Path != "" {
		return e.kc.Path
	}
	return "the kubeconfig"
}

// reportError prints err for one object and remembers that the command
// failed; commands that go on with the next object use it.
func (e *env) reportError(err error) {
	fmt.Fprintln(e.streams.ErrOut, e.formatError(err))
}

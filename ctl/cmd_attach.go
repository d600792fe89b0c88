package ctl

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

type attachOptions struct {
	container string
	stdin     bool
	tty       bool
	quiet     bool
}

func newAttachCommand(e *env) *cobra.Command {
	o := &attachOptions{}
	cmd := &cobra.Command{
		Use:   "attach (POD | TYPE/NAME) [-c CONTAINER] [-i] [-t]",
		Short: "Attach to a running container",
		Long: `Connect to the main process of a running container: see what it writes to
stdout and stderr from now on and, with -i, feed it stdin (the container
must have been created with stdin: true). Through the API server and the
pod's kubelet (POST /api/v1/namespaces/{ns}/pods/{name}/attach, upgraded to
a SPDY stream that the kubelet hands to the container runtime).

Attach ends when the container's process ends, or on Ctrl-C (with -t on a
terminal, Ctrl-C goes to the container; the container's own terminal keys
apply). Whether the process has a terminal was decided when the container
started (tty: true): -t uses it when it is there, and ctl uses it anyway
when the container has one.

TYPE/NAME (deploy/web, svc/web, rs/...) picks one of its pods.`,
		Example: examples(`
# follow what a pod's container prints from now on
ctl attach web-7d9f8-abcde

# talk to a container started with stdin: true and tty: true
ctl attach -it pod/shell -c sh

# a deployment's pod, feeding stdin from a pipe
echo reload | ctl attach -i deploy/worker`),
		ValidArgsFunction: e.completePods,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError(cmd, "give exactly one pod (or TYPE/NAME)")
			}
			return o.run(cmd.Context(), e, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.container, "container", "c", "", "The container (default: kubectl.kubernetes.io/default-container, else the first)")
	f.BoolVarP(&o.stdin, "stdin", "i", false, "Pass stdin to the container")
	f.BoolVarP(&o.tty, "tty", "t", false, "Stdin is a terminal (the container must have tty: true)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only print the container's output, no notes from ctl")
	return cmd
}

func (o *attachOptions) run(ctx context.Context, e *env, podArg string) error {
	p, err := e.onePod(ctx, podArg)
	if err != nil {
		return err
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return fmt.Errorf("cannot attach a container in a completed pod; current phase is %s", p.Status.Phase)
	}
	if p.Status.Phase != corev1.PodRunning {
		return fmt.Errorf("cannot attach to pod %s: it is not running yet (phase %s)", p.Name, p.Status.Phase)
	}
	cs, err := e.pickContainers(p, o.container, false)
	if err != nil {
		return err
	}
	var spec corev1.Container
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if c.Name == cs[0] {
			spec = c
		}
	}
	tty := o.tty
	if tty && !spec.TTY {
		tty = false
		if !o.quiet {
			fmt.Fprintf(e.streams.ErrOut, "error: Unable to use a TTY - container %s did not allocate one\n", spec.Name)
		}
	} else if !tty && spec.TTY {
		// The process writes to a terminal either way; asking for one
		// keeps the stream layout the runtime uses for it.
		tty = true
	}
	if o.stdin && !spec.Stdin && !o.quiet {
		fmt.Fprintf(e.streams.ErrOut, "Warning: container %s was not created with stdin: true; nothing reads what is sent to it\n", spec.Name)
	}
	s := streamSession{ns: p.Namespace, pod: p.Name, sub: "attach", stdin: o.stdin}
	s.tty, s.raw = e.ttyFor(o.stdin, tty, o.quiet)
	if s.raw && !o.quiet {
		fmt.Fprintln(e.streams.ErrOut, "If you don't see a command prompt, try pressing enter.")
	}
	s.query = url.Values{"container": {cs[0]},
		"stdin": {strconv.FormatBool(s.stdin)}, "stdout": {"true"}, "stderr": {strconv.FormatBool(!s.tty)}, "tty": {strconv.FormatBool(s.tty)}}
	return e.stream(ctx, s)
}

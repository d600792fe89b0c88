package ctl

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	corev1 "github.com/minik8s/minik8s/api/core/v1"
)

type execOptions struct {
	container string
	stdin     bool
	tty       bool
	quiet     bool
}

func newExecCommand(e *env) *cobra.Command {
	o := &execOptions{}
	cmd := &cobra.Command{
		Use:   "exec (POD | TYPE/NAME) [-c CONTAINER] [-i] [-t] -- COMMAND [args...]",
		Short: "Execute a command in a container",
		Long: `Run a command in a running container, through the API server and the pod's
kubelet (POST /api/v1/namespaces/{ns}/pods/{name}/exec, upgraded to a SPDY
stream that the kubelet hands to the container runtime).

The command's output is shown as it comes, stdout and stderr apart. -i
passes ctl's stdin to the command (a pipe works: the command sees end of
file when the pipe ends); -t with -i on a terminal allocates a remote
terminal, puts the local one in raw mode (Ctrl-C goes to the remote
command) and follows its size. ctl exits with the command's exit code, as
kubectl does.

TYPE/NAME (deploy/web, svc/web, rs/...) picks one of its pods.`,
		Example: examples(`
# list a container's root
ctl exec web-7d9f8-abcde -- ls /

# an interactive shell
ctl exec -it web-7d9f8-abcde -- sh

# feed a file to a command in a given container of a deployment's pod
ctl exec -i deploy/web -c log -- sh -c 'cat > /tmp/conf' < conf.txt`),
		ValidArgsFunction: e.completePods,
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash < 0 || dash == len(args) {
				return usageError(cmd, "give the command after --, e.g. `ctl exec POD -- ls /`")
			}
			if dash != 1 {
				return usageError(cmd, "give exactly one pod (or TYPE/NAME) before --")
			}
			return o.run(cmd.Context(), e, args[0], args[dash:])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.container, "container", "c", "", "The container (default: kubectl.kubernetes.io/default-container, else the first)")
	f.BoolVarP(&o.stdin, "stdin", "i", false, "Pass stdin to the command")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a terminal for the command (with -i, when stdin is a terminal)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only print the command's output, no notes from ctl")
	return cmd
}

func (o *execOptions) run(ctx context.Context, e *env, podArg string, command []string) error {
	p, err := e.onePod(ctx, podArg)
	if err != nil {
		return err
	}
	cs, err := e.pickContainers(p, o.container, false)
	if err != nil {
		return err
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return fmt.Errorf("cannot exec into a container in a completed pod; current phase is %s", p.Status.Phase)
	}
	s := streamSession{ns: p.Namespace, pod: p.Name, sub: "exec", stdin: o.stdin}
	s.tty, s.raw = e.ttyFor(o.stdin, o.tty, o.quiet)
	s.query = url.Values{"container": {cs[0]}, "command": command,
		"stdin": {strconv.FormatBool(s.stdin)}, "stdout": {"true"}, "stderr": {strconv.FormatBool(!s.tty)}, "tty": {strconv.FormatBool(s.tty)}}
	return e.stream(ctx, s)
}

// ttyFor decides, as kubectl does, whether a session gets a terminal: only
// with stdin, and only when stdin is a terminal (a remote terminal fed by
// a pipe would echo the input and mangle line ends). It returns whether to
// ask for a remote terminal and whether to put the local one in raw mode.
func (e *env) ttyFor(stdin, tty, quiet bool) (remote, raw bool) {
	if !tty || !stdin {
		return false, false
	}
	if e.terminalIn() == nil {
		if !quiet {
			fmt.Fprintln(e.streams.ErrOut, "Unable to use a TTY - input is not a terminal or the right kind of file")
		}
		return false, false
	}
	return true, true
}

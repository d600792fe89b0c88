package ctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Version is ctl's version; the minor number is the Kubernetes API level
// it follows. Release builds set it with -ldflags "-X ...ctl.Version=...".
var Version = "v1.32.0-minik8s"

// Main runs ctl with args (without the program name) and returns the exit
// code: 0 on success, 1 on error (diff: 1 means "differences found").
func Main(ctx context.Context, args []string, s Streams) int {
	e := newEnv(s)
	root := newRootCommand(e)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(s.ErrOut, ee.msg)
		}
		return ee.code
	case errors.Is(err, errPrinted):
		return 1
	}
	e.reportError(err)
	return 1
}

// NewRootCommand returns the ctl command tree writing to s, for embedding
// (the all-in-one binary) and for tests.
func NewRootCommand(s Streams) *cobra.Command {
	return newRootCommand(newEnv(s))
}

func newRootCommand(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "ctl",
		Short: "ctl controls a minik8s cluster, the way kubectl controls Kubernetes",
		Long: `ctl controls a minik8s cluster. It speaks the Kubernetes API, so the commands,
flags and output are kubectl's: ctl get, describe, apply, delete, logs ...

It finds the cluster through a kubeconfig: --kubeconfig, else $KUBECONFIG,
else ~/.kube/config, else /var/lib/minik8s/admin.kubeconfig (written by
` + "`make up`" + `). --context picks a context; -n a namespace.`,
		Example: `  # what is running
  ctl get pods -A
  ctl get deploy,svc -o wide

  # create or update objects from files, declaratively
  ctl apply -f examples/deployment.yaml

  # find out why something is not working
  ctl describe deployment web`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Completion of resource names must not print errors; the
		// completion command itself comes from cobra.
		CompletionOptions: cobra.CompletionOptions{},
	}
	root.SetOut(e.streams.Out)
	root.SetErr(e.streams.ErrOut)
	root.SetIn(e.streams.In)
	e.addGlobalFlags(root)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s --help' for usage.", err, c.CommandPath())
	})

	groups := []*cobra.Group{
		{ID: "basic", Title: "Basic Commands:"},
		{ID: "deploy", Title: "Deploy Commands:"},
		{ID: "cluster", Title: "Cluster Management Commands:"},
		{ID: "debug", Title: "Troubleshooting and Debugging Commands:"},
		{ID: "advanced", Title: "Advanced Commands:"},
		{ID: "settings", Title: "Settings Commands:"},
		{ID: "other", Title: "Other Commands:"},
	}
	root.AddGroup(groups...)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("basic", newCreateCommand(e), newExposeCommand(e), newGetCommand(e), newEditCommand(e), newDeleteCommand(e), newSetCommand(e))
	add("deploy", newRolloutCommand(e), newScaleCommand(e))
	add("cluster", newClusterInfoCommand(e), newCordonCommand(e), newUncordonCommand(e), newDrainCommand(e))
	add("debug", newDescribeCommand(e), newLogsCommand(e), newExecCommand(e), newAttachCommand(e), newPortForwardCommand(e))
	add("advanced", newDiffCommand(e), newApplyCommand(e), newPatchCommand(e), newReplaceCommand(e))
	add("settings", newLabelCommand(e), newAnnotateCommand(e))
	add("other", newAPIResourcesCommand(e), newVersionCommand(e))
	root.SetCompletionCommandGroupID("settings")
	root.SetHelpCommandGroupID("other")
	return root
}

// usageError is a wrong use of a command: the message plus where to look.
func usageError(cmd *cobra.Command, format string, args ...any) error {
	return fmt.Errorf("%s\nSee '%s -h' for help and examples", fmt.Sprintf(format, args...), cmd.CommandPath())
}

// examples indents example text as cobra shows it.
func examples(s string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "\n")
}

// DefaultStreams are the process's stdin, stdout and stderr.
func DefaultStreams() Streams {
	return Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
}

package ctl

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/apiserver/apiservertest"
)

// Every command a user can run explains itself with examples.
func TestEveryCommandHasHelpAndExamples(t *testing.T) {
	root := NewRootCommand(Streams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	root.InitDefaultCompletionCmd() // cobra adds it when executing
	var walk func(c *cobra.Command)
	count := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Hidden || c.Name() == "help" || strings.HasPrefix(c.CommandPath(), "ctl completion") {
			return
		}
		count++
		if c.Short == "" {
			t.Errorf("%s has no short description", c.CommandPath())
		}
		if c.Runnable() && c.HasParent() && strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no examples", c.CommandPath())
		}
	}
	walk(root)
	for _, want := range []string{"get", "describe", "apply", "create", "replace", "delete", "edit", "diff", "label", "annotate",
		"scale", "set", "expose", "rollout", "logs", "exec", "attach", "port-forward", "version", "cluster-info", "api-resources", "completion"} {
		if c, _, err := root.Find([]string{want}); err != nil || c.Name() != want {
			t.Errorf("command %q missing", want)
		}
	}
	if count < 30 {
		t.Errorf("only %d commands found", count)
	}
	var out bytes.Buffer
	code := Main(context.Background(), []string{"apply", "--help"}, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	if code != 0 || !strings.Contains(out.String(), "Examples:") || !strings.Contains(out.String(), "last-applied-configuration") {
		t.Errorf("apply --help: %d\n%s", code, out.String())
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		var out, errOut bytes.Buffer
		if code := Main(context.Background(), []string{"completion", shell}, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}); code != 0 || out.Len() < 100 {
			t.Errorf("completion %s: exit %d, %d bytes, %s", shell, code, out.Len(), errOut.String())
		}
	}
	// Dynamic completion asks the server: resource types, then names.
	s := apiservertest.Start(t)
	h := newHarness(t, s, "")
	out := h.ok("__complete", "get", "dep")
	if !strings.HasPrefix(out, "deployments\n") {
		t.Errorf("completing a type: %q", out)
	}
	out = h.ok("__complete", "get", "services", "ku")
	if !strings.HasPrefix(out, "kubernetes\n") {
		t.Errorf("completing a name: %q", out)
	}
}

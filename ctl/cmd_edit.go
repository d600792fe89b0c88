package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"sigs.k8s.io/yaml"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/api/scheme"
	"github.com/minik8s/minik8s/ctl/manifest"
	"github.com/minik8s/minik8s/ctl/printer"
)

// afterEditorHook runs after each editor session; tests use it to change
// the object behind the user's back.
var afterEditorHook func()

type editOptions struct {
	files    fileFlags
	selector string
	output   string // yaml or json: the format to edit in
}

func newEditCommand(e *env) *cobra.Command {
	o := &editOptions{}
	cmd := &cobra.Command{
		Use:   "edit (RESOURCE/NAME | -f FILENAME)",
		Short: "Edit a resource on the server",
		Long: `Open objects in your editor ($KUBE_EDITOR, else $EDITOR, else vi) and save
your changes back to the server.

The edited object is checked as apply checks files (unknown or mistyped
fields are named); if it is invalid, or the server rejects it, the editor
opens again with the errors at the top - save without changes to give up.
The change is sent with the resourceVersion you started from, so if someone
else changed the object meanwhile the edit fails instead of undoing their
change; your edited copy is kept in a file to retry with.`,
		Example: examples(`
# edit a deployment
ctl edit deployment/web

# in JSON, with another editor
KUBE_EDITOR="nano" ctl edit svc/web -o json`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.output != "yaml" && o.output != "json" {
				return usageError(cmd, "--output must be yaml or json, not %q", o.output)
			}
			return o.run(cmd, e, args)
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.files.filenames, "filename", "f", nil, "Edit the objects these files or directories define")
	f.BoolVarP(&o.files.recursive, "recursive", "R", false, "Read directories given with -f recursively")
	f.StringVarP(&o.selector, "selector", "l", "", "Edit the objects matching this label selector")
	f.StringVarP(&o.output, "output", "o", "yaml", "The format to edit in: yaml or json")
	return cmd
}

func (o *editOptions) run(cmd *cobra.Command, e *env, args []string) error {
	ctx := cmd.Context()
	targets, err := e.resolveTargets(ctx, cmd, args, o.files, o.selector, "", false, false)
	if err != nil {
		return err
	}
	failed := false
	for _, t := range targets {
		if err := o.editOne(ctx, e, t); err != nil {
			var ee *exitError
			if errors.As(err, &ee) {
				fmt.Fprintln(e.streams.ErrOut, ee.msg)
			} else {
				e.reportError(err)
			}
			failed = true
		}
	}
	if failed {
		return errPrinted
	}
	return nil
}

const editHeader = `# Edit the object below and save to send it; an empty file or no change
# cancels. Lines starting with '#' are ignored. If it cannot be saved, this
# file opens again with the reasons at the top.
#
`

func (o *editOptions) render(obj *unstructured.Unstructured) ([]byte, error) {
	if o.output == "json" {
		b, err := json.MarshalIndent(obj.Object, "", "    ")
		return append(b, '\n'), err
	}
	return yaml.Marshal(obj.Object)
}

func (o *editOptions) editOne(ctx context.Context, e *env, t target) error {
	name := printer.ResourceName(t.m.GVK(), t.name)
	orig, err := e.getObject(ctx, t.m, t.ns, t.name)
	if err != nil {
		return err
	}
	body, err := o.render(orig)
	if err != nil {
		return err
	}
	ext := ".yaml"
	if o.output == "json" {
		ext = ".json"
	}
	f, err := os.CreateTemp("", "ctl-edit-*"+ext)
	if err != nil {
		return err
	}
	path := f.Name()
	f.Close()
	keep := false
	defer func() {
		if !keep {
			os.Remove(path)
		}
	}()
	var problems []string
	var lastSaved []byte
	for {
		var text bytes.Buffer
		text.WriteString(editHeader)
		for _, p := range problems {
			for _, l := range strings.Split(p, "\n") {
				text.WriteString("# " + l + "\n")
			}
		}
		if len(problems) > 0 {
			text.WriteString("#\n")
		}
		text.Write(body)
		if err := os.WriteFile(path, text.Bytes(), 0o600); err != nil {
			return err
		}
		if err := runEditor(ctx, e, path); err != nil {
			return err
		}
		if afterEditorHook != nil {
			afterEditorHook()
		}
		saved, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		edited := stripComments(saved)
		if len(bytes.TrimSpace(edited)) == 0 {
			fmt.Fprintln(e.streams.ErrOut, "Edit cancelled, saved file was empty.")
			return nil
		}
		if problems == nil && bytes.Equal(edited, stripComments(append([]byte(nil), body...))) {
			fmt.Fprintln(e.streams.ErrOut, "Edit cancelled, no changes made.")
			return nil
		}
		if problems != nil && bytes.Equal(edited, lastSaved) {
			keep = true
			return &exitError{code: 1, msg: fmt.Sprintf("error: %s was not changed:\n%s\nYour edited copy is in %s",
				name, strings.Join(problems, "\n"), path)}
		}
		lastSaved = edited
		body = edited
		problems, err = o.save(ctx, e, t, name, path, orig, edited)
		if err != nil {
			keep = true
			return err
		}
		if problems == nil {
			fmt.Fprintf(e.streams.Out, "%s edited\n", name)
			return nil
		}
	}
}

// save checks and sends the edited object. Problems the user can fix in
// the editor come back as messages; other failures as the error.
func (o *editOptions) save(ctx context.Context, e *env, t target, name, path string, orig *unstructured.Unstructured, edited []byte) ([]string, error) {
	docs, err := manifest.Parse(path, edited)
	if err != nil {
		return []string{err.Error()}, nil
	}
	if len(docs) != 1 {
		return []string{fmt.Sprintf("the file must hold exactly one object, found %d", len(docs))}, nil
	}
	d := docs[0]
	obj := d.Object
	if obj.GetAPIVersion() != orig.GetAPIVersion() || obj.GetKind() != orig.GetKind() ||
		obj.GetName() != orig.GetName() || obj.GetNamespace() != orig.GetNamespace() {
		return []string{"apiVersion, kind, metadata.name and metadata.namespace cannot be changed by edit"}, nil
	}
	typed, err := d.Check(scheme.StrictCodecs.UniversalDeserializer())
	if err != nil {
		return strings.Split(err.Error(), "\n"), nil
	}
	origJSON, err := orig.MarshalJSON()
	if err != nil {
		return nil, err
	}
	newJSON, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var patch []byte
	pt := types.MergePatchType
	if typed != nil {
		empty, _ := scheme.Scheme.New(t.m.GVK())
		patch, err = strategicpatch.CreateTwoWayMergePatch(origJSON, newJSON, empty)
		pt = types.StrategicMergePatchType
	} else {
		patch, err = jsonmergepatch.CreateThreeWayJSONMergePatch(origJSON, newJSON, origJSON)
	}
	if err != nil {
		return []string{fmt.Sprintf("computing the change: %v", err)}, nil
	}
	// Optimistic concurrency: the patch carries the version the edit
	// started from, so the server refuses it if the object changed since.
	var pm map[string]any
	if err := json.Unmarshal(patch, &pm); err != nil {
		return nil, err
	}
	md, _ := pm["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		pm["metadata"] = md
	}
	md["resourceVersion"] = orig.GetResourceVersion()
	if patch, err = json.Marshal(pm); err != nil {
		return nil, err
	}
	_, err = e.patchObject(ctx, t.m, t.ns, t.name, pt, patch, writeOpts{fieldValidation: "Strict"})
	switch {
	case err == nil:
		return nil, nil
	case apierrors.IsConflict(err):
		return nil, &exitError{code: 1, msg: fmt.Sprintf("error: %s was changed by someone else while you edited it, so your edit was not saved "+
			"(it would have undone their change).\nYour edited copy is in %s: run `ctl edit %s` again and redo the change, "+
			"or `ctl replace -f %s` to overwrite theirs.", name, path, name, path)}
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		return []string{e.formatError(err)}, nil
	}
	return nil, err
}

// stripComments drops whole-line comments (and the header).
func stripComments(b []byte) []byte {
	var out bytes.Buffer
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if bytes.HasPrefix(bytes.TrimLeft(l, " \t"), []byte("#")) {
			continue
		}
		out.Write(l)
	}
	return out.Bytes()
}

// runEditor opens path in $KUBE_EDITOR, $EDITOR or vi, with the terminal
// (or the command's streams).
func runEditor(ctx context.Context, e *env, path string) error {
	editor := os.Getenv("KUBE_EDITOR")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	// Through the shell, so EDITOR may carry arguments ("code --wait").
	c := exec.CommandContext(ctx, "sh", "-c", editor+` "$1"`, "ctl-editor", path)
	c.Stdin, c.Stdout, c.Stderr = e.streams.In, e.streams.Out, e.streams.ErrOut
	if f, ok := e.streams.In.(*os.File); ok {
		c.Stdin = f
	}
	if err := c.Run(); err != nil {
		return fmt.Errorf("the editor %q failed: %w (set KUBE_EDITOR or EDITOR to the editor you use)", editor, err)
	}
	return nil
}

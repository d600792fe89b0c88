package ctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/ctl/apply"
	"github.com/minik8s/minik8s/ctl/textdiff"
)

func newDiffCommand(e *env) *cobra.Command {
	ff := &fileFlags{}
	cmd := &cobra.Command{
		Use:   "diff -f FILENAME",
		Short: "Diff the live version against a would-be applied version",
		Long: `Show what ` + "`ctl apply -f`" + ` would change: for each object, a unified diff
between the live object and the object the server would store after the
apply. The server computes the result (a server-side dry run), so defaults,
allocations and admission are accounted for; nothing is stored.

Secret values are masked. Set KUBECTL_EXTERNAL_DIFF to use another diff
program; it is given two directories (LIVE-... and MERGED-...).

Exit status: 0 no differences, 1 differences found, 2 ctl failed (as
kubectl and diff(1) do, so scripts can tell the cases apart).`,
		Example: examples(`
# what would apply change?
ctl diff -f examples/deployment.yaml

# a whole tree, from stdin
cat k8s/*.yaml | ctl diff -f -`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			differ, err := runDiff(cmd.Context(), e, ff)
			if err != nil {
				var ee *exitError
				if errors.As(err, &ee) {
					return err
				}
				return &exitError{code: 2, msg: e.formatError(err)}
			}
			if differ {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	ff.add(cmd, "that contain the configuration to compare")
	return cmd
}

// diffPair is one object's live and merged text.
type diffPair struct {
	name         string // apps.v1.Deployment.default.web
	live, merged string
}

func runDiff(ctx context.Context, e *env, ff *fileFlags) (bool, error) {
	objs, err := e.readObjects(ctx, ff, true)
	if err != nil {
		return false, err
	}
	fv, _ := ff.fieldValidation()
	var pairs []diffPair
	failed := false
	for _, fo := range objs {
		p, err := diffOne(ctx, e, fo, fv)
		if err != nil {
			e.reportError(&objError{action: "diffing", where: fo.where(), err: err})
			failed = true
			continue
		}
		pairs = append(pairs, p)
	}
	differ := false
	if ext := os.Getenv("KUBECTL_EXTERNAL_DIFF"); ext != "" {
		d, err := externalDiff(ctx, e, ext, pairs)
		if err != nil {
			return false, err
		}
		differ = d
	} else {
		for _, p := range pairs {
			u := textdiff.Unified("live/"+p.name, "merged/"+p.name, p.live, p.merged, 3)
			if u == "" {
				continue
			}
			differ = true
			fmt.Fprintf(e.streams.Out, "diff -u -N live/%s merged/%s\n%s", p.name, p.name, u)
		}
	}
	if failed {
		return differ, &exitError{code: 2}
	}
	return differ, nil
}

func diffOne(ctx context.Context, e *env, fo *fileObject, fieldValidation string) (diffPair, error) {
	var parts []string
	if fo.m.Group != "" {
		parts = append(parts, fo.m.Group)
	}
	parts = append(parts, fo.m.Version, fo.m.Kind)
	if fo.m.Namespaced {
		parts = append(parts, fo.ns)
	}
	p := diffPair{name: strings.Join(append(parts, fo.obj.GetName()), ".")}
	modified, err := apply.Modified(fo.obj)
	if err != nil {
		return p, err
	}
	wo := writeOpts{dryRun: true, fieldValidation: fieldValidation}
	var live, merged *unstructured.Unstructured
	live, err = e.getObject(ctx, fo.m, fo.ns, fo.obj.GetName())
	switch {
	case apierrors.IsNotFound(err):
		live = nil
		desired, err := decodeObject(modified)
		if err != nil {
			return p, err
		}
		if merged, err = e.createObject(ctx, fo.m, fo.ns, desired, wo); err != nil {
			return p, err
		}
	case err != nil:
		return p, err
	default:
		current, err := live.MarshalJSON()
		if err != nil {
			return p, err
		}
		patch, pt, err := apply.Patch(apply.Original(live), modified, current, fo.typed)
		if err != nil {
			return p, err
		}
		changes, err := apply.Changes(current, patch, pt, fo.typed)
		if err != nil {
			return p, err
		}
		merged = live
		if changes {
			if merged, err = e.patchObject(ctx, fo.m, fo.ns, fo.obj.GetName(), pt, patch, wo); err != nil {
				return p, err
			}
		}
	}
	maskSecrets(live, merged)
	if p.live, err = diffText(live); err != nil {
		return p, err
	}
	if p.merged, err = diffText(merged); err != nil {
		return p, err
	}
	return p, nil
}

// diffText is the YAML compared, without bookkeeping that always differs.
func diffText(u *unstructured.Unstructured) (string, error) {
	if u == nil {
		return "", nil
	}
	c := u.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "metadata", "managedFields")
	unstructured.RemoveNestedField(c.Object, "metadata", "generation")
	b, err := yaml.Marshal(c.Object)
	return string(b), err
}

// maskSecrets hides Secret values, showing only whether each changed.
func maskSecrets(live, merged *unstructured.Unstructured) {
	isSecret := func(u *unstructured.Unstructured) bool {
		return u != nil && u.GetKind() == "Secret" && u.GetAPIVersion() == "v1"
	}
	if !isSecret(live) && !isSecret(merged) {
		return
	}
	get := func(u *unstructured.Unstructured) map[string]any {
		if u == nil {
			return nil
		}
		m, _, _ := unstructured.NestedMap(u.Object, "data")
		return m
	}
	ld, md := get(live), get(merged)
	mask := func(u *unstructured.Unstructured, own, other map[string]any, changed string) {
		if u == nil || own == nil {
			return
		}
		out := map[string]any{}
		for k, v := range own {
			if ov, ok := other[k]; ok && ov != v {
				out[k] = changed
			} else {
				out[k] = "***"
			}
		}
		_ = unstructured.SetNestedMap(u.Object, out, "data")
	}
	mask(live, ld, md, "*** (before)")
	mask(merged, md, ld, "*** (after)")
}

// externalDiff writes the pairs into LIVE-* and MERGED-* directories and
// runs the user's diff program on them.
func externalDiff(ctx context.Context, e *env, program string, pairs []diffPair) (bool, error) {
	liveDir, err := os.MkdirTemp("", "LIVE-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(liveDir)
	mergedDir, err := os.MkdirTemp("", "MERGED-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(mergedDir)
	for _, p := range pairs {
		if err := os.WriteFile(filepath.Join(liveDir, p.name), []byte(p.live), 0o600); err != nil {
			return false, err
		}
		if err := os.WriteFile(filepath.Join(mergedDir, p.name), []byte(p.merged), 0o600); err != nil {
			return false, err
		}
	}
	args := strings.Fields(program)
	c := exec.CommandContext(ctx, args[0], append(args[1:], liveDir, mergedDir)...)
	c.Stdout, c.Stderr = e.streams.Out, e.streams.ErrOut
	err = c.Run()
	var xe *exec.ExitError
	if errors.As(err, &xe) && xe.ExitCode() == 1 {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("KUBECTL_EXTERNAL_DIFF %q: %w", program, err)
	}
	return false, nil
}

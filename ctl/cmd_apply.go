package ctl

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/ctl/apply"
	"github.com/minik8s/minik8s/ctl/printer"
)

type applyOptions struct {
	files      fileFlags
	dryRun     dryRunFlag
	output     string
	serverSide bool
}

func newApplyCommand(e *env) *cobra.Command {
	o := &applyOptions{}
	cmd := &cobra.Command{
		Use:   "apply -f FILENAME",
		Short: "Apply a configuration to a resource by file name or stdin",
		Long: `Make the cluster match the files: create objects that do not exist, and update
the ones that do so they say what the file says.

Apply is declarative: a field you delete from the file is deleted from the
object, while fields the file never set (defaults, and changes made by
controllers or other users) are kept. To know what "deleted from the file"
means, apply stores the configuration it applied in the annotation
kubectl.kubernetes.io/last-applied-configuration (the same one kubectl
uses, so ctl and kubectl can take turns), and computes a three-way merge of
that, the file and the live object. Known kinds are patched with a strategic
merge patch (lists such as containers and ports merge by name/port); other
kinds with a JSON merge patch.

Files may hold several YAML documents (separated by ---) or JSON objects.
Nothing is changed if any document fails the local checks.`,
		Example: examples(`
# create or update what a file describes
ctl apply -f examples/deployment.yaml

# every manifest of a directory tree
ctl apply -R -f k8s/

# from stdin
cat web.yaml | ctl apply -f -

# see what would happen: locally, or with every server check
ctl apply -f web.yaml --dry-run=client
ctl apply -f web.yaml --dry-run=server`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.serverSide {
				return fmt.Errorf("--server-side: minik8s has no server-side apply; the default client-side apply works (and interoperates with kubectl's)")
			}
			if err := o.dryRun.check(); err != nil {
				return err
			}
			return o.run(cmd.Context(), e)
		},
	}
	o.files.add(cmd, "that contain the configuration to apply")
	o.dryRun.add(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "Print the applied objects: "+printer.Formats)
	cmd.Flags().BoolVar(&o.serverSide, "server-side", false, "Not supported by minik8s (kept so scripts get a clear error)")
	return cmd
}

func (o *applyOptions) run(ctx context.Context, e *env) error {
	objs, err := e.readObjects(ctx, &o.files, true)
	if err != nil {
		return err
	}
	fv, _ := o.files.fieldValidation()
	rp, err := e.newResultPrinter(o.output)
	if err != nil {
		return err
	}
	failed := false
	for _, fo := range objs {
		verb, obj, err := o.applyOne(ctx, e, fo, fv)
		if err != nil {
			e.reportError(&objError{action: "applying", where: fo.where(), err: err})
			failed = true
			continue
		}
		rp.done(fo.name(), verb+o.dryRun.suffix(), obj)
	}
	if err := rp.flush(); err != nil {
		return err
	}
	if failed {
		return errPrinted
	}
	return nil
}

// applyOne creates or patches one object and says which it did.
func (o *applyOptions) applyOne(ctx context.Context, e *env, fo *fileObject, fieldValidation string) (string, *unstructured.Unstructured, error) {
	modified, err := apply.Modified(fo.obj)
	if err != nil {
		return "", nil, err
	}
	wo := writeOpts{dryRun: o.dryRun.server(), fieldValidation: fieldValidation}
	for attempt := 0; ; attempt++ {
		live, err := e.getObject(ctx, fo.m, fo.ns, fo.obj.GetName())
		if apierrors.IsNotFound(err) {
			desired, err := decodeObject(modified)
			if err != nil {
				return "", nil, err
			}
			if o.dryRun.client() {
				return "created", desired, nil
			}
			out, err := e.createObject(ctx, fo.m, fo.ns, desired, wo)
			if apierrors.IsAlreadyExists(err) && attempt < 3 {
				continue // created meanwhile: patch it instead
			}
			return "created", out, err
		}
		if err != nil {
			return "", nil, err
		}
		original := apply.Original(live)
		if original == nil {
			fmt.Fprintf(e.streams.ErrOut, "Warning: %s has no %s annotation (it was not made by apply): "+
				"this apply sets the fields in the file and adds the annotation, but removes nothing\n", fo.name(), apply.Annotation)
		}
		current, err := live.MarshalJSON()
		if err != nil {
			return "", nil, err
		}
		patch, pt, err := apply.Patch(original, modified, current, fo.typed)
		if err != nil {
			return "", nil, err
		}
		changes, err := apply.Changes(current, patch, pt, fo.typed)
		if err != nil {
			return "", nil, fmt.Errorf("computing the patch: %w", err)
		}
		if !changes {
			return "unchanged", live, nil
		}
		if o.dryRun.client() {
			out, err := apply.Apply(current, patch, pt, fo.typed)
			if err != nil {
				return "", nil, err
			}
			u, err := decodeObject(out)
			return "configured", u, err
		}
		out, err := e.patchObject(ctx, fo.m, fo.ns, fo.obj.GetName(), pt, patch, wo)
		if apierrors.IsConflict(err) && attempt < 3 {
			continue
		}
		return "configured", out, err
	}
}

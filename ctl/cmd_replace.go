package ctl

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/spf13/cobra"

	"github.com/minik8s/minik8s/ctl/printer"
)

type replaceOptions struct {
	files   fileFlags
	dryRun  dryRunFlag
	output  string
	force   bool
	timeout time.Duration
}

func newReplaceCommand(e *env) *cobra.Command {
	o := &replaceOptions{}
	cmd := &cobra.Command{
		Use:   "replace -f FILENAME",
		Short: "Replace a resource by file name or stdin",
		Long: `Replace objects with what the files say, whole (an HTTP PUT): fields missing
from the file are reset, except what the server keeps on its own (a Service's
cluster IP, say). The objects must exist. If the file carries
metadata.resourceVersion, the replace fails when the object changed since.

With --force the objects are deleted, and created again once gone.`,
		Example: examples(`
# replace a deployment with the file's version
ctl replace -f web.yaml

# edit the live object as YAML and put it back
ctl get deploy web -o yaml | sed 's/replicas: 3/replicas: 5/' | ctl replace -f -

# delete and re-create (for fields that cannot change in place)
ctl replace --force -f web.yaml`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.dryRun.check(); err != nil {
				return err
			}
			return o.run(cmd.Context(), e)
		},
	}
	o.files.add(cmd, "that contain the objects to replace")
	o.dryRun.add(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "Print the replaced objects: "+printer.Formats)
	cmd.Flags().BoolVar(&o.force, "force", false, "Delete the objects, wait until they are gone, then create them")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 0, "With --force, how long to wait for the deletion (0 = until it completes)")
	return cmd
}

func (o *replaceOptions) run(ctx context.Context, e *env) error {
	objs, err := e.readObjects(ctx, &o.files, true)
	if err != nil {
		return err
	}
	fv, _ := o.files.fieldValidation()
	wo := writeOpts{dryRun: o.dryRun.server(), fieldValidation: fv}
	rp, err := e.newResultPrinter(o.output)
	if err != nil {
		return err
	}
	failed := false
	for _, fo := range objs {
		out, err := o.replaceOne(ctx, e, fo, wo, rp)
		if err != nil {
			e.reportError(&objError{action: "replacing", where: fo.where(), err: err})
			failed = true
			continue
		}
		rp.done(fo.name(), "replaced"+o.dryRun.suffix(), out)
	}
	if err := rp.flush(); err != nil {
		return err
	}
	if failed {
		return errPrinted
	}
	return nil
}

func (o *replaceOptions) replaceOne(ctx context.Context, e *env, fo *fileObject, wo writeOpts, rp *resultPrinter) (*unstructured.Unstructured, error) {
	if o.dryRun.client() {
		return fo.obj, nil
	}
	if !o.force || o.dryRun.server() {
		return e.updateObject(ctx, fo.m, fo.ns, fo.obj, wo)
	}
	gone, err := e.deleteObject(ctx, fo.m, fo.ns, fo.obj.GetName(), metav1.DeleteOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, err
	default:
		uid := fo.obj.GetUID()
		if gone != nil {
			uid = gone.GetUID()
		}
		if err := e.waitDeleted(ctx, fo.m, fo.ns, fo.obj.GetName(), uid, o.timeout); err != nil {
			return nil, err
		}
		rp.done(fo.name(), "deleted", nil)
	}
	obj := fo.obj.DeepCopy()
	obj.SetResourceVersion("")
	obj.SetUID("")
	return e.createObject(ctx, fo.m, fo.ns, obj, wo)
}

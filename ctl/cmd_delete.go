package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/spf13/cobra"
)

type deleteOptions struct {
	files          fileFlags
	selector       string
	fieldSelector  string
	all            bool
	allNamespaces  bool
	cascade        string
	gracePeriod    int64
	now            bool
	force          bool
	wait           bool
	timeout        time.Duration
	ignoreNotFound bool
	dryRun         dryRunFlag
	output         string
}

// target is one object to delete.
type target struct {
	m    *mapping
	ns   string
	name string
}

func newDeleteCommand(e *env) *cobra.Command {
	o := &deleteOptions{}
	cmd := &cobra.Command{
		Use:   "delete ([-f FILENAME] | TYPE [(NAME | -l label | --all)])",
		Short: "Delete resources by file names, stdin, resources and names, or by resources and label selector",
		Long: `Delete objects named on the command line, described by files, or selected by
labels (-l) or --all.

By default ctl waits until the objects are really gone: objects with
finalizers (e.g. --cascade=foreground, which waits for the garbage collector
to delete the dependents first), pods on a node (which get a grace period to
stop) and namespaces (emptied first) linger for a while after the request.
--wait=false returns as soon as the server accepted the deletion.

--cascade chooses what happens to dependents (the ReplicaSets of a
Deployment, the Pods of a ReplicaSet): background (default; the garbage
collector deletes them afterwards), foreground (they are deleted first), or
orphan (they are left alone).`,
		Example: examples(`
# one deployment, and two pods
ctl delete deployment web
ctl delete pod web-1 web-2

# what a file created
ctl delete -f examples/deployment.yaml

# by label, or everything of a type in the namespace
ctl delete pods -l app=web
ctl delete pods --all

# keep the replica sets and pods of a deployment
ctl delete deploy web --cascade=orphan

# do not wait for the deletion to complete; kill a pod at once
ctl delete ns shop --wait=false
ctl delete pod web-1 --grace-period=0 --force`),
		ValidArgsFunction: e.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.dryRun.check(); err != nil {
				return err
			}
			return o.run(cmd, e, args)
		},
	}
	o.files.add(cmd, "that contain the objects to delete")
	f := cmd.Flags()
	f.StringVarP(&o.selector, "selector", "l", "", "Delete objects matching this label selector")
	f.StringVar(&o.fieldSelector, "field-selector", "", "Delete objects matching this field selector")
	f.BoolVar(&o.all, "all", false, "Delete every object of the given types in the namespace")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "With -l or --all, select in every namespace")
	f.StringVar(&o.cascade, "cascade", "background", `What happens to dependents: "background", "foreground" or "orphan"`)
	f.Lookup("cascade").NoOptDefVal = "background"
	f.Int64Var(&o.gracePeriod, "grace-period", -1, "Seconds a pod gets to stop; -1 = the pod's own setting, 0 with --force = now")
	f.BoolVar(&o.now, "now", false, "Same as --grace-period=1 (stop pods promptly)")
	f.BoolVar(&o.force, "force", false, "With --grace-period=0, remove pods at once, without waiting for the node to confirm they stopped")
	f.BoolVar(&o.wait, "wait", true, "Wait until the objects are gone before returning")
	f.DurationVar(&o.timeout, "timeout", 0, "How long to wait for the deletion, e.g. 60s (0 = until it completes)")
	f.BoolVar(&o.ignoreNotFound, "ignore-not-found", false, "Treat objects that do not exist as deleted (default with -l and --all)")
	o.dryRun.add(cmd)
	f.StringVarP(&o.output, "output", "o", "", "name: print only resource/name of each deleted object")
	return cmd
}

func (o *deleteOptions) deleteOpts() (metav1.DeleteOptions, error) {
	var opts metav1.DeleteOptions
	var p metav1.DeletionPropagation
	switch strings.ToLower(o.cascade) {
	case "background", "true":
		p = metav1.DeletePropagationBackground
	case "foreground":
		p = metav1.DeletePropagationForeground
	case "orphan", "false":
		p = metav1.DeletePropagationOrphan
	default:
		return opts, fmt.Errorf(`--cascade must be "background", "foreground" or "orphan", not %q`, o.cascade)
	}
	opts.PropagationPolicy = &p
	grace := o.gracePeriod
	if o.now {
		if grace >= 0 {
			return opts, errors.New("--now and --grace-period cannot be given together")
		}
		grace = 1
	}
	if o.force && grace < 0 {
		grace = 0
	}
	if grace == 0 && !o.force {
		// kubectl's rule: immediate deletion must be asked for twice.
		return opts, errors.New("--grace-period=0 removes a pod without confirming it stopped; add --force to do that, or use --grace-period=1 (--now)")
	}
	if grace >= 0 {
		opts.GracePeriodSeconds = &grace
	}
	if o.dryRun.server() {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return opts, nil
}

func (o *deleteOptions) run(cmd *cobra.Command, e *env, args []string) error {
	ctx := cmd.Context()
	if o.output != "" && o.output != "name" {
		return usageError(cmd, "--output must be name, not %q", o.output)
	}
	opts, err := o.deleteOpts()
	if err != nil {
		return err
	}
	targets, err := o.targets(cmd, e, args)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		ns, _ := e.ns()
		if o.allNamespaces {
			ns = ""
		}
		e.noResources(nil, ns)
		return nil
	}
	type pending struct {
		t   target
		uid types.UID
	}
	var waits []pending
	failed := false
	for _, t := range targets {
		name := fmt.Sprintf("%s %q", t.m.KindString(), t.name)
		if o.dryRun.client() {
			o.report(e, t, name+" deleted (dry run)")
			continue
		}
		last, err := e.deleteObject(ctx, t.m, t.ns, t.name, opts)
		if err != nil {
			if apierrors.IsNotFound(err) && (o.ignoreNotFound || o.selector != "" || o.all) {
				continue
			}
			e.reportError(err)
			failed = true
			continue
		}
		o.report(e, t, name+" deleted"+o.dryRun.suffix())
		if o.wait && !o.dryRun.server() {
			var uid types.UID
			if last != nil {
				uid = last.GetUID()
			}
			waits = append(waits, pending{t, uid})
		}
	}
	for _, p := range waits {
		if err := e.waitDeleted(ctx, p.t.m, p.t.ns, p.t.name, p.uid, o.timeout); err != nil {
			e.reportError(err)
			failed = true
		}
	}
	if failed {
		return errPrinted
	}
	return nil
}

func (o *deleteOptions) report(e *env, t target, msg string) {
	if o.output == "name" {
		fmt.Fprintf(e.streams.Out, "%s/%s\n", t.m.KindString(), t.name)
		return
	}
	fmt.Fprintln(e.streams.Out, msg)
}

// targets resolves the objects to delete from files, names or selectors.
func (o *deleteOptions) targets(cmd *cobra.Command, e *env, args []string) ([]target, error) {
	ctx := cmd.Context()
	if len(o.files.filenames) > 0 {
		if len(args) > 0 || o.selector != "" || o.all {
			return nil, usageError(cmd, "give either -f or resource arguments (with names, -l or --all), not both")
		}
		objs, err := e.readObjects(ctx, &fileFlags{filenames: o.files.filenames, recursive: o.files.recursive, validate: "ignore"}, true)
		if err != nil {
			return nil, err
		}
		var out []target
		for _, fo := range objs {
			out = append(out, target{m: fo.m, ns: fo.ns, name: fo.obj.GetName()})
		}
		return out, nil
	}
	if len(args) == 0 {
		return nil, usageError(cmd, "you must specify the type of resource to delete, e.g. `ctl delete pod NAME`, or -f FILE")
	}
	if _, err := e.client(); err != nil {
		return nil, err
	}
	sels, err := e.parseArgs(ctx, args)
	if err != nil {
		return nil, err
	}
	ns, err := e.ns()
	if err != nil {
		return nil, err
	}
	named := namedCount(sels) > 0
	switch {
	case named && (o.selector != "" || o.all):
		return nil, usageError(cmd, "name cannot be provided together with -l or --all")
	case !named && o.selector == "" && o.fieldSelector == "" && !o.all:
		return nil, usageError(cmd, "resource(s) were provided, but no name was specified: give names, -l SELECTOR or --all")
	}
	if o.allNamespaces {
		ns = ""
	}
	var out []target
	for _, s := range sels {
		sns := selNamespace(s, ns)
		if named {
			for _, n := range s.names {
				out = append(out, target{m: s.m, ns: sns, name: n})
			}
			continue
		}
		items, _, err := e.listObjects(ctx, s.m, sns, metav1.ListOptions{LabelSelector: o.selector, FieldSelector: o.fieldSelector})
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			out = append(out, target{m: s.m, ns: it.GetNamespace(), name: it.GetName()})
		}
	}
	return out, nil
}

// waitDeleted waits until the object is gone (or replaced by a new one
// with another uid). timeout 0 waits until ctx ends.
func (e *env) waitDeleted(ctx context.Context, m *mapping, ns, name string, uid types.UID, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	for {
		obj, err := e.getObject(ctx, m, ns, name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return e.deleteTimeout(m, name, nil)
			}
			return err
		}
		if uid != "" && obj.GetUID() != uid {
			return nil
		}
		w, err := e.watchObjects(ctx, m, ns, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
			ResourceVersion: obj.GetResourceVersion(),
		}, false)
		if err != nil {
			if ctx.Err() != nil {
				return e.deleteTimeout(m, name, obj.GetFinalizers())
			}
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				continue
			}
			return err
		}
		deleted, finalizers := false, obj.GetFinalizers()
	loop:
		for {
			select {
			case <-ctx.Done():
				w.Stop()
				if ctx.Err() == context.DeadlineExceeded {
					return e.deleteTimeout(m, name, finalizers)
				}
				return ctx.Err()
			case ev, ok := <-w.ResultChan():
				if !ok {
					break loop
				}
				if ev.Type == watch.Deleted {
					deleted = true
					break loop
				}
				if u, ok := ev.Object.(interface{ GetFinalizers() []string }); ok && ev.Type == watch.Modified {
					finalizers = u.GetFinalizers()
				}
			}
		}
		w.Stop()
		if deleted {
			return nil
		}
	}
}

func (e *env) deleteTimeout(m *mapping, name string, finalizers []string) error {
	msg := fmt.Sprintf("timed out waiting for %s/%s to be deleted", m.KindString(), name)
	if len(finalizers) > 0 {
		msg += fmt.Sprintf(": it is held by the finalizers %v, which whoever owns them (e.g. the garbage collector for foregroundDeletion) must remove", finalizers)
	}
	return errors.New(msg + "; use --wait=false not to wait")
}
